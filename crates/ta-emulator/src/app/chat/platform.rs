//! The SA's side: the platform's chat calls (S1–S11 of chat-notes.md),
//! each authenticated like the rest of the API, each answered and followed
//! by the callbacks and widget events the real service sent.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use http::header::LOCATION;
use http::{HeaderValue, StatusCode};

use super::deliver::Outgoing;
use crate::app::{Shared, State, tagged};
use crate::stats::Route;

impl State {
    /// Queues a callback of `conversation` for the SA.
    pub(super) fn to_sa(&self, conversation: &str, senders: Vec<hal_model::Sender>, first: bool) {
        let _ = self.chat.outgoing.send(Outgoing {
            conversation: conversation.to_owned(),
            senders,
            first,
        });
    }

    pub(super) fn created(&self, location: &str) -> Response {
        let mut response = StatusCode::CREATED.into_response();
        if let Ok(v) = HeaderValue::from_str(location) {
            response.headers_mut().insert(LOCATION, v);
        }
        response
    }

    pub(super) fn missing(&self, what: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            Some("ConversationNotFound"),
            &format!("no such {what}"),
        )
    }

    pub(super) fn too_long(
        &self,
        what: &str,
        value: Option<&String>,
        max: usize,
    ) -> Option<Response> {
        value.filter(|v| v.chars().count() > max).map(|_| {
            self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                Some("ParameterValidationFailure"),
                &format!("{what} is at most {max} characters"),
            )
        })
    }

    pub(super) fn parse<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, Response> {
        hal_model::from_slice(body).map_err(|e| {
            self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                Some("DeserializationFailure"),
                &e.to_string(),
            )
        })
    }
}

// The handlers, behind `sa_calls`: the host, the AAD token and the
// endpoint are checked first, and every answer is counted as a chat call.

/// The layer of every SA call: refused before the handler runs when the
/// request would be refused anywhere in the API.
pub(in crate::app) async fn sa_calls(
    AxState(state): AxState<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let refused = state
        .api_prelude(request.uri(), request.headers(), request.uri().query())
        .err();
    let answer = match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    tagged(Route::ChatCall, answer)
}

pub(in crate::app) async fn start_adhoc_meeting(
    AxState(state): AxState<Shared>,
    body: Bytes,
) -> Response {
    state.start_adhoc_meeting(&body)
}

pub(in crate::app) async fn messaging_invitations(
    AxState(state): AxState<Shared>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    state.add_messaging(query.as_deref(), &body)
}

pub(in crate::app) async fn participant_invitations(
    AxState(state): AxState<Shared>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    state.add_participant(query.as_deref(), &body)
}

/// `POST …/messagingInvitations/{id}/{action}`: acceptAndBridge or decline.
pub(in crate::app) async fn invitation_action(
    AxState(state): AxState<Shared>,
    Path((_, invitation, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    match action.as_str() {
        "acceptandbridge" => state.accept_and_bridge(&invitation, &body),
        "decline" => state.decline(&invitation),
        _ => state.missing("invitation action"),
    }
}

/// `POST …/conversations/{id}/…`: the calls on a conversation.
pub(in crate::app) async fn conversation_action(
    AxState(state): AxState<Shared>,
    Path((_, conversation, rest)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    match rest.as_str() {
        "conversationbridge/bridgedparticipants" => {
            state.add_bridged_participant(&conversation, &body)
        }
        "messaging/messages" => state.sa_send(&conversation, &body),
        "messaging/terminate" => state.sa_stop(&conversation),
        "onlinemeeting/terminateonlinemeeting" => state.terminate_meeting(&conversation),
        _ => state.missing("conversation action"),
    }
}
