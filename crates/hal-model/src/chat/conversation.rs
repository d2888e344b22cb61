//! A chat's conversations and what hangs off them: the meeting, messaging,
//! the bridge, participants and messages.

use super::{ConversationState, Direction, MessageFilterState, ModalityState};
use crate::{DataUri, DataUriError, ExpiryTime, ExpiryTimeError, Link, chat_names as n};

resource_wrapper!(
    /// A conversation: the visitor's peer-to-peer one, or the SA's meeting.
    Conversation
);

impl Conversation {
    /// Its state.
    pub fn state(&self) -> Option<ConversationState> {
        self.0.str_property("state").map(ConversationState::parse)
    }

    /// The modalities in use (`["Messaging"]`).
    pub fn active_modalities(&self) -> Vec<&str> {
        self.0
            .properties
            .get("activeModalities")
            .and_then(serde_json::Value::as_array)
            .map(|all| all.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The subject.
    pub fn subject(&self) -> Option<&str> {
        self.0.str_property("subject")
    }

    /// The messaging modality.
    pub fn messaging(&self) -> Option<&Link> {
        self.0.link(n::MESSAGING)
    }

    /// The online meeting (a conference).
    pub fn online_meeting(&self) -> Option<&Link> {
        self.0.link(n::ONLINE_MEETING)
    }

    /// Invites a participant (a conference).
    pub fn add_participant(&self) -> Option<&Link> {
        self.0.link(n::ADD_PARTICIPANT)
    }

    /// The participants.
    pub fn participants(&self) -> Option<&Link> {
        self.0.link(n::PARTICIPANTS)
    }

    /// The bridge into a meeting (a bridged conversation).
    pub fn conversation_bridge(&self) -> Option<&Link> {
        self.0.link(n::CONVERSATION_BRIDGE)
    }
}

resource_wrapper!(
    /// A conference's online meeting.
    OnlineMeeting
);

impl OnlineMeeting {
    /// The meeting's SIP URI.
    pub fn online_meeting_uri(&self) -> Option<&str> {
        self.0.str_property("onlineMeetingUri")
    }

    /// Ends the meeting.
    pub fn terminate_online_meeting(&self) -> Option<&Link> {
        self.0.link(n::TERMINATE_ONLINE_MEETING)
    }
}

resource_wrapper!(
    /// A conversation's messaging modality. Connected, it links
    /// `sendMessage`, `setIsTyping`, `typingParticipants` and
    /// `stopMessaging`; disconnected, `addMessaging`.
    Messaging
);

impl Messaging {
    /// Its state.
    pub fn state(&self) -> Option<ModalityState> {
        self.0.str_property("state").map(ModalityState::parse)
    }

    /// Sends a message.
    pub fn send_message(&self) -> Option<&Link> {
        self.0.link(n::SEND_MESSAGE)
    }

    /// Says the sender is typing.
    pub fn set_is_typing(&self) -> Option<&Link> {
        self.0.link(n::SET_IS_TYPING)
    }

    /// Who is typing.
    pub fn typing_participants(&self) -> Option<&Link> {
        self.0.link(n::TYPING_PARTICIPANTS)
    }

    /// Ends messaging.
    pub fn stop_messaging(&self) -> Option<&Link> {
        self.0.link(n::STOP_MESSAGING)
    }

    /// Adds messaging (while disconnected).
    pub fn add_messaging(&self) -> Option<&Link> {
        self.0.link(n::ADD_MESSAGING)
    }
}

resource_wrapper!(
    /// The bridge from the visitor's conversation into the meeting.
    ConversationBridge
);

impl ConversationBridge {
    /// The meeting it bridges into.
    pub fn online_meeting_uri(&self) -> Option<&str> {
        self.0.str_property("onlineMeetingUri")
    }

    /// Adds a bridged participant.
    pub fn bridged_participants(&self) -> Option<&Link> {
        self.0.link(n::BRIDGED_PARTICIPANTS)
    }
}

resource_wrapper!(
    /// A participant the bridge passes on to the visitor.
    BridgedParticipant
);

impl BridgedParticipant {
    /// The name the visitor sees.
    pub fn display_name(&self) -> Option<&str> {
        self.0.str_property("displayName")
    }

    /// The participant's SIP URI.
    pub fn participant_uri(&self) -> Option<&str> {
        self.0.str_property("participantUri")
    }

    /// Whether the participant's messages are held back.
    pub fn message_filter_state(&self) -> Option<MessageFilterState> {
        self.0
            .str_property("messageFilterState")
            .map(MessageFilterState::parse)
    }
}

resource_wrapper!(
    /// A participant of a conversation (an agent, the visitor, the SA).
    Participant
);

impl Participant {
    /// The SIP URI (`sip:1546268894@anonymous.invalid` for a visitor).
    pub fn uri(&self) -> Option<&str> {
        self.0.str_property("uri")
    }

    /// The display name: `name`, or `displayName` where a resource wrote
    /// that instead.
    pub fn name(&self) -> Option<&str> {
        self.0
            .str_property("name")
            .or_else(|| self.0.str_property("displayName"))
    }
}

resource_wrapper!(
    /// A message: its direction, time, sender and body (a data URI).
    Message
);

impl Message {
    /// `Incoming` or `Outgoing`.
    pub fn direction(&self) -> Option<Direction> {
        self.0.str_property("direction").map(Direction::parse)
    }

    /// When it was sent: `/Date(ms)/` or RFC 3339.
    pub fn time_stamp(&self) -> Option<Result<ExpiryTime, ExpiryTimeError>> {
        self.0.str_property("timeStamp").map(ExpiryTime::parse)
    }

    /// The plain-text body link.
    pub fn plain_message(&self) -> Option<&Link> {
        self.0.link(n::PLAIN_MESSAGE)
    }

    /// The HTML body link.
    pub fn html_message(&self) -> Option<&Link> {
        self.0.link(n::HTML_MESSAGE)
    }

    /// The body, decoded: the plain-text one, else the HTML one.
    pub fn body(&self) -> Option<Result<DataUri, DataUriError>> {
        self.plain_message()
            .or_else(|| self.html_message())
            .map(|link| DataUri::parse(&link.href))
    }

    /// The sender's participant link (its `title` is the sender's name).
    pub fn participant(&self) -> Option<&Link> {
        self.0.link(n::PARTICIPANT)
    }

    /// The sender's name: the embedded sender participant's, else the
    /// participant link's title.
    pub fn sender_name(&self) -> Option<&str> {
        self.0
            .embedded()
            .find(n::SENDER_PARTICIPANT)
            .and_then(|(rel, _)| self.0.embedded().get_all(rel).first())
            .and_then(|p| {
                p.str_property("name")
                    .or_else(|| p.str_property("displayName"))
            })
            .or_else(|| self.participant().and_then(|l| l.title.as_deref()))
            .filter(|name| !name.is_empty())
    }
}
