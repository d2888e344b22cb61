//! `POST /v1/callback`: the platform's callbacks, authenticated before any
//! work and handed to the chat's switchboard, which answers at once and
//! works after. `GET /v1/callback` answers 200, a connectivity check (as
//! the SDK's sample controller did).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ta_bootstrap::chat::{Delivery, Switchboard};
use tracing::{info, warn};

use super::Shared;
use super::answers::{error, no_store_json, request_id_of};
use crate::callback::{CallbackVerifier, Refusal};
use crate::metrics::{ChatOutcome, RefusalReason};

/// The chat's side of the service: the switchboard that runs the chats and
/// the verifier that authenticates their callbacks.
#[derive(Debug, Clone)]
pub struct ChatEndpoint {
    /// Runs the chats.
    pub switchboard: Switchboard,
    /// Checks each callback's token.
    pub verifier: Arc<CallbackVerifier>,
    /// Largest callback body accepted.
    pub max_body_bytes: usize,
}

impl ChatEndpoint {
    /// The endpoint of `switchboard`, its callbacks checked by `verifier`,
    /// bodies up to 256 KiB.
    pub fn new(switchboard: Switchboard, verifier: Arc<CallbackVerifier>) -> Self {
        Self {
            switchboard,
            verifier,
            max_body_bytes: 256 * 1024,
        }
    }
}

pub(super) async fn callback_check() -> Response {
    no_store_json(
        StatusCode::OK,
        &serde_json::json!({"status": "ok", "message": "the callback endpoint is up; callbacks are POSTed with a bearer token"}),
        128,
    )
}

fn count(shared: &Shared, outcome: &'static str) {
    shared
        .metrics
        .chat
        .callbacks
        .get_or_create(&ChatOutcome { outcome })
        .inc();
}

pub(super) async fn callback(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id_of(&headers);
    let Some(chat) = shared.chat.get() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this service runs no chat",
            &request_id,
        );
    };
    if let Err(refusal) = chat
        .verifier
        .verify(
            headers.get(header::AUTHORIZATION),
            SystemTime::now(),
            Instant::now(),
        )
        .await
    {
        count(&shared, "refused");
        shared
            .metrics
            .chat
            .refused
            .get_or_create(&RefusalReason {
                reason: refusal.label(),
            })
            .inc();
        warn!(reason = refusal.label(), "callback refused: {refusal}");
        let (status, code) = match refusal {
            Refusal::KeysUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "keys_unavailable"),
            _ => (StatusCode::UNAUTHORIZED, "unauthorized"),
        };
        let mut answer = error(status, code, &refusal.to_string(), &request_id);
        if status == StatusCode::UNAUTHORIZED {
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return answer;
    }
    let context = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("callbackContext"))
            .map(|(_, v)| v.into_owned())
    });
    match chat.switchboard.deliver(context.as_deref(), &body) {
        Ok(Delivery::Opened { context }) => {
            count(&shared, "opened");
            shared.metrics.chat.started.inc();
            info!(chat_id = %context, "a visitor's chat opened");
            no_store_json(
                StatusCode::OK,
                &hal_model::CallbackAnswer {
                    callback_context: Some(context),
                },
                64,
            )
        }
        Ok(Delivery::Again { context }) => {
            count(&shared, "duplicate");
            no_store_json(
                StatusCode::OK,
                &hal_model::CallbackAnswer {
                    callback_context: Some(context),
                },
                64,
            )
        }
        Ok(delivery) => {
            let outcome = match delivery {
                Delivery::Routed => "routed",
                Delivery::Duplicate => "duplicate",
                Delivery::Closing => "closing",
                _ => "ignored",
            };
            count(&shared, outcome);
            StatusCode::OK.into_response()
        }
        Err(problem) => {
            count(&shared, "unreadable");
            warn!(%problem, "an authenticated callback was unreadable");
            error(
                StatusCode::BAD_REQUEST,
                "bad_callback",
                &problem.to_string(),
                &request_id,
            )
        }
    }
}
