//! `POST /v1/callback`: the platform's callbacks, authenticated before any
//! work and handed to the chat's switchboard, which answers at once and
//! works after; or, for a chat another replica holds, sent on to it
//! ([`crate::replicas`]). `GET /v1/callback` answers 200, a connectivity check (as
//! the SDK's sample controller did).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ta_bootstrap::chat::{Delivery, ReplicaName, Switchboard};
use ta_protocol::Transport as _;
use tracing::{debug, info, warn};

use super::Shared;
use super::answers::{error, no_store_json, request_id_of};
use crate::callback::{CallbackVerifier, Refusal};
use crate::metrics::{ChatOutcome, RefusalReason};
use crate::replicas::{FORWARD_TIMEOUT, FORWARDED_BY, ReplicaMismatch, Replicas};

/// The chat's side of the service: the switchboard that runs the chats and
/// the verifier that authenticates their callbacks.
#[derive(Debug, Clone)]
pub struct ChatEndpoint {
    /// Runs the chats.
    pub(crate) switchboard: Switchboard,
    /// Checks each callback's token.
    pub verifier: Arc<CallbackVerifier>,
    /// Largest callback body accepted.
    pub max_body_bytes: usize,
    /// This replica and its peers, when the service runs as several
    /// ([`crate::replicas`]): callbacks for the others' chats are sent on.
    /// Set only by [`with_replicas`](Self::with_replicas), which checks
    /// that the switchboard has the same name.
    pub(crate) replicas: Option<Arc<Replicas>>,
}

impl ChatEndpoint {
    /// The endpoint of `switchboard`, its callbacks checked by `verifier`,
    /// bodies up to 256 KiB.
    pub fn new(switchboard: Switchboard, verifier: Arc<CallbackVerifier>) -> Self {
        Self {
            switchboard,
            verifier,
            max_body_bytes: 256 * 1024,
            replicas: None,
        }
    }

    /// The switchboard that runs the chats.
    pub fn switchboard(&self) -> &Switchboard {
        &self.switchboard
    }

    /// This replica and its peers, if it runs as one of several.
    pub fn replicas(&self) -> Option<&Replicas> {
        self.replicas.as_deref()
    }

    /// The same, run as one of several replicas: `replicas` names this one
    /// and says how to reach the others. The switchboard must have been
    /// given the same name
    /// ([`SwitchboardOptions::with_replica`](ta_bootstrap::chat::SwitchboardOptions::with_replica)),
    /// or its chats' callbacks would all look like another replica's.
    pub fn with_replicas(mut self, replicas: Replicas) -> Result<Self, ReplicaMismatch> {
        if self.switchboard.replica() != Some(replicas.me()) {
            return Err(ReplicaMismatch {
                switchboard: self.switchboard.replica().cloned(),
                replicas: replicas.me().clone(),
            });
        }
        self.replicas = Some(Arc::new(replicas));
        Ok(self)
    }
}

/// The replica other than this one that `context` names, if any.
fn held_elsewhere(replicas: &Replicas, context: Option<&str>) -> Option<ReplicaName> {
    ReplicaName::of_context(context?).filter(|owner| owner != replicas.me())
}

/// Sends a callback on to the replica `owner` that holds its chat, and
/// answers with that replica's answer.
async fn forward(
    shared: &Shared,
    replicas: &Replicas,
    owner: &ReplicaName,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    request_id: &str,
) -> Response {
    if headers.contains_key(FORWARDED_BY) {
        // Sent on once already: never again (two replicas that disagree
        // about who holds a chat must not bounce it forever).
        count(shared, "ignored");
        warn!(owner = %owner, "a callback sent on by another replica names a third: ignored");
        return StatusCode::OK.into_response();
    }
    let Some(url) = replicas.callback_url(owner, query) else {
        count(shared, "ignored");
        warn!(owner = %owner, "a callback for a chat of a replica this one cannot reach: ignored");
        return StatusCode::OK.into_response();
    };
    let mut request = axum::http::Request::post(url.as_str());
    for name in [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::HeaderName::from_static("x-ms-correlation-id"),
        header::HeaderName::from_static("client-request-id"),
    ] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    request = request.header(FORWARDED_BY, replicas.me().as_str());
    let Ok(request) = request.body(body) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the callback could not be sent on",
            request_id,
        );
    };
    let sent = tokio::time::timeout(FORWARD_TIMEOUT, replicas.transport.send(request)).await;
    match sent {
        Ok(Ok(answer)) => {
            count(shared, "forwarded");
            debug!(owner = %owner, status = answer.status().as_u16(), "a callback was sent on to the replica that holds its chat");
            let (parts, body) = answer.into_parts();
            if let Some(theirs) = parts.headers.get("x-request-id") {
                debug!(owner = %owner, owner_request_id = ?theirs, "the owner's request id");
            }
            let mut response = (parts.status, body).into_response();
            // What the platform acts on: the body's kind, a challenge, when
            // to try again, and not to cache.
            for name in [
                header::CONTENT_TYPE,
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
                header::CACHE_CONTROL,
            ] {
                response.headers_mut().remove(&name);
                for value in parts.headers.get_all(&name) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            response
        }
        failed => {
            count(shared, "forward_failed");
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {FORWARD_TIMEOUT:?}"),
            };
            warn!(owner = %owner, error = %why, "a callback could not be sent on to the replica that holds its chat");
            error(
                StatusCode::BAD_GATEWAY,
                "replica_unreachable",
                "the replica that holds this chat could not be reached",
                request_id,
            )
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
    if let Some(replicas) = &chat.replicas {
        if let Some(owner) = held_elsewhere(replicas, context.as_deref()) {
            return forward(
                &shared,
                replicas,
                &owner,
                query.as_deref(),
                &headers,
                body,
                &request_id,
            )
            .await;
        }
    }
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
