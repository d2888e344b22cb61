//! The switchboard: callbacks in, one task per chat, a clean shutdown.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ta_protocol::chat::{Callback, CallbackError, ChatId, Timers, read_callback};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};
use url::Url;

use super::ChatRouter;
use super::task::{Input, run_chat};
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
}

impl SwitchboardOptions {
    /// Sets the timers (builder style).
    pub fn with_timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }
}

/// What became of a delivered callback. Every kind is answered `200`; only
/// [`Delivery::Opened`] carries a body.
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
    /// A heartbeat, or events for no chat this SA runs (one that ended, or
    /// another SA's).
    Ignored,
    /// An invitation while shutting down: not opened (the platform's
    /// invitation times out; the visitor may try again).
    Closing,
}

/// The most deliveries remembered to spot a repeat.
const RECENT_DELIVERIES: usize = 1024;

/// The digests of recent deliveries, in arrival order and as a set.
type Recent = (VecDeque<[u8; 32]>, HashSet<[u8; 32]>);

pub(super) struct Shared {
    pub(super) bootstrapper: Bootstrapper,
    pub(super) router: Arc<dyn ChatRouter>,
    pub(super) options: SwitchboardOptions,
    pub(super) chats: Mutex<HashMap<ChatId, mpsc::UnboundedSender<Input>>>,
    pub(super) ended: Notify,
    closing: AtomicBool,
    recent: Mutex<Recent>,
}

impl Shared {
    /// Forgets a chat that ended.
    pub(super) fn remove(&self, id: &ChatId) {
        if let Ok(mut chats) = self.chats.lock() {
            chats.remove(id);
        }
        self.ended.notify_waiters();
    }

    /// Whether this delivery was seen before (and remembers it).
    fn repeated(&self, context: Option<&str>, body: &[u8]) -> bool {
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        digest.update(context.unwrap_or_default().as_bytes());
        digest.update(&[0]);
        digest.update(body);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.finish().as_ref());
        let Ok(mut recent) = self.recent.lock() else {
            return false;
        };
        let (order, set) = &mut *recent;
        if !set.insert(key) {
            return true;
        }
        order.push_back(key);
        if order.len() > RECENT_DELIVERIES
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        false
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
                chats: Mutex::new(HashMap::new()),
                ended: Notify::new(),
                closing: AtomicBool::new(false),
                recent: Mutex::new((VecDeque::new(), HashSet::new())),
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
        if self.shared.repeated(context, body) {
            info!("a callback was delivered again: ignored");
            return Ok(Delivery::Duplicate);
        }
        if let Some(context) = context {
            return Ok(self.route(context, callback));
        }
        if callback.invitation().is_some() {
            return Ok(self.open(callback));
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
            .and_then(|chats| chats.get(&id).cloned());
        match sender {
            Some(sender) if sender.send(Input::Callback(Box::new(callback))).is_ok() => {
                Delivery::Routed
            }
            _ => Delivery::Ignored,
        }
    }

    fn open(&self, callback: Callback) -> Delivery {
        if self.shared.closing.load(Ordering::SeqCst) {
            return Delivery::Closing;
        }
        let Some(chat) = callback.invitation().cloned() else {
            return Delivery::Ignored;
        };
        let unique = self.shared.bootstrapper.entropy().unique_id();
        let id: String = unique
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect();
        let Ok(id) = ChatId::new(format!("c{id}")) else {
            return Delivery::Ignored;
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Ok(mut chats) = self.shared.chats.lock() {
            chats.insert(id.clone(), sender);
        }
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

    /// How many chats are open.
    pub fn open_chats(&self) -> usize {
        self.shared.chats.lock().map_or(0, |chats| chats.len())
    }

    /// Ends every open chat (the visitor's messaging stopped, the meeting
    /// terminated) and refuses new ones; waits at most `grace` for them to
    /// finish. Returns how many were still open then.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        self.shared.closing.store(true, Ordering::SeqCst);
        let senders: Vec<_> = self
            .shared
            .chats
            .lock()
            .map(|chats| chats.values().cloned().collect())
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
