//! The invitations of a chat: the visitor's messaging invitation, the
//! SA's online meeting and the agents' participant invitations.

use super::{Direction, InvitationState, Participant};
use crate::{Link, chat_names as n};

resource_wrapper!(
    /// A messaging invitation. The visitor's, as the SA receives it
    /// (`direction: Incoming`, with `acceptAndBridge`, `startAdhocMeeting`
    /// and `decline`), or as the widget sees its own.
    MessagingInvitation
);

impl MessagingInvitation {
    /// `Incoming` or `Outgoing`.
    pub fn direction(&self) -> Option<Direction> {
        self.0.str_property("direction").map(Direction::parse)
    }

    /// `Connecting`, `Connected`, `Failed`.
    pub fn state(&self) -> Option<InvitationState> {
        self.0.str_property("state").map(InvitationState::parse)
    }

    /// The operation id its sender chose.
    pub fn operation_id(&self) -> Option<&str> {
        self.0.str_property("operationId")
    }

    /// The subject.
    pub fn subject(&self) -> Option<&str> {
        self.0.str_property("subject")
    }

    /// Whom it invites (the helpdesk endpoint's SIP URI).
    pub fn to(&self) -> Option<&str> {
        self.0.str_property("to")
    }

    /// The thread id.
    pub fn thread_id(&self) -> Option<&str> {
        self.0.str_property("threadId")
    }

    /// The conversation it created (the visitor's peer-to-peer one).
    pub fn conversation(&self) -> Option<&Link> {
        self.0.link(n::CONVERSATION)
    }

    /// Accepts it into a meeting.
    pub fn accept_and_bridge(&self) -> Option<&Link> {
        self.0.link(n::ACCEPT_AND_BRIDGE)
    }

    /// Starts the ad hoc meeting to bridge it into.
    pub fn start_adhoc_meeting(&self) -> Option<&Link> {
        self.0.link(n::START_ADHOC_MEETING)
    }

    /// Declines it.
    pub fn decline(&self) -> Option<&Link> {
        self.0.link(n::DECLINE)
    }

    /// The optional custom content (a data URI).
    pub fn custom_content(&self) -> Option<&Link> {
        self.0.link(n::CUSTOM_CONTENT)
    }

    /// Who sent it (the embedded `from`).
    pub fn from_participant(&self) -> Option<Participant> {
        self.0.embedded_as(n::FROM)
    }
}

resource_wrapper!(
    /// The invitation that started an ad hoc meeting: it carries the
    /// meeting's URI.
    OnlineMeetingInvitation
);

impl OnlineMeetingInvitation {
    /// The operation id the SA chose.
    pub fn operation_id(&self) -> Option<&str> {
        self.0.str_property("operationId")
    }

    /// The meeting's SIP URI (what `acceptAndBridge` needs).
    pub fn online_meeting_uri(&self) -> Option<&str> {
        self.0.str_property("onlineMeetingUri")
    }

    /// The invitation's state.
    pub fn state(&self) -> Option<InvitationState> {
        self.0.str_property("state").map(InvitationState::parse)
    }

    /// The meeting's conversation.
    pub fn conversation(&self) -> Option<&Link> {
        self.0.link(n::CONVERSATION)
    }
}

resource_wrapper!(
    /// The invitation of a participant (an agent) into the meeting.
    ParticipantInvitation
);

impl ParticipantInvitation {
    /// The operation id the SA chose.
    pub fn operation_id(&self) -> Option<&str> {
        self.0.str_property("operationId")
    }

    /// The invitation's state.
    pub fn state(&self) -> Option<InvitationState> {
        self.0.str_property("state").map(InvitationState::parse)
    }

    /// Whom it invites.
    pub fn to(&self) -> Option<&str> {
        self.0.str_property("to")
    }
}
