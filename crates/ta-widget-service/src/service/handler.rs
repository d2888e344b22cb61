//! `POST /v1/widget-token`: the origin check, the rate limits, the
//! operator's check, a pooled token if there is one, else the bound on
//! mints in flight and the mint under its deadline; the answer.

use super::*;
use crate::mint_check::MintRequest;
use ta_protocol::WidgetToken;

/// Whether reading a body failed on its size limit.
fn too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Checks that `Origin` is absent or one header holding one origin (no
/// list: RFC 6454 allows a space-separated list, no browser sends one).
fn single_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err("a request with more than one Origin header is not a browser's");
    }
    let listed = first
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b' ' | b'\t' | b','));
    if listed {
        return Err("an Origin header holding a list is not a browser's");
    }
    Ok(())
}

pub(super) async fn widget_token(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let request_id = request_id_of(headers);
    // What no browser sends is refused before any work: a browser sends one
    // `Origin`, holding one origin.
    if let Err(why) = single_origin(headers) {
        debug!(why, "refused: not a browser's Origin");
        return error(StatusCode::BAD_REQUEST, "bad_origin", why, &request_id);
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = client_address(peer, headers, &shared.trusted_proxies);
    let now = DefaultClock::default().now();
    if let Err(not_until) = shared.per_client.check_key(&rate_key(client)) {
        debug!(%client, "refused: per-client rate limit");
        shared
            .metrics
            .rate_limited
            .get_or_create(&LimitLabels { scope: "client" })
            .inc();
        return too_many(not_until.wait_time_from(now), &request_id);
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::FORBIDDEN,
            "origin_required",
            "a widget token is only given to a browser page on an allowed origin",
            &request_id,
        );
    };
    // Exact comparison with the normalized allowlist: browsers send the
    // serialized origin, so anything else (a path, upper case, `null`) is
    // refused.
    let allowlist = shared.allowlist();
    let Some(origin) = allowlist.iter().find(|o| o.as_str() == origin) else {
        debug!(origin, "refused: origin not on the allowlist");
        return error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not ask for a widget token",
            &request_id,
        );
    };
    // The operator's own check: before the global budget (which requests it
    // refuses do not use up) and before a mint permit is held.
    if let Some(check) = shared.mint_check.get() {
        // The body layer bounds it; past that, the request is refused.
        let body = match axum::body::to_bytes(body, shared.max_body_bytes).await {
            Ok(body) => body,
            Err(e) if too_large(&e) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request's body is too large",
                    &request_id,
                );
            }
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the request's body could not be read",
                    &request_id,
                );
            }
        };
        let seen = MintRequest::new(origin.as_str(), client, headers, &body);
        if let Err(refusal) = check.check(&seen).await {
            debug!(
                code = refusal.code(),
                "refused by the check before the mint"
            );
            shared.metrics.mint_check_refused(refusal.code());
            return error(
                refusal.status(),
                refusal.code(),
                refusal.message(),
                &request_id,
            );
        }
    }
    // Only callers on the allowlist use up the global budget.
    if let Err(not_until) = shared.global.check() {
        debug!("refused: global rate limit");
        shared
            .metrics
            .rate_limited
            .get_or_create(&LimitLabels { scope: "global" })
            .inc();
        return too_many(not_until.wait_time_from(now), &request_id);
    }
    // A pooled token passed the same checks: no permit, no upstream.
    if let Some(token) = shared.pool_take(origin) {
        return served(&shared, origin, &token, true);
    }
    let Ok(_permit) = shared.mints.try_acquire() else {
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many widget tokens are being minted; retry shortly",
            &request_id,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // Cold caches and a failure just now: answer it again, upstream rests.
    if !shared.bootstrapper.is_warm() {
        let held = shared
            .readiness
            .lock()
            .ok()
            .and_then(|r| r.last_failure)
            .filter(|(at, _, _)| at.elapsed() < FAILURE_HOLD);
        if let Some((at, status, code)) = held {
            debug!(code, "answered from the last failure");
            let mut response = error(
                status,
                code,
                "the widget token could not be minted; the request id identifies the failure in the service's logs",
                &request_id,
            );
            let wait = FAILURE_HOLD.saturating_sub(at.elapsed()).as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
    }
    // Least privilege: the token is minted for the requesting origin alone.
    let Ok(origins) = AllowedOrigins::new([origin.clone()]) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the origin could not be used",
            &request_id,
        );
    };
    let minted =
        tokio::time::timeout(shared.upstream_deadline, shared.bootstrapper.mint(origins)).await;
    let minted = match minted {
        Ok(Ok(minted)) => minted,
        Ok(Err(failure)) => {
            let (status, code) = upstream_answer(&failure);
            warn!(kind = failure.kind().code(), error = %failure.report_line(), "minting failed");
            return mint_failed(&shared, status, code, failure.retry_after(), &request_id);
        }
        Err(_) => {
            warn!(
                deadline = ?shared.upstream_deadline,
                "minting failed: upstream did not answer within the deadline"
            );
            return mint_failed(
                &shared,
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                None,
                &request_id,
            );
        }
    };
    served(&shared, origin, &minted, false)
}

/// The answer handing `minted` to the widget: its `expiresIn` the token's
/// real remaining life, and `renewAfter` scaled to it.
fn served(shared: &Shared, origin: &Origin, minted: &WidgetToken, pooled: bool) -> Response {
    let now = shared.bootstrapper.clock().unix_seconds();
    let expires_in = minted
        .expires_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_sub(now));
    let expires_at = minted.expiry.to_rfc3339_utc();
    info!(origin = %origin, session_id = %minted.session_id, pooled, "served a widget token");
    shared.metrics.tokens_served.inc();
    let answer = TokenAnswer {
        token: minted.token.expose(),
        discover_uri: minted.discover_url.as_str(),
        expires_at,
        expires_in,
        renew_after: shared.renewal.renew_after(expires_in),
        application_session_id: minted.session_id.as_str(),
    };
    let size = 160 + answer.token.len() + answer.discover_uri.len();
    no_store_json(StatusCode::OK, &answer, size)
}
