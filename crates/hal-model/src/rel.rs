//! Link relation names, across the API's two namespaces.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The namespaces the API used for its own link relations.
///
/// Newer deployments wrote `service:applications`; older ones wrote
/// `ms:rtc:saas:applications`. Both name the same relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Namespace {
    /// The `service:` prefix.
    Service,
    /// The `ms:rtc:saas:` prefix.
    RtcSaas,
}

impl Namespace {
    /// Every namespace, in the order prefixes are tried when parsing.
    pub const ALL: [Self; 2] = [Self::RtcSaas, Self::Service];

    /// The prefix, colon included, as it appears in a rel.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Service => "service:",
            Self::RtcSaas => "ms:rtc:saas:",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A link relation name such as `self`, `service:applications` or
/// `ms:rtc:saas:applications`.
///
/// A `Rel` keeps the exact text it was made from (so it serializes back the
/// way it came), but compares by meaning:
///
/// - two rels in the API's namespaces are equal when their local names are
///   equal, whichever prefix each one carries;
/// - a rel without one of those prefixes (`self`, `anonApplications`) equals
///   only the same text;
/// - a prefixed rel never equals an unprefixed one.
///
/// ```
/// use hal_model::Rel;
/// assert_eq!(Rel::from("service:applications"), Rel::from("ms:rtc:saas:applications"));
/// assert_ne!(Rel::from("service:self"), Rel::from("self"));
/// assert!(Rel::from("ms:rtc:saas:applications").has_local_name("applications"));
/// ```
#[derive(Clone)]
pub struct Rel {
    raw: String,
    namespace: Option<Namespace>,
}

impl Rel {
    /// A rel in the given namespace.
    pub fn new(namespace: Namespace, local_name: &str) -> Self {
        Self {
            raw: format!("{}{local_name}", namespace.prefix()),
            namespace: Some(namespace),
        }
    }

    /// A rel in no namespace, such as `self`.
    ///
    /// If `name` carries one of the API's prefixes it is recognised as such,
    /// exactly as [`Rel::from`] does.
    pub fn parse(name: &str) -> Self {
        let namespace = Namespace::ALL
            .into_iter()
            .find(|ns| name.starts_with(ns.prefix()));
        Self {
            raw: name.to_owned(),
            namespace,
        }
    }

    /// The text exactly as received or built.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The namespace, if the rel carries one of the API's prefixes.
    pub fn namespace(&self) -> Option<Namespace> {
        self.namespace
    }

    /// The name without the namespace prefix (`applications` for
    /// `service:applications`; the whole text for `self`).
    pub fn local_name(&self) -> &str {
        match self.namespace {
            Some(ns) => self.raw.get(ns.prefix().len()..).unwrap_or_default(),
            None => &self.raw,
        }
    }

    /// Whether this rel is `local_name` in either namespace, or exactly
    /// `local_name` without a namespace.
    pub fn has_local_name(&self, local_name: &str) -> bool {
        self.local_name() == local_name
    }

    /// The same relation in another namespace (unprefixed rels are returned
    /// unchanged).
    pub fn in_namespace(&self, namespace: Namespace) -> Self {
        match self.namespace {
            Some(_) => Self::new(namespace, self.local_name()),
            None => self.clone(),
        }
    }
}

impl From<&str> for Rel {
    fn from(value: &str) -> Self {
        Self::parse(value)
    }
}

impl From<String> for Rel {
    fn from(value: String) -> Self {
        let parsed = Self::parse(&value);
        Self {
            raw: value,
            namespace: parsed.namespace,
        }
    }
}

impl PartialEq for Rel {
    fn eq(&self, other: &Self) -> bool {
        match (self.namespace, other.namespace) {
            (Some(_), Some(_)) => self.local_name() == other.local_name(),
            (None, None) => self.raw == other.raw,
            _ => false,
        }
    }
}

impl Eq for Rel {}

impl Hash for Rel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.is_some().hash(state);
        self.local_name().hash(state);
    }
}

impl PartialOrd for Rel {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rel {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.namespace.is_some(), self.local_name())
            .cmp(&(other.namespace.is_some(), other.local_name()))
    }
}

impl fmt::Debug for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Rel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Rel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// The local names of the API's relations this project reads or writes.
pub mod names {
    /// The discovery resource's link to the applications resource.
    pub const APPLICATIONS: &str = "applications";
    /// The applications resource's link to the application resource.
    pub const APPLICATION: &str = "application";
    /// The capability to mint anonymous application tokens.
    pub const ANON_APPLICATION_TOKENS: &str = "anonApplicationTokens";
    /// The rel of a minted anonymous application token.
    pub const ANON_APPLICATION_TOKEN: &str = "anonApplicationToken";
    /// The anonymous discover link of a minted token (and the rel of the
    /// anonymous discovery resource).
    pub const DISCOVER: &str = "discover";
    /// The anonymous discovery resource's link to UCWA's anonymous applications.
    pub const ANON_APPLICATIONS: &str = "anonApplications";
    /// The embedded communication capability.
    pub const COMMUNICATION: &str = "communication";
    /// The embedded ad hoc meetings capability.
    pub const ADHOC_MEETINGS: &str = "adhocMeetings";
    /// Messaging, under communication.
    pub const START_MESSAGING: &str = "startMessaging";
    /// Joining an online meeting, under communication.
    pub const JOIN_ONLINE_MEETING: &str = "joinOnlineMeeting";
    /// Inviting a user to a meeting, under communication.
    pub const INVITE_USER_TO_MEETING: &str = "inviteUserToMeeting";
    /// A resource's link to itself.
    pub const SELF: &str = "self";
    /// Extra link some discovery answers carried; clients ignore it.
    pub const MY_APPLICATIONS: &str = "myApplications";
}

/// The local names of the chat's relations: the platform's resources and
/// events (in either namespace, as the SA sees them) and UCWA's (bare, as
/// the widget sees them).
pub mod chat_names {
    /// A messaging invitation (the visitor's, or the SA's `addMessaging`).
    pub const MESSAGING_INVITATION: &str = "messagingInvitation";
    /// The invitation that starts an ad hoc meeting.
    pub const ONLINE_MEETING_INVITATION: &str = "onlineMeetingInvitation";
    /// The invitation of a participant (an agent) into the meeting.
    pub const PARTICIPANT_INVITATION: &str = "participantInvitation";
    /// A conversation (the visitor's peer-to-peer one, or the meeting's).
    pub const CONVERSATION: &str = "conversation";
    /// A conversation's messaging modality.
    pub const MESSAGING: &str = "messaging";
    /// The online meeting of a conference.
    pub const ONLINE_MEETING: &str = "onlineMeeting";
    /// The bridge from the visitor's conversation into the meeting.
    pub const CONVERSATION_BRIDGE: &str = "conversationBridge";
    /// A participant the bridge passes on.
    pub const BRIDGED_PARTICIPANT: &str = "bridgedParticipant";
    /// The collection of bridged participants (the link to add one).
    pub const BRIDGED_PARTICIPANTS: &str = "bridgedParticipants";
    /// A participant of a conversation.
    pub const PARTICIPANT: &str = "participant";
    /// The widget's own participant.
    pub const LOCAL_PARTICIPANT: &str = "localParticipant";
    /// A participant's messaging leg.
    pub const PARTICIPANT_MESSAGING: &str = "participantMessaging";
    /// The participants of a conversation.
    pub const PARTICIPANTS: &str = "participants";
    /// The participants typing now.
    pub const TYPING_PARTICIPANTS: &str = "typingParticipants";
    /// A message.
    pub const MESSAGE: &str = "message";
    /// A message's plain-text body (a data URI).
    pub const PLAIN_MESSAGE: &str = "plainMessage";
    /// A message's HTML body (a data URI).
    pub const HTML_MESSAGE: &str = "htmlMessage";
    /// The sender of a message, embedded.
    pub const SENDER_PARTICIPANT: &str = "senderParticipant";
    /// Who sent an invitation, embedded.
    pub const FROM: &str = "from";
    /// The visitor's own participant in the anonymous application.
    pub const ME: &str = "me";
    /// The optional custom content of an invitation (a data URI).
    pub const CUSTOM_CONTENT: &str = "customContent";
    /// The event channel of an anonymous application.
    pub const EVENTS: &str = "events";
    /// Starts an ad hoc meeting (on the incoming invitation).
    pub const START_ADHOC_MEETING: &str = "startAdhocMeeting";
    /// Accepts the invitation into a meeting (on the incoming invitation).
    pub const ACCEPT_AND_BRIDGE: &str = "acceptAndBridge";
    /// Declines the invitation.
    pub const DECLINE: &str = "decline";
    /// Adds the SA's messaging to the meeting.
    pub const ADD_MESSAGING: &str = "addMessaging";
    /// Invites a participant into the meeting.
    pub const ADD_PARTICIPANT: &str = "addParticipant";
    /// Sends a message.
    pub const SEND_MESSAGE: &str = "sendMessage";
    /// Says the sender is typing.
    pub const SET_IS_TYPING: &str = "setIsTyping";
    /// Ends the messaging modality.
    pub const STOP_MESSAGING: &str = "stopMessaging";
    /// Ends the meeting.
    pub const TERMINATE_ONLINE_MEETING: &str = "terminateOnlineMeeting";
}
