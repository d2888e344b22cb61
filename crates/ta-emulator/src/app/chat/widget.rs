//! The widget's side: UCWA's anonymous application, its event channel, and
//! the chat calls (start, send, typing, stop), each checked as UCWA did:
//! the psat token of the application's session, the origins it was minted
//! for, the bodies' required members.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use hal_model::{Link, Rel, names};
use http::header::{AUTHORIZATION, ORIGIN};
use http::{HeaderMap, StatusCode};

use super::channel::Polled;
use super::paths;
use super::world::UcwaApp;
use crate::app::{Shared, State, query_param, tagged};
use crate::stats::Route;
use crate::tokens::{PsatClaims, keys};

impl State {
    /// The psat token of a widget request (`Bearer psat=<jwt>`), verified.
    pub(super) fn widget_token(&self, headers: &HeaderMap) -> Result<PsatClaims, Response> {
        let unauthorized = |message: &str| {
            self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("InvalidAnonymousToken"),
                message,
            )
        };
        let jwt = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .and_then(|v| v.trim().strip_prefix("psat="))
            .ok_or_else(|| unauthorized("an `Authorization: Bearer psat=…` token is required"))?;
        keys()
            .ok()
            .and_then(|k| k.verify::<PsatClaims>(jwt))
            .ok_or_else(|| unauthorized("the anonymous token's signature or format is invalid"))
    }

    /// A request on an application: the application, if the token is its
    /// session's and the origin one the token allows.
    ///
    /// The token's expiry is checked when the application is created, not
    /// after (an inference, see docs/emulator.md): a chat outlives the
    /// token that opened it; a renewed token (a new session) is for a new
    /// application.
    pub(super) fn widget_app(
        &self,
        app_id: &str,
        headers: &HeaderMap,
    ) -> Result<Arc<UcwaApp>, Response> {
        let claims = self.widget_token(headers)?;
        let Some(app) = self.chat.app(app_id) else {
            return Err(self.error(
                StatusCode::NOT_FOUND,
                "NotFound",
                Some("ApplicationNotFound"),
                "no such application: create a new one",
            ));
        };
        if claims.asi != app.session {
            return Err(self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                None,
                "the token is for another session than this application's",
            ));
        }
        self.check_origin(headers, &app.origins)?;
        Ok(app)
    }

    pub(super) fn check_origin(
        &self,
        headers: &HeaderMap,
        allowed: &[String],
    ) -> Result<(), Response> {
        match headers.get(ORIGIN).and_then(|o| o.to_str().ok()) {
            Some(origin) if !allowed.iter().any(|a| a == origin) => Err(self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("OriginNotAllowed"),
                "the page's origin is not one the token was minted for",
            )),
            _ => Ok(()),
        }
    }

    /// The CORS rule of the widget's UCWA routes (a preflight carries no
    /// token): on an application's resources, the origins its token
    /// allowed, for as long as the application lives (a chat outlives its
    /// token, see [`widget_app`](Self::widget_app)) and after it is gone
    /// (so that its page can read the `404`); elsewhere (creating one), the
    /// origins a live token was minted for.
    pub(in crate::app) fn ucwa_allows_origin(&self, path: &str, origin: &str) -> bool {
        let app_id = path
            .strip_prefix(paths::app("").as_str())
            .and_then(|rest| rest.split('/').next())
            .filter(|id| !id.is_empty());
        let known = app_id.and_then(|id| {
            self.chat.with(|inner| {
                inner
                    .origins_of(id)
                    .map(|origins| origins.iter().any(|o| o == origin))
            })
        });
        match known.flatten() {
            Some(allowed) => allowed,
            None => self.origin_was_minted(origin),
        }
    }

    /// Whether `origin` is one a live token was minted for.
    fn origin_was_minted(&self, origin: &str) -> bool {
        let now = self.now_u64();
        self.sessions.lock().is_ok_and(|sessions| {
            sessions
                .entries
                .values()
                .any(|((_, origins), exp)| *exp > now && origins.split(';').any(|o| o == origin))
        })
    }

    pub(super) fn bad_parameter(&self, message: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            Some("ParameterValidationFailure"),
            message,
        )
    }

    pub(super) fn json_body<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
    ) -> Result<T, Response> {
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

// The handlers.

pub(in crate::app) async fn create_application(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tagged(Route::UcwaApplication, state.create_app(&headers, &body))
}

pub(in crate::app) async fn delete_application(
    AxState(state): AxState<Shared>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let app = match state.widget_app(&app_id, &headers) {
        Ok(app) => app,
        Err(response) => return tagged(Route::UcwaApplication, response),
    };
    state.end_application(&app, "signed_out");
    tagged(
        Route::UcwaApplication,
        StatusCode::NO_CONTENT.into_response(),
    )
}

pub(in crate::app) async fn poll_events(
    AxState(state): AxState<Shared>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let app = match state.widget_app(&app_id, &headers) {
        Ok(app) => app,
        Err(response) => return tagged(Route::UcwaEvents, response),
    };
    let Some(ack) = query_param(query.as_deref(), "ack").and_then(|a| a.parse::<u64>().ok()) else {
        return tagged(
            Route::UcwaEvents,
            state.bad_parameter("ack is required: follow the events link as given"),
        );
    };
    let mut wait = Duration::from_millis(state.config.chat.long_poll_ms);
    if let Some(timeout) = query_param(query.as_deref(), "timeout") {
        match timeout.parse::<u64>() {
            Ok(secs) if (180..=1800).contains(&secs) => wait = wait.min(Duration::from_secs(secs)),
            _ => {
                return tagged(
                    Route::UcwaEvents,
                    state.bad_parameter("timeout is 180 to 1800 seconds"),
                );
            }
        }
    }
    let answer = match app.channel.poll(ack, wait).await {
        Polled::Batch(ack, senders) => {
            let mut events = hal_model::Events::new(senders);
            events.links_mut().insert(
                Rel::parse(names::SELF),
                Link::new(paths::events(&app.id, ack)),
            );
            events.links_mut().insert(
                Rel::parse("next"),
                Link::new(paths::events(&app.id, ack + 1)),
            );
            state.body(StatusCode::OK, &events)
        }
        Polled::Empty(ack) => {
            let mut events = hal_model::Events::new(Vec::new());
            events
                .links_mut()
                .insert(Rel::parse("next"), Link::new(paths::events(&app.id, ack)));
            state.body(StatusCode::OK, &events)
        }
        Polled::Resync(ack) => {
            let mut events = hal_model::Events::new(Vec::new());
            events
                .links_mut()
                .insert(Rel::parse("resync"), Link::new(paths::events(&app.id, ack)));
            state.body(StatusCode::OK, &events)
        }
        Polled::Replaced => state.error(
            StatusCode::CONFLICT,
            "Conflict",
            Some("PGetReplaced"),
            "another events request took this one's place",
        ),
    };
    tagged(Route::UcwaEvents, answer)
}

pub(in crate::app) async fn start_messaging(
    AxState(state): AxState<Shared>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = match state.widget_app(&app_id, &headers) {
        Ok(app) => state.start_messaging(&app, &body),
        Err(response) => response,
    };
    tagged(Route::UcwaMessaging, answer)
}

pub(in crate::app) async fn widget_send(
    AxState(state): AxState<Shared>,
    Path((app_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let answer = match state.widget_app(&app_id, &headers) {
        Ok(app) => state.widget_send(&app, &conversation, query.as_deref(), &body),
        Err(response) => response,
    };
    tagged(Route::UcwaMessaging, answer)
}

pub(in crate::app) async fn widget_typing(
    AxState(state): AxState<Shared>,
    Path((app_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let answer = match state.widget_app(&app_id, &headers) {
        Ok(app) => {
            let open = state.chat.with(|inner| {
                inner
                    .conversations
                    .get(&conversation)
                    .is_some_and(|c| c.app.as_deref() == Some(&app.id) && c.accepted && !c.ended)
            });
            if open == Some(true) {
                state.chat.stat(|s| s.visitor_typing += 1);
                StatusCode::NO_CONTENT.into_response()
            } else {
                state.error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    None,
                    "messaging is not connected in this conversation",
                )
            }
        }
        Err(response) => response,
    };
    tagged(Route::UcwaMessaging, answer)
}

pub(in crate::app) async fn widget_stop(
    AxState(state): AxState<Shared>,
    Path((app_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    leave(&state, &app_id, &conversation, &headers, "stopped")
}

pub(in crate::app) async fn widget_leave(
    AxState(state): AxState<Shared>,
    Path((app_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    leave(&state, &app_id, &conversation, &headers, "left")
}

/// `stopMessaging` or `DELETE` of the conversation: the application's own
/// open conversation ends.
fn leave(
    state: &Shared,
    app_id: &str,
    conversation: &str,
    headers: &HeaderMap,
    how: &str,
) -> Response {
    let answer = match state.widget_app(app_id, headers) {
        Ok(app) if state.visitor_left(&app, conversation, how) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => state.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            Some("ConversationNotFound"),
            "no open conversation of this application",
        ),
        Err(response) => response,
    };
    tagged(Route::UcwaMessaging, answer)
}
