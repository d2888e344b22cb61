//! The service's answers: the token, the errors (JSON with the request id,
//! never cached), and how an upstream failure is told to a browser.

use super::*;

pub(super) fn too_many(wait: Duration, request_id: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; retry after the time in Retry-After",
        request_id,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenAnswer<'a> {
    pub(super) token: &'a str,
    pub(super) discover_uri: &'a str,
    pub(super) expires_at: String,
    pub(super) expires_in: u64,
    pub(super) renew_after: u64,
    pub(super) application_session_id: &'a str,
}

#[derive(Serialize)]
pub(super) struct ErrorAnswer<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(rename = "requestId")]
    request_id: &'a str,
}

pub(super) fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub(super) fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let answer = ErrorAnswer {
        error: code,
        message,
        request_id,
    };
    no_store_json(
        status,
        &answer,
        64 + code.len() + message.len() + request_id.len(),
    )
}

/// A JSON answer that no cache may keep, written into one buffer of about
/// `size` bytes (axum's `Json` starts small and grows).
pub(super) fn no_store_json(status: StatusCode, answer: &impl Serialize, size: usize) -> Response {
    let mut body = Vec::with_capacity(size);
    if serde_json::to_writer(&mut body, answer).is_err() {
        // The answers are plain structs of strings and numbers.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// How an upstream failure is answered to the browser: a status and a
/// stable code; the details go to the log only.
pub(super) fn upstream_answer(failure: &BootstrapError) -> (StatusCode, &'static str) {
    let token_timeout = matches!(
        failure,
        BootstrapError::Token(ta_protocol::aad::TokenError::Transport(t))
            if t.kind() == ta_protocol::TransportErrorKind::Timeout
    );
    let timeout = token_timeout
        || failure
            .protocol()
            .and_then(|e| match e {
                ta_protocol::Error::Transport { source, .. } => Some(source.kind()),
                ta_protocol::Error::RetriesExhausted { last, .. } => match last.as_ref() {
                    ta_protocol::Error::Transport { source, .. } => Some(source.kind()),
                    _ => None,
                },
                _ => None,
            })
            .is_some_and(|k| k == ta_protocol::TransportErrorKind::Timeout);
    // The API or AAD stayed busy through every retry: the browser may try
    // later.
    let busy = failure.upstream_status().is_some_and(|s| {
        s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
    });
    match failure.kind() {
        _ if timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        _ if busy => (StatusCode::SERVICE_UNAVAILABLE, "upstream_busy"),
        FailureKind::Upstream => (StatusCode::BAD_GATEWAY, "upstream_error"),
        FailureKind::Authentication => (StatusCode::SERVICE_UNAVAILABLE, "upstream_authentication"),
        FailureKind::NotFound => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
        FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "service_misconfigured"),
    }
}

/// The answer to a failed mint (logged by the caller), `asked` the wait the
/// API's last answer asked for; while the caches are cold it is also
/// remembered for [`FAILURE_HOLD`].
pub(super) fn mint_failed(
    shared: &Shared,
    status: StatusCode,
    code: &'static str,
    asked: Option<Duration>,
    request_id: &str,
) -> Response {
    if !shared.bootstrapper.is_warm() {
        if let Ok(mut readiness) = shared.readiness.lock() {
            readiness.last_failure = Some((std::time::Instant::now(), status, code));
        }
    }
    let mut response = error(
        status,
        code,
        "the widget token could not be minted; the request id identifies the failure in the service's logs",
        request_id,
    );
    if code == "upstream_busy" {
        // At least 5 s, longer if the API asked for longer (at most 5
        // minutes: a page is not told to wait for hours).
        let wait = asked.map_or(0, |d| d.as_secs()).clamp(5, 300);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    response
}
