//! The emulated chat world: the widgets' anonymous applications, the
//! conversations (the visitor's peer-to-peer one, the SA's meeting), and
//! the bookkeeping tests read.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hal_model::{Event, EventLink, EventType, Rel, Resource, Sender};
use tokio::sync::mpsc;
use url::Url;

use super::channel::Channel;
use super::deliver::Outgoing;
use crate::chat_config::CallbackFaults;
use crate::stats::ChatStats;

/// A widget's anonymous UCWA application.
#[derive(Debug)]
pub(in crate::app) struct UcwaApp {
    pub(super) id: String,
    /// The psat session it was created with (`asi`): only that session's
    /// token is accepted on it.
    pub(super) session: String,
    /// The endpoint the token was minted for (`aeu`).
    pub(super) endpoint: String,
    /// The origins the token allows.
    pub(super) origins: Vec<String>,
    pub(super) display_name: String,
    pub(super) visitor_uri: String,
    pub(super) channel: Channel,
}

/// Where a conversation's callbacks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) url: Url,
    pub(super) context: Option<String>,
}

/// A conversation: the visitor's (`p2p`, with `app`) or the SA's meeting.
#[derive(Debug, Default)]
pub(super) struct Conversation {
    pub(super) id: String,
    /// The widget's application (the visitor's conversation).
    pub(super) app: Option<String>,
    /// The visitor's invitation.
    pub(super) invitation: Option<String>,
    pub(super) accepted: bool,
    pub(super) ended: bool,
    /// The visitor's conversation: the meeting it is bridged into.
    pub(super) meeting: Option<String>,
    /// The meeting: the visitor's conversation bridged into it.
    pub(super) bridged_from: Option<String>,
    /// The meeting: its URI.
    pub(super) meeting_uri: Option<String>,
    /// The visitor's conversation: the help desk's name, and the bridged
    /// participants' names by URI.
    pub(super) helpdesk_name: Option<String>,
    pub(super) bridged: HashMap<String, String>,
    /// The meeting: agents invited (by URI: joined yet?).
    pub(super) agents: HashMap<String, bool>,
    /// The meeting: whether the SA added its messaging.
    pub(super) sa_messaging: bool,
    /// Where its callbacks go (none known yet: the default URL).
    pub(super) target: Option<Target>,
    pub(super) next_message: u64,
    /// Agents' answer counters, by agent URI.
    pub(super) answered: HashMap<String, usize>,
    /// The meeting: whether the visitor spoke before any agent was in (the
    /// first agent to join answers it).
    pub(super) unanswered: bool,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) apps: HashMap<String, Arc<UcwaApp>>,
    pub(super) conversations: HashMap<String, Conversation>,
    /// The applications gone (signed out or expired) and their origins,
    /// the latest last: a page may still read the `404` its poll gets.
    pub(super) gone: VecDeque<(String, Vec<String>)>,
}

/// How many gone applications' origins are kept for CORS.
const KEPT_GONE: usize = 512;

/// Past this many conversations, the ended ones are forgotten (a late call
/// on one is then `404`), so that a long-running emulator stays small.
const KEPT_CONVERSATIONS: usize = 512;

/// The most entries `ChatStats`' lists keep (the oldest half goes).
const KEPT_LOG: usize = 4096;

impl Inner {
    /// Forgets the application `app`, keeping its origins for CORS.
    pub(super) fn remove_app(&mut self, app: &UcwaApp) {
        self.apps.remove(&app.id);
        if self.gone.len() >= KEPT_GONE {
            self.gone.pop_front();
        }
        self.gone.push_back((app.id.clone(), app.origins.clone()));
    }

    /// The origins of the application `id`, alive or gone.
    pub(super) fn origins_of(&self, id: &str) -> Option<&[String]> {
        match self.apps.get(id) {
            Some(app) => Some(&app.origins),
            None => self
                .gone
                .iter()
                .rev()
                .find(|(gone, _)| gone == id)
                .map(|(_, origins)| origins.as_slice()),
        }
    }

    /// Adds a conversation, forgetting the ended ones when there are many.
    pub(super) fn insert_conversation(&mut self, conversation: Conversation) {
        if self.conversations.len() >= KEPT_CONVERSATIONS {
            self.conversations.retain(|_, c| !c.ended);
        }
        self.conversations
            .insert(conversation.id.clone(), conversation);
    }
}

/// The chat world of one emulator.
#[derive(Debug)]
pub(in crate::app) struct World {
    pub(super) inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Which of the platform's keys signs callbacks (0, or 1 after a
    /// rotation).
    pub(super) signing_key: AtomicUsize,
    pub(super) callback_url: Mutex<Option<Url>>,
    /// The callback faults now.
    callback_faults: Mutex<CallbackFaults>,
    pub(super) outgoing: mpsc::UnboundedSender<Outgoing>,
    pub(super) stats: Mutex<ChatStats>,
}

impl World {
    pub(in crate::app) fn new(
        callback_url: Option<Url>,
        callback_faults: CallbackFaults,
        outgoing: mpsc::UnboundedSender<Outgoing>,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(1),
            signing_key: AtomicUsize::new(0),
            callback_url: Mutex::new(callback_url),
            callback_faults: Mutex::new(callback_faults),
            outgoing,
            stats: Mutex::new(ChatStats::default()),
        }
    }

    /// A fresh id, `prefix` then a number.
    pub(super) fn fresh_id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{n}")
    }

    pub(super) fn stat(&self, update: impl FnOnce(&mut ChatStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            update(&mut stats);
            let stats = &mut *stats;
            for log in [&mut stats.calls, &mut stats.ended] {
                if log.len() > KEPT_LOG {
                    log.drain(..KEPT_LOG / 2);
                }
            }
        }
    }

    /// Records one of the SA's calls, in order.
    pub(super) fn log_call(&self, call: &str) {
        self.stat(|s| s.calls.push(call.to_owned()));
    }

    pub(in crate::app) fn stats(&self) -> ChatStats {
        let mut stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(inner) = self.inner.lock() {
            stats.conversations_open =
                inner.conversations.values().filter(|c| !c.ended).count() as u64;
            stats.applications = inner.apps.len() as u64;
        }
        stats
    }

    /// The conversations open now, each in a line: whose, and how far it
    /// got (for a report of what was left open).
    pub(in crate::app) fn open_conversations(&self) -> Vec<String> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut open: Vec<String> = inner
            .conversations
            .values()
            .filter(|c| !c.ended)
            .map(|c| {
                if c.bridged_from.is_some() || c.meeting_uri.is_some() && c.app.is_none() {
                    format!(
                        "meeting {}: bridged from {}, agents {}, the SA's messaging {}",
                        c.id,
                        c.bridged_from.as_deref().unwrap_or("nothing"),
                        c.agents.len(),
                        if c.sa_messaging { "added" } else { "not added" }
                    )
                } else {
                    format!(
                        "visitor's {}: application {}, invitation {}, {}, meeting {}",
                        c.id,
                        match &c.app {
                            Some(app) if inner.apps.contains_key(app) => "alive",
                            Some(_) => "gone",
                            None => "none",
                        },
                        if c.invitation.is_some() {
                            "sent"
                        } else {
                            "none"
                        },
                        if c.accepted {
                            "accepted"
                        } else {
                            "not accepted"
                        },
                        c.meeting.as_deref().unwrap_or("none")
                    )
                }
            })
            .collect();
        open.sort();
        open
    }

    pub(super) fn app(&self, id: &str) -> Option<Arc<UcwaApp>> {
        self.inner.lock().ok()?.apps.get(id).cloned()
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut inner| f(&mut inner))
    }

    /// Sets where the SA's callbacks go.
    pub(in crate::app) fn set_callback_url(&self, url: Option<Url>) {
        if let Ok(mut slot) = self.callback_url.lock() {
            *slot = url;
        }
    }

    /// The callback faults now.
    pub(in crate::app) fn callback_faults(&self) -> CallbackFaults {
        self.callback_faults
            .lock()
            .map_or(CallbackFaults::NONE, |f| *f)
    }

    /// Sets the callback faults.
    pub(in crate::app) fn set_callback_faults(&self, faults: CallbackFaults) {
        if let Ok(mut slot) = self.callback_faults.lock() {
            *slot = faults;
        }
    }

    /// Switches callback signing to the other key.
    pub(in crate::app) fn rotate_key(&self) {
        self.signing_key.store(1, Ordering::Relaxed);
    }
}

/// One event (builder shorthand).
pub(super) fn event(rel: Rel, href: &str, kind: EventType, target: Option<Resource>) -> Event {
    let event = Event::new(EventLink::new(rel, href), kind);
    match target {
        Some(resource) => event.with_target(resource),
        None => event,
    }
}

/// One sender group.
pub(super) fn group(rel: Rel, href: &str, events: Vec<Event>) -> Sender {
    Sender::new(rel, href, events)
}
