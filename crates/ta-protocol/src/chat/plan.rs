//! What a chat is given and what it tells: its id, the routing policy's
//! plan, its timers, its notices and how it ended.

use std::fmt;
use std::time::Duration;

/// The SA's id for one chat: the `callbackContext` its callbacks carry and
/// the stem of its operation ids (which the API caps at 50 characters).
/// 1–32 characters of `A-Z a-z 0-9 - _`. Made by the driver (this crate
/// has no randomness).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(String);

/// Why a text is not a [`ChatId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a chat id is 1 to {max} characters of A-Z a-z 0-9 - _, not {shown:?}")]
pub struct InvalidChatId {
    shown: String,
    max: usize,
}

impl ChatId {
    /// The longest id: with the longest suffix (`-a99`), an operation id
    /// stays within the API's 50 characters.
    pub const MAX_CHARS: usize = 32;

    /// Checks and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidChatId> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidChatId {
                shown: id.chars().take(40).collect(),
                max: Self::MAX_CHARS,
            })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The operation id of one of this chat's operations.
    pub(crate) fn operation(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.0)
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A support agent: a Skype for Business user invited into the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The agent's SIP URI (`sip:anna@contoso.com`).
    pub uri: String,
    /// The name the visitor sees for the agent.
    pub display_name: String,
}

impl Agent {
    /// An agent at `uri`, shown to the visitor as `display_name`.
    pub fn new(uri: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            display_name: display_name.into(),
        }
    }
}

/// What the SA does with one accepted chat: the routing policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The agents to invite (all at once). None: the visitor is told
    /// `unavailable` and the chat ends.
    pub agents: Vec<Agent>,
    /// The name the visitor sees for the help desk.
    pub helpdesk_name: String,
    /// The meeting's subject.
    pub subject: String,
    /// Sent to the visitor once bridged.
    pub welcome: Option<String>,
    /// Sent to the visitor when no agent joins in time (then the chat
    /// ends).
    pub unavailable: Option<String>,
    /// How long agents have to join.
    pub join_timeout: Duration,
}

impl Plan {
    /// A plan inviting `agents`, with the default texts and a 60 s join
    /// timeout.
    pub fn new(agents: Vec<Agent>) -> Self {
        Self {
            agents,
            helpdesk_name: "Help Desk".to_owned(),
            subject: "Support chat".to_owned(),
            welcome: Some("Welcome! An agent will be with you shortly.".to_owned()),
            unavailable: Some(
                "Sorry, no agent is available right now. Please try again later.".to_owned(),
            ),
            join_timeout: Duration::from_secs(60),
        }
    }

    /// Sets the help desk's name (builder style).
    pub fn with_helpdesk_name(mut self, name: impl Into<String>) -> Self {
        self.helpdesk_name = name.into();
        self
    }

    /// Sets the meeting's subject (builder style).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets (or, with `None`, drops) the welcome (builder style).
    pub fn with_welcome(mut self, welcome: Option<String>) -> Self {
        self.welcome = welcome;
        self
    }

    /// Sets (or drops) the no-agent text (builder style).
    pub fn with_unavailable(mut self, text: Option<String>) -> Self {
        self.unavailable = text;
        self
    }

    /// Sets the join timeout (builder style).
    pub fn with_join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }
}

/// How long a chat waits for the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timers {
    /// The most an operation's events may take (the SDK waits 30 s for a
    /// `started` event and treats silence as failure).
    pub operation_timeout: Duration,
    /// The most the ending waits for a link it needs (the meeting's
    /// `terminateOnlineMeeting`) before it gives up on it.
    pub cleanup_timeout: Duration,
    /// The longest a chat lives (an ad hoc meeting expires after 8 hours
    /// by default): past it, it is ended, so that a chat whose last
    /// callback was lost does not stay open for good.
    pub max_chat: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(30),
            cleanup_timeout: Duration::from_secs(30),
            max_chat: Duration::from_secs(8 * 3600),
        }
    }
}

impl Timers {
    /// The operation and cleanup timers at `timeout` (tests shorten
    /// them); the longest life as by default.
    pub fn uniform(timeout: Duration) -> Self {
        Self {
            operation_timeout: timeout,
            cleanup_timeout: timeout,
            ..Self::default()
        }
    }

    /// Sets the longest life of a chat (builder style).
    pub fn with_max_chat(mut self, max: Duration) -> Self {
        self.max_chat = max;
        self
    }

    /// Sets the cleanup timer (builder style).
    pub fn with_cleanup_timeout(mut self, timeout: Duration) -> Self {
        self.cleanup_timeout = timeout;
        self
    }
}

/// Who or what ended a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndedBy {
    /// The visitor left (their conversation was deleted or disconnected,
    /// or their invitation was withdrawn).
    Visitor,
    /// The agents left.
    Agent,
    /// No agent joined in time (or none was listed).
    NoAgent,
    /// The SA: shutdown, reload or its operator.
    Service,
    /// The routing policy declined the chat.
    Declined,
    /// The platform ended the meeting.
    Platform,
    /// Something failed; the text says what.
    Failure(String),
}

impl EndedBy {
    /// A stable, lower-case name, for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Agent => "agent",
            Self::NoAgent => "no_agent",
            Self::Service => "service",
            Self::Declined => "declined",
            Self::Platform => "platform",
            Self::Failure(_) => "failure",
        }
    }
}

/// Who a message came from, seen by the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageFrom {
    /// The visitor, to the agents.
    Visitor,
    /// An agent, to the visitor.
    Agent,
    /// The SA itself (the welcome, the no-agent text).
    Service,
}

impl MessageFrom {
    /// A stable, lower-case name, for metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Agent => "agent",
            Self::Service => "service",
        }
    }
}

/// What a chat tells its driver, for logs and metrics
/// ([`Bridge::poll_notice`](super::Bridge::poll_notice)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The visitor's conversation is bridged into the meeting.
    Bridged {
        /// Since the invitation.
        after: Duration,
    },
    /// An agent joined the meeting.
    AgentJoined {
        /// The agent's SIP URI.
        uri: String,
        /// Since the agent was invited.
        after: Duration,
    },
    /// An agent left the meeting.
    AgentLeft {
        /// The agent's SIP URI.
        uri: String,
    },
    /// A message went through.
    Message {
        /// Who sent it.
        from: MessageFrom,
    },
    /// A call failed (the chat ends, unless it was part of the ending).
    CallFailed {
        /// Which call.
        kind: super::ChatCallKind,
        /// What went wrong (tokens masked).
        error: String,
    },
    /// The chat is over: nothing more will be sent for it.
    Ended {
        /// Who or what ended it.
        by: EndedBy,
        /// Since the invitation.
        after: Duration,
    },
}
