//! The switchboard: callbacks in, one task per chat, a clean shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ta_protocol::chat::{Callback, CallbackError, ChatId, Timers, read_callback};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};
use url::Url;

use super::task::{Input, run_chat};
use super::{ChatRouter, ReplicaName};
use crate::Bootstrapper;

/// How the switchboard runs its chats.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SwitchboardOptions {
    /// How long a chat waits for the platform.
    pub timers: Timers,
    /// Where the meetings' callbacks go, when not to the default callback
    /// URL with the chat's `callbackContext` (a per-conversation URL; the
    /// chat's id is appended as `callbackContext`).
    pub meeting_callback: Option<Url>,
    /// The replica this switchboard runs in, when there are several: its
    /// chat ids start with the name ([`ReplicaName`]).
    pub replica: Option<ReplicaName>,
}

impl SwitchboardOptions {
    /// Sets the timers (builder style).
    pub fn with_timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }

    /// Names the replica (builder style): chat ids become
    /// `<name>_c<16 characters>`, so that every later callback of a chat
    /// names the replica that holds it.
    pub fn with_replica(mut self, replica: ReplicaName) -> Self {
        self.replica = Some(replica);
        self
    }
}

/// What became of a delivered callback. Every kind is answered `200`; only
/// [`Delivery::Opened`] and [`Delivery::Again`] carry a body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// A visitor's invitation opened a chat: answer with
    /// `{"callbackContext": context}`.
    Opened {
        /// The new chat's id.
        context: String,
    },
    /// Handed to the chat it belongs to.
    Routed,
    /// The same delivery came before: nothing more is done.
    Duplicate,
    /// The same invitation came before and opened a chat that is still
    /// open: answer with its `{"callbackContext": context}` again (the
    /// first answer may have been lost); nothing more is done.
    Again {
        /// The chat's id.
        context: String,
    },
    /// A heartbeat, or events for no chat this SA runs (one that ended, or
    /// another SA's).
    Ignored,
    /// An invitation while shutting down: not opened (the platform's
    /// invitation times out; the visitor may try again).
    Closing,
}

/// The most deliveries remembered to spot a repeat.
const RECENT_DELIVERIES: usize = 1024;

/// The digests of recent deliveries in arrival order, and what each
/// opened (the chat of an invitation).
#[derive(Default)]
struct Recent {
    order: VecDeque<[u8; 32]>,
    seen: HashMap<[u8; 32], Option<ChatId>>,
}

/// The open chats, and whether new ones are refused: one lock, so that a
/// chat opened while the switchboard shuts down is either refused or told
/// to end.
#[derive(Default)]
pub(super) struct Chats {
    closing: bool,
    pub(super) open: HashMap<ChatId, mpsc::UnboundedSender<Input>>,
}

pub(super) struct Shared {
    pub(super) bootstrapper: Bootstrapper,
    pub(super) router: Arc<dyn ChatRouter>,
    pub(super) options: SwitchboardOptions,
    pub(super) chats: Mutex<Chats>,
    pub(super) ended: Notify,
    recent: Mutex<Recent>,
}

fn digest(context: Option<&str>, body: &[u8]) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(context.unwrap_or_default().as_bytes());
    digest.update(&[0]);
    digest.update(body);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

impl Shared {
    /// Forgets a chat that ended.
    pub(super) fn remove(&self, id: &ChatId) {
        if let Ok(mut chats) = self.chats.lock() {
            chats.open.remove(id);
        }
        self.ended.notify_waiters();
    }

    /// What this delivery was seen as before, if it was (and remembers it):
    /// `Some(Some(id))` for an invitation that opened chat `id`.
    fn repeated(&self, key: [u8; 32]) -> Option<Option<ChatId>> {
        let Ok(mut recent) = self.recent.lock() else {
            return None;
        };
        if let Some(opened) = recent.seen.get(&key) {
            return Some(opened.clone());
        }
        recent.seen.insert(key, None);
        recent.order.push_back(key);
        if recent.order.len() > RECENT_DELIVERIES
            && let Some(old) = recent.order.pop_front()
        {
            recent.seen.remove(&old);
        }
        None
    }

    /// Remembers that the delivery `key` opened chat `id`.
    fn opened(&self, key: [u8; 32], id: &ChatId) {
        if let Ok(mut recent) = self.recent.lock()
            && let Some(slot) = recent.seen.get_mut(&key)
        {
            *slot = Some(id.clone());
        }
    }
}

/// Runs the SA's chats. Cheap to clone.
#[derive(Clone)]
pub struct Switchboard {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("open_chats", &self.open_chats())
            .finish_non_exhaustive()
    }
}

impl Switchboard {
    /// A switchboard running chats over `bootstrapper`, routed by `router`.
    pub fn new(
        bootstrapper: Bootstrapper,
        router: Arc<dyn ChatRouter>,
        options: SwitchboardOptions,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                bootstrapper,
                router,
                options,
                chats: Mutex::new(Chats::default()),
                ended: Notify::new(),
                recent: Mutex::new(Recent::default()),
            }),
        }
    }

    /// Takes an authenticated callback's body, with the `callbackContext`
    /// of the URL it came to (if any). Returns at once: the chat's task
    /// does the work. Must be called within a tokio runtime.
    pub fn deliver(&self, context: Option<&str>, body: &[u8]) -> Result<Delivery, CallbackError> {
        let callback = read_callback(body)?;
        for problem in &callback.problems {
            warn!(%problem, "part of a callback was unusable");
        }
        if callback.is_heartbeat() {
            return Ok(Delivery::Ignored);
        }
        let key = digest(context, body);
        match self.shared.repeated(key) {
            // The platform asks again for an invitation's answer (the first
            // was lost): the same chat's context, so that its later
            // callbacks still reach it.
            Some(Some(id)) if self.is_open(&id) => {
                info!(chat_id = %id, "an invitation was delivered again: the same chat answered");
                return Ok(Delivery::Again {
                    context: id.as_str().to_owned(),
                });
            }
            Some(_) => {
                info!("a callback was delivered again: ignored");
                return Ok(Delivery::Duplicate);
            }
            None => {}
        }
        if let Some(context) = context {
            return Ok(self.route(context, callback));
        }
        if callback.invitation().is_some() {
            return Ok(self.open(key, callback));
        }
        Ok(Delivery::Ignored)
    }

    fn route(&self, context: &str, callback: Callback) -> Delivery {
        let Ok(id) = ChatId::new(context) else {
            return Delivery::Ignored;
        };
        let sender = self
            .shared
            .chats
            .lock()
            .ok()
            .and_then(|chats| chats.open.get(&id).cloned());
        match sender {
            Some(sender) if sender.send(Input::Callback(Box::new(callback))).is_ok() => {
                Delivery::Routed
            }
            _ => Delivery::Ignored,
        }
    }

    fn is_open(&self, id: &ChatId) -> bool {
        self.shared
            .chats
            .lock()
            .is_ok_and(|chats| chats.open.contains_key(id))
    }

    fn open(&self, key: [u8; 32], callback: Callback) -> Delivery {
        let Some(chat) = callback.invitation().cloned() else {
            return Delivery::Ignored;
        };
        let unique = self.shared.bootstrapper.entropy().unique_id();
        let (prefix, length) = match &self.shared.options.replica {
            // 14 + 2 + 16 = 32, a chat id's most.
            Some(replica) => (format!("{replica}_c"), 16),
            None => ("c".to_owned(), 20),
        };
        let id: String = unique
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(length)
            .collect();
        let Ok(id) = ChatId::new(format!("{prefix}{id}")) else {
            return Delivery::Ignored;
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        {
            let Ok(mut chats) = self.shared.chats.lock() else {
                return Delivery::Ignored;
            };
            if chats.closing {
                return Delivery::Closing;
            }
            chats.open.insert(id.clone(), sender);
        }
        self.shared.opened(key, &id);
        let context = id.as_str().to_owned();
        tokio::spawn(run_chat(
            Arc::clone(&self.shared),
            id,
            chat,
            callback,
            receiver,
        ));
        Delivery::Opened { context }
    }

    /// The replica this switchboard runs in, if it was given one
    /// ([`SwitchboardOptions::with_replica`]).
    pub fn replica(&self) -> Option<&ReplicaName> {
        self.shared.options.replica.as_ref()
    }

    /// How many chats are open.
    pub fn open_chats(&self) -> usize {
        self.shared.chats.lock().map_or(0, |chats| chats.open.len())
    }

    /// Ends every open chat (the visitor's messaging stopped, the meeting
    /// terminated) and refuses new ones; waits at most `grace` for them to
    /// finish. Returns how many were still open then.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        let senders: Vec<_> = self
            .shared
            .chats
            .lock()
            .map(|mut chats| {
                chats.closing = true;
                chats.open.values().cloned().collect()
            })
            .unwrap_or_default();
        for sender in senders {
            let _ = sender.send(Input::ShutDown);
        }
        let waited = tokio::time::timeout(grace, async {
            loop {
                let ended = self.shared.ended.notified();
                if self.open_chats() == 0 {
                    return;
                }
                ended.await;
            }
        })
        .await;
        let left = self.open_chats();
        if waited.is_err() {
            warn!(left, "chats still open when the grace period ended");
        }
        left
    }
}
