//! A callback read into the facts a chat moves on: each event of the
//! envelope, typed, with its links resolved against the callback's
//! `baseuri`. Events the SA's side does not use are kept as
//! [`Fact::Other`], never an error.

use hal_model::{
    ConversationState, Direction, EventType, ModalityState, OperationStatus, ParseError,
};
use url::Url;

/// Why a callback's body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The body is not an events envelope.
    #[error("the callback is not an events envelope: {0}")]
    Body(#[from] ParseError),
    /// It carries events but no absolute `baseuri` to resolve them against
    /// (the SDK drops such a delivery too).
    #[error("the callback's baseuri {0:?} is not an absolute URL")]
    BaseUri(String),
}

/// A conversation, as the chat tells them apart: by the path of its URL,
/// without regard to case (the query's order varies between events).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey(String);

impl ConversationKey {
    /// The key of the conversation at `url`.
    pub fn of(url: &Url) -> Self {
        Self(url.path().to_ascii_lowercase())
    }

    /// The lower-case path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The visitor's chat as it arrives: the invitation and what it says about
/// the visitor. What a routing policy decides on.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct IncomingChat {
    /// The invitation's URL.
    pub invitation: Url,
    /// The visitor's conversation.
    pub conversation: Url,
    /// Accepts the invitation into a meeting.
    pub accept_and_bridge: Url,
    /// Starts the meeting.
    pub start_adhoc_meeting: Url,
    /// Refuses the chat.
    pub decline: Option<Url>,
    /// The visitor's display name, as they gave it.
    pub visitor_name: Option<String>,
    /// The visitor's SIP URI (`sip:<digits>@anonymous.invalid`).
    pub visitor_uri: Option<String>,
    /// The chat's subject.
    pub subject: Option<String>,
    /// The helpdesk endpoint invited.
    pub to: Option<String>,
    /// The custom content, decoded, if it was readable text.
    pub custom_content: Option<String>,
}

impl std::fmt::Debug for IncomingChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The visitor's name and subject are theirs: not in logs.
        f.debug_struct("IncomingChat")
            .field("conversation", &ConversationKey::of(&self.conversation))
            .field("to", &self.to)
            .field("has_subject", &self.subject.is_some())
            .finish_non_exhaustive()
    }
}

/// One event, typed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fact {
    /// A visitor invites the help desk (`messagingInvitation` started,
    /// incoming).
    Invited(Box<IncomingChat>),
    /// A messaging invitation completed: the visitor's (it failed or was
    /// cancelled) or the SA's `addMessaging`.
    InvitationCompleted {
        /// The invitation.
        href: Url,
        /// Its operation id.
        operation_id: Option<String>,
        /// Success or failure.
        status: Option<OperationStatus>,
    },
    /// The meeting invitation: started or completed, with the meeting's URI
    /// once known.
    Meeting {
        /// The SA's operation id.
        operation_id: Option<String>,
        /// The meeting's SIP URI.
        online_meeting_uri: Option<String>,
        /// Failed, when it did.
        failed: bool,
    },
    /// An agent's invitation started or completed.
    AgentInvitation {
        /// The SA's operation id.
        operation_id: Option<String>,
        /// Whom it invited.
        to: Option<String>,
        /// Failed (declined, timed out, unreachable), when it did.
        failed: bool,
    },
    /// A conversation was added, changed or removed.
    Conversation {
        /// Which.
        key: ConversationKey,
        /// Added, updated or deleted.
        kind: EventType,
        /// Its state, when embedded.
        state: Option<ConversationState>,
        /// `addParticipant`, once it is a conference.
        add_participant: Option<Url>,
    },
    /// A conversation's online meeting, with the link that ends it.
    OnlineMeeting {
        /// The meeting's conversation.
        key: ConversationKey,
        /// `terminateOnlineMeeting`.
        terminate: Option<Url>,
    },
    /// A conversation's messaging changed.
    Messaging {
        /// Whose.
        key: ConversationKey,
        /// Its state.
        state: Option<ModalityState>,
        /// `sendMessage` (connected).
        send_message: Option<Url>,
        /// `stopMessaging` (connected).
        stop_messaging: Option<Url>,
        /// `addMessaging` (disconnected).
        add_messaging: Option<Url>,
    },
    /// The bridge from the visitor's conversation was added or changed.
    Bridge {
        /// The bridged (visitor's) conversation.
        key: ConversationKey,
        /// `bridgedParticipants`.
        bridged_participants: Option<Url>,
    },
    /// A bridged participant was added.
    BridgedParticipant {
        /// The visitor's conversation.
        key: ConversationKey,
        /// The name shown.
        display_name: Option<String>,
    },
    /// A participant joined or left a conversation.
    Participant {
        /// Which conversation.
        key: ConversationKey,
        /// Joined (`added`) or left (`deleted`).
        joined: bool,
        /// The participant's SIP URI, when given.
        uri: Option<String>,
        /// The participant's name (or the link's title).
        name: Option<String>,
        /// The participant's URL.
        href: Url,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Which conversation.
        key: ConversationKey,
        /// Started (`added`) or stopped (`deleted`).
        started: bool,
        /// The typist's URL.
        href: Url,
    },
    /// A message, incoming or outgoing, started or completed.
    Message {
        /// Which conversation.
        key: ConversationKey,
        /// The message's URL (an outgoing send's `Location`).
        href: Url,
        /// Started or completed.
        kind: EventType,
        /// Which way, seen from the SA.
        direction: Option<Direction>,
        /// The sender's SIP URI, when embedded.
        sender_uri: Option<String>,
        /// Success or failure, when completed.
        status: Option<OperationStatus>,
    },
    /// An event the SA's side does not act on.
    Other {
        /// The target's rel.
        rel: String,
        /// What happened.
        kind: EventType,
    },
}

/// A callback, read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Callback {
    /// The base the links were resolved against (none for a heartbeat).
    pub base: Option<Url>,
    /// The facts, in the order of the envelope.
    pub facts: Vec<Fact>,
    /// What could not be used, for the log: links that did not resolve
    /// (their fact has `None` there) and invitations missing a link the
    /// SA needs (kept as [`Fact::Other`]).
    pub problems: Vec<String>,
}

impl Callback {
    /// Whether the delivery is a heartbeat (no event): answer 200, do
    /// nothing.
    pub fn is_heartbeat(&self) -> bool {
        self.facts.is_empty()
    }

    /// The visitor's invitation, if this callback carries one.
    pub fn invitation(&self) -> Option<&IncomingChat> {
        self.facts.iter().find_map(|fact| match fact {
            Fact::Invited(chat) => Some(&**chat),
            _ => None,
        })
    }
}
