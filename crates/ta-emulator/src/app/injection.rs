//! Fault injection: the configured and injected rules applied to each
//! request (statuses, delays, broken bodies, dropped connections).

use super::*;
use crate::reset::ConnectionKill;

pub(super) fn classify(method: &Method, matched: Option<&str>, query: Option<&str>) -> Route {
    match matched {
        Some("/platformservice/discover") if method == Method::OPTIONS => Route::Preflight,
        Some("/platformservice/discover")
            if raw_query_param(query, "anonymousContext").is_some() =>
        {
            Route::AnonymousDiscovery
        }
        Some("/platformservice/discover") => Route::Discovery,
        Some("/{tenant}/oauth2/v2.0/token" | "/{tenant}/oauth2/token") => Route::AadToken,
        Some("/platformservice/v1/applications") => Route::Applications,
        Some("/platformservice/v1/applications/{id}") => Route::Application,
        Some("/platformservice/v1/applications/{id}/anonapplicationtokens") => Route::Mint,
        Some("/_emulator/stats") => Route::Stats,
        Some("/{tenant}/discovery/keys" | "/{tenant}/discovery/v2.0/keys") => Route::Keys,
        Some("/_emulator/callback-url" | "/_emulator/rotate-callback-key") => Route::Control,
        Some(path) => chat_route(path),
        None => Route::NotFound,
    }
}

/// The chat's routes: the widget's UCWA calls and the SA's chat calls.
fn chat_route(path: &str) -> Route {
    if let Some(rest) = path.strip_prefix("/ucwa/psanon/v1/applications") {
        return match rest {
            "" | "/{app}" => Route::UcwaApplication,
            "/{app}/events" => Route::UcwaEvents,
            _ => Route::UcwaMessaging,
        };
    }
    if path.starts_with("/platformservice/v1/applications/{id}/communication/") {
        return Route::ChatCall;
    }
    Route::NotFound
}

/// Applies the faults that fire for this request.
pub(super) async fn inject_faults(
    AxState(state): AxState<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let route = classify(request.method(), matched.as_deref(), request.uri().query());
    let fired = state.faults.fire(route);
    if fired.is_empty() {
        return next.run(request).await;
    }
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    let mut after = Vec::new();
    for fault in fired {
        state.stats.count_fault(&fault.name());
        if let Some(latency) = fault.latency() {
            tokio::time::sleep(latency).await;
            continue;
        }
        match fault {
            FaultKind::Status {
                status,
                retry_after_secs,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut response = if route == Route::AadToken {
                    // Azure AD's own error shape: `temporarily_unavailable`
                    // (AADSTS90033, "a transient error") when busy.
                    let busy = status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE;
                    let error = if busy {
                        "temporarily_unavailable"
                    } else {
                        "server_error"
                    };
                    state.aad_error(status, error, 90_033, "injected fault")
                } else {
                    let code = if status == StatusCode::TOO_MANY_REQUESTS {
                        "TooManyRequests"
                    } else {
                        "ServiceFailure"
                    };
                    state.error(status, code, None, "injected fault")
                };
                if let Some(secs) = retry_after_secs {
                    response
                        .headers_mut()
                        .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return tagged(route, response);
            }
            FaultKind::CloseBeforeResponse => {
                // No answer will be counted by `finish`: count it here, with
                // status 0 ("closed without an answer").
                state.stats.count_request(route, 0);
                if let Some(kill) = &kill {
                    kill.kill();
                    // The connection is dropped, and this future with it.
                    std::future::pending::<()>().await;
                }
                return tagged(route, StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            FaultKind::Redirect { host } => {
                let host = if host.contains("]:") || (!host.starts_with('[') && host.contains(':'))
                {
                    host
                } else {
                    format!("{host}:{}", state.port)
                };
                let location = format!(
                    "{}://{host}{}",
                    state.scheme(),
                    request
                        .uri()
                        .path_and_query()
                        .map_or("/", http::uri::PathAndQuery::as_str)
                );
                let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(http::header::LOCATION, value);
                }
                return tagged(route, response);
            }
            FaultKind::RevokeAadTokens => {
                let issued = state.token_seq.load(Ordering::Relaxed);
                state.revoked_up_to.store(issued, Ordering::Relaxed);
            }
            FaultKind::RevokeConsent => {
                if matches!(
                    route,
                    Route::Applications | Route::Application | Route::Mint
                ) {
                    return tagged(
                        route,
                        state.error(
                            StatusCode::FORBIDDEN,
                            "Forbidden",
                            Some("ApplicationNotConsented"),
                            "the tenant admin has revoked consent for this application",
                        ),
                    );
                }
            }
            other => after.push(other),
        }
    }
    let mut response = next.run(request).await;
    for fault in after {
        response = state.alter(response, &fault).await;
    }
    response
}

impl State {
    /// Changes an answer's body as a fault says.
    pub(super) async fn alter(&self, response: Response, fault: &FaultKind) -> Response {
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let body = match fault {
            FaultKind::TruncatedBody => axum::body::Body::from(bytes.slice(..bytes.len() / 2)),
            FaultKind::MalformedBody => {
                parts.status = StatusCode::OK;
                axum::body::Body::from(r#"{"_links": {"self": {"href": "/platformservice/"#)
            }
            FaultKind::MissingLink { rel } => {
                let text = bytes.strip_prefix(hal_model::UTF8_BOM).unwrap_or(&bytes);
                match serde_json::from_slice::<serde_json::Value>(text) {
                    Ok(mut value) => {
                        remove_links(&mut value, rel);
                        let mut out = Vec::new();
                        if self.config.quirks.bom {
                            out.extend_from_slice(hal_model::UTF8_BOM);
                        }
                        out.extend_from_slice(&hal_model::to_vec(&value));
                        axum::body::Body::from(out)
                    }
                    Err(_) => axum::body::Body::from(bytes),
                }
            }
            FaultKind::CloseMidBody => {
                if let Ok(length) = HeaderValue::from_str(&bytes.len().to_string()) {
                    parts.headers.insert(http::header::CONTENT_LENGTH, length);
                }
                axum::body::Body::new(HalfThenBreak::new(bytes.slice(..bytes.len() / 2)))
            }
            _ => axum::body::Body::from(bytes),
        };
        Response::from_parts(parts, body)
    }
}

/// Removes, in place, every link whose rel has `local` as its local name,
/// in the resource and its embedded resources.
pub(super) fn remove_links(value: &mut serde_json::Value, local: &str) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    if let Some(links) = object.get_mut("_links").and_then(|l| l.as_object_mut()) {
        links.retain(|rel, _| !Rel::parse(rel).has_local_name(local));
    }
    if let Some(embedded) = object.get_mut("_embedded").and_then(|e| e.as_object_mut()) {
        for resource in embedded.values_mut() {
            match resource {
                serde_json::Value::Array(items) => {
                    for item in items {
                        remove_links(item, local);
                    }
                }
                other => remove_links(other, local),
            }
        }
    }
}

/// A body that yields its first half, waits a moment (so that the half is
/// flushed to the client), then fails: the connection breaks mid-body.
pub(super) struct HalfThenBreak {
    first: Option<Bytes>,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl HalfThenBreak {
    pub(super) fn new(first: Bytes) -> Self {
        Self {
            first: Some(first),
            pause: Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50))),
        }
    }
}

impl http_body::Body for HalfThenBreak {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        match self.pause.as_mut().poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Some(Err(std::io::Error::other(
                "injected fault: connection closed mid-body",
            )))),
        }
    }
}
