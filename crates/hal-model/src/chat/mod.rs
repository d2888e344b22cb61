//! The chat's resources, typed: what the platform's callbacks embed for the
//! SA (in either namespace) and what UCWA's anonymous application shows the
//! widget (bare rels). Each wraps the generic [`Resource`], so nothing the
//! server sent is lost; a missing member is `None`, for the caller to judge.

mod conversation;
mod inputs;
mod invitations;
mod states;

use crate::{Link, Resource, chat_names as n};

pub use conversation::{
    BridgedParticipant, Conversation, ConversationBridge, Message, Messaging, OnlineMeeting,
    Participant,
};
pub use inputs::{
    AcceptAndBridgeInput, AddMessagingInput, AddParticipantInput, AnonApplicationInput,
    BridgedParticipantInput, CallbackAnswer, MAX_CALLBACK_URL_CHARS, MAX_OPERATION_ID_CHARS,
    MAX_SUBJECT_CHARS, StartAdhocMeetingInput, StartMessagingInput,
};
pub use invitations::{MessagingInvitation, OnlineMeetingInvitation, ParticipantInvitation};
pub use states::{
    ConversationState, Direction, EventType, InvitationState, MessageFilterState, ModalityState,
    OperationStatus,
};

/// The application id (`appid` claim) of the platform's callback tokens:
/// Skype for Business Online, as the SDK's
/// `SkypeForBusinessApplicationClientId`.
pub const PLATFORM_APP_ID: &str = "00000004-0000-0ff1-ce00-000000000000";

resource_wrapper!(
    /// The widget's anonymous UCWA application, as `anonApplications`
    /// answers it: its events link and its communication resource (with
    /// `startMessaging`).
    UcwaApplication
);

impl UcwaApplication {
    /// The application's id.
    pub fn id(&self) -> Option<&str> {
        self.0.str_property("id")
    }

    /// The endpoint id: the token's `applicationSessionId`.
    pub fn endpoint_id(&self) -> Option<&str> {
        self.0.str_property("endpointId")
    }

    /// The event channel's first poll.
    pub fn events(&self) -> Option<&Link> {
        self.0.link(n::EVENTS)
    }

    /// The embedded communication resource.
    pub fn communication(&self) -> Option<&Resource> {
        self.0.embedded_resource(crate::names::COMMUNICATION)
    }

    /// The link that starts a chat (`communication`'s `startMessaging`).
    pub fn start_messaging(&self) -> Option<&Link> {
        self.communication()
            .and_then(|c| c.link(crate::names::START_MESSAGING))
    }

    /// The visitor's own participant.
    pub fn me(&self) -> Option<Participant> {
        self.0.embedded_as(n::ME)
    }
}
