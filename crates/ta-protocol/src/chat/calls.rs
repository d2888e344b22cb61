//! The requests the SA makes in a chat, as pure values: what to send,
//! where, with which body. A [`ChatCall`] is sent by
//! [`Flow::chat_call`](crate::Flow::chat_call), which adds the AAD token,
//! the trust rules, redirects and retries every other step has.

use std::fmt;

use bytes::Bytes;
use hal_model::{
    AcceptAndBridgeInput, AddMessagingInput, AddParticipantInput, BridgedParticipantInput,
    MessageFilterState, StartAdhocMeetingInput,
};
use http::Method;
use url::Url;

use crate::request::JSON_UTF8;

/// The `Content-Type` of a plain-text message.
pub const TEXT_UTF8: &str = "text/plain; charset=utf-8";

/// Which of the SA's chat requests a call is (S1–S11 of chat-notes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatCallKind {
    /// `POST <startAdhocMeeting>`: the meeting the chat is bridged into.
    StartAdhocMeeting,
    /// `POST <addMessaging>`: the SA's messaging in its meeting.
    AddMessaging,
    /// `POST <acceptAndBridge>`: accepts the visitor into the meeting.
    AcceptAndBridge,
    /// `POST <bridgedParticipants>`: an agent the visitor sees.
    AddBridgedParticipant,
    /// `POST <sendMessage>`: a message from the SA (the welcome).
    SendMessage,
    /// `POST <addParticipant>`: invites an agent into the meeting.
    AddParticipant,
    /// `POST <terminateOnlineMeeting>`: ends the meeting.
    TerminateMeeting,
    /// `POST <stopMessaging>`: ends the visitor's messaging.
    StopMessaging,
    /// `POST <decline>`: refuses the chat.
    Decline,
}

impl ChatCallKind {
    /// A stable, lower-case name, for metric labels and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::StartAdhocMeeting => "chat_start_adhoc_meeting",
            Self::AddMessaging => "chat_add_messaging",
            Self::AcceptAndBridge => "chat_accept_and_bridge",
            Self::AddBridgedParticipant => "chat_add_bridged_participant",
            Self::SendMessage => "chat_send_message",
            Self::AddParticipant => "chat_add_participant",
            Self::TerminateMeeting => "chat_terminate_meeting",
            Self::StopMessaging => "chat_stop_messaging",
            Self::Decline => "chat_decline",
        }
    }

    /// The rel of the link the call's URL came from.
    pub fn rel(self) -> &'static str {
        use hal_model::chat_names as n;
        match self {
            Self::StartAdhocMeeting => n::START_ADHOC_MEETING,
            Self::AddMessaging => n::ADD_MESSAGING,
            Self::AcceptAndBridge => n::ACCEPT_AND_BRIDGE,
            Self::AddBridgedParticipant => n::BRIDGED_PARTICIPANTS,
            Self::SendMessage => n::SEND_MESSAGE,
            Self::AddParticipant => n::ADD_PARTICIPANT,
            Self::TerminateMeeting => n::TERMINATE_ONLINE_MEETING,
            Self::StopMessaging => n::STOP_MESSAGING,
            Self::Decline => n::DECLINE,
        }
    }

    /// Whether sending it twice does no more than sending it once: ending
    /// and refusing are; starting, adding and sending are not (a repeated
    /// message would show twice), so a failure that may have reached the
    /// server is not retried.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Self::TerminateMeeting | Self::StopMessaging | Self::Decline
        )
    }
}

/// What a call's failure says about sending it again, as its driver reads
/// the error: the bridge decides what to do with each
/// ([`Bridge::handle_failure`](super::Bridge::handle_failure)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallFailure {
    /// It may pass by itself: the platform busy or failing (a 5xx, a 429),
    /// the connection broken, the answer cut or unreadable. The platform
    /// may have acted on the call.
    Transient,
    /// Refused, in a way that may be lifted: another 4xx (consent revoked,
    /// a token refused), a redirect to a host the SA does not trust, the
    /// SA's own configuration. The platform did not act on the call.
    Refused,
    /// What the call acts on is gone (a 404 or a 410): the conversation,
    /// the meeting or the invitation is over already.
    Gone,
}

impl fmt::Display for ChatCallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rel())
    }
}

/// One chat request: its kind, its URL (a link the platform gave) and its
/// body.
#[derive(Clone, PartialEq)]
pub struct ChatCall {
    kind: ChatCallKind,
    url: Url,
    body: Option<Bytes>,
    content_type: &'static str,
}

impl fmt::Debug for ChatCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A message body is the visitor's or the agents' text: its size only.
        f.debug_struct("ChatCall")
            .field("kind", &self.kind)
            .field("url", &crate::DisplayUrl::new(&self.url))
            .field("body_bytes", &self.body.as_ref().map(Bytes::len))
            .finish()
    }
}

fn json<T: serde::Serialize>(value: &T) -> Option<Bytes> {
    Some(Bytes::from(hal_model::to_vec(value)))
}

impl ChatCall {
    fn new(kind: ChatCallKind, url: Url, body: Option<Bytes>) -> Self {
        Self {
            kind,
            url,
            body,
            content_type: JSON_UTF8,
        }
    }

    /// S1: starts the ad hoc meeting, whose callbacks carry
    /// `callback_context`.
    pub fn start_adhoc_meeting(url: Url, input: &StartAdhocMeetingInput) -> Self {
        Self::new(ChatCallKind::StartAdhocMeeting, url, json(input))
    }

    /// S2: adds the SA's messaging to its meeting.
    pub fn add_messaging(url: Url, operation_id: &str) -> Self {
        let input = AddMessagingInput {
            operation_id: operation_id.to_owned(),
        };
        Self::new(ChatCallKind::AddMessaging, url, json(&input))
    }

    /// S3: accepts the visitor's invitation into the meeting at
    /// `online_meeting_uri`, the help desk shown as `display_name`.
    pub fn accept_and_bridge(url: Url, online_meeting_uri: &str, display_name: &str) -> Self {
        let input = AcceptAndBridgeInput {
            online_meeting_uri: online_meeting_uri.to_owned(),
            local_user_display_name: Some(display_name.to_owned()),
        };
        Self::new(ChatCallKind::AcceptAndBridge, url, json(&input))
    }

    /// S4: an agent whose messages the visitor sees, under `display_name`.
    pub fn add_bridged_participant(url: Url, display_name: &str, participant_uri: &str) -> Self {
        let input = BridgedParticipantInput {
            display_name: display_name.to_owned(),
            participant_uri: Some(participant_uri.to_owned()),
            message_filter_state: MessageFilterState::Disabled,
        };
        Self::new(ChatCallKind::AddBridgedParticipant, url, json(&input))
    }

    /// S5: sends `text` as plain text, with `operation_id` in the query.
    pub fn send_message(url: &Url, operation_id: &str, text: &str) -> Self {
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair("operationId", operation_id);
        Self {
            content_type: TEXT_UTF8,
            ..Self::new(
                ChatCallKind::SendMessage,
                url,
                Some(Bytes::from(text.to_owned())),
            )
        }
    }

    /// S7: invites the agent at `to` into the meeting.
    pub fn add_participant(url: Url, to: &str, operation_id: &str) -> Self {
        let input = AddParticipantInput {
            to: to.to_owned(),
            operation_id: operation_id.to_owned(),
        };
        Self::new(ChatCallKind::AddParticipant, url, json(&input))
    }

    /// S8: ends the meeting.
    pub fn terminate_meeting(url: Url) -> Self {
        Self::new(ChatCallKind::TerminateMeeting, url, None)
    }

    /// S9: ends messaging (the visitor's conversation, after an agent left).
    pub fn stop_messaging(url: Url) -> Self {
        Self::new(ChatCallKind::StopMessaging, url, None)
    }

    /// S11: refuses the chat.
    pub fn decline(url: Url) -> Self {
        Self::new(ChatCallKind::Decline, url, None)
    }

    /// Which request this is.
    pub fn kind(&self) -> ChatCallKind {
        self.kind
    }

    /// Where it goes.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Its body, if any.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Its body's media type.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The method: every chat call is a POST.
    pub fn method(&self) -> Method {
        Method::POST
    }

    pub(crate) fn into_parts(self) -> (ChatCallKind, Url, Option<Bytes>, &'static str) {
        (self.kind, self.url, self.body, self.content_type)
    }
}
