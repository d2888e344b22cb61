//! The widget-token service: the SA backend endpoint a chat widget calls.
//!
//! `POST /v1/widget-token` from a browser whose `Origin` is on the site
//! allowlist answers a fresh widget token minted for that origin alone; any
//! other caller is refused before anything goes upstream.
//!
//! The service: the endpoint, CORS (tower-http, a predicate over the
//! allowlist), rate limits per client address and overall (governor;
//! `X-Forwarded-For`/`Forwarded` honoured only from trusted proxies), request
//! ids (a tracing span per request carries it), body and time limits, a bound
//! on mints in flight, warm-up, `/healthz`, `/readyz` and `/metrics`
//! (Prometheus text). The allowlist can be replaced while running
//! ([`WidgetService::set_allowlist`]). Serve the [`WidgetService::router`]
//! with [`crate::server::serve`] (TLS, bounded request heads, graceful
//! drain).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use ta_protocol::{AllowedOrigins, Origin, OriginPolicy};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{debug, info, warn};

use crate::metrics::{LimitLabels, Metrics};
use ta_bootstrap::{BootstrapError, Bootstrapper, FailureKind};

/// The settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The web origins that may ask for a widget token, normalized.
    pub allowlist: Vec<Origin>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time for one request; past it the answer is 504 `timeout`
    /// (JSON, with the request id).
    pub request_timeout: Duration,
    /// Longest time a mint may take upstream, retries and a cold cache's
    /// discovery, AAD token and capabilities included; past it the answer is
    /// 504 `upstream_timeout`. Keep it under `request_timeout`, so that the
    /// browser learns that upstream was slow.
    pub upstream_deadline: Duration,
    /// Mints in flight at most; more callers get 503 at once.
    pub max_mints_in_flight: usize,
    /// Requests per minute one client address may make.
    pub per_client_per_minute: u32,
    /// Requests per second all clients together may make.
    pub global_per_second: u32,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` are believed; from any
    /// other peer they are ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ServiceConfig {
    /// An allowlist with the defaults: 1 KiB bodies, 30 s per request, 25 s
    /// per mint, 256 mints in flight, 60 requests a minute per client, 200 a
    /// second in all, no trusted proxy.
    pub fn new(allowlist: Vec<Origin>) -> Self {
        Self {
            allowlist,
            max_body_bytes: 1024,
            request_timeout: Duration::from_secs(30),
            upstream_deadline: Duration::from_secs(25),
            max_mints_in_flight: 256,
            per_client_per_minute: 60,
            global_per_second: 200,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Whether the caches are warm, and why not.
#[derive(Debug, Clone, Default)]
struct Readiness {
    last_error: Option<String>,
    /// The last failed mint while the caches were cold, and its answer:
    /// requests within [`FAILURE_HOLD`] get that answer without asking
    /// upstream again (a wrong secret must not turn every widget request
    /// into an AAD request).
    last_failure: Option<(std::time::Instant, StatusCode, &'static str)>,
}

/// How often the warm-up loop looks at the caches once they are warm.
const WARM_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest wait of the warm-up loop once the caches are warm.
const MIN_WARM_WAIT: Duration = Duration::from_secs(1);

/// How long a failure seen while the caches are cold is answered from
/// memory.
const FAILURE_HOLD: Duration = Duration::from_secs(2);

struct Shared {
    bootstrapper: Bootstrapper,
    /// Replaced whole on reload; readers take a snapshot.
    allowlist: std::sync::RwLock<Arc<Vec<Origin>>>,
    /// Wakes the warm-up loop (after a reload, say).
    wake: tokio::sync::Notify,
    mints: Semaphore,
    readiness: Mutex<Readiness>,
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    trusted_proxies: Vec<IpAddr>,
    upstream_deadline: Duration,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn allowlist(&self) -> Arc<Vec<Origin>> {
        Arc::clone(
            &self
                .allowlist
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64 (one host
/// usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the rightmost address of `X-Forwarded-For` (else `Forwarded: for=`) that
/// is not a trusted proxy. An entry that is not an address (`unknown`,
/// `_hidden`) stops the walk: the client is then unknown and the proxy's
/// own address is used, so a client cannot pick its key by writing entries
/// to the left of it.
fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let parse = |text: &str| -> Option<IpAddr> {
        let text = text.trim().trim_matches('"');
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(ip.to_canonical());
        }
        // `[v6]:port` or `v4:port`
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Some(addr.ip().to_canonical());
        }
        text.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    };
    let mut entries: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::to_owned)
        .collect();
    if entries.is_empty() {
        entries = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.to_owned())
                })
            })
            .collect();
    }
    for entry in entries.iter().rev() {
        match parse(entry) {
            Some(ip) if is_trusted(&ip) => {}
            Some(ip) => return ip,
            None => return peer,
        }
    }
    peer
}

fn too_many(wait: Duration, request_id: &str) -> Response {
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

/// A running service's handle: its router, and its warm-up loop.
#[derive(Clone)]
pub struct WidgetService {
    shared: Arc<Shared>,
    config: ServiceConfig,
}

impl std::fmt::Debug for WidgetService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetService")
            .field("allowlist", &self.shared.allowlist())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer<'a> {
    token: &'a str,
    discover_uri: &'a str,
    expires_at: String,
    expires_in: u64,
    application_session_id: &'a str,
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(rename = "requestId")]
    request_id: &'a str,
}

fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
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
fn no_store_json(status: StatusCode, answer: &impl Serialize, size: usize) -> Response {
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
fn upstream_answer(failure: &BootstrapError) -> (StatusCode, &'static str) {
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
    // The API stayed busy through every retry: the browser may try later.
    let busy = failure
        .protocol()
        .and_then(ta_protocol::Error::status)
        .is_some_and(|s| {
            s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
        });
    match failure.kind() {
        _ if timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        _ if busy => (StatusCode::SERVICE_UNAVAILABLE, "upstream_busy"),
        FailureKind::Upstream => (StatusCode::BAD_GATEWAY, "upstream_error"),
        FailureKind::Authentication => (StatusCode::SERVICE_UNAVAILABLE, "upstream_authentication"),
        FailureKind::NotFound => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "service_misconfigured"),
    }
}

async fn widget_token(State(shared): State<Arc<Shared>>, parts: Parts) -> Response {
    let headers = &parts.headers;
    let request_id = request_id_of(headers);
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
            return mint_failed(&shared, status, code, &request_id);
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
                &request_id,
            );
        }
    };
    let now = shared.bootstrapper.clock().unix_seconds();
    let expires_in = minted
        .expires_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_sub(now));
    let expires_at = minted.expiry.to_rfc3339_utc();
    info!(origin = %origin, session_id = %minted.session_id, "served a widget token");
    shared.metrics.tokens_served.inc();
    let answer = TokenAnswer {
        token: minted.token.expose(),
        discover_uri: minted.discover_url.as_str(),
        expires_at,
        expires_in,
        application_session_id: minted.session_id.as_str(),
    };
    let size = 160 + answer.token.len() + answer.discover_uri.len();
    no_store_json(StatusCode::OK, &answer, size)
}

/// The answer to a failed mint (logged by the caller); while the caches
/// are cold it is also remembered for [`FAILURE_HOLD`].
fn mint_failed(
    shared: &Shared,
    status: StatusCode,
    code: &'static str,
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
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.bootstrapper.is_warm() {
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true})),
        )
            .into_response();
    }
    // Only the kind of failure: the details are in the service's logs.
    let reason = shared
        .readiness
        .lock()
        .ok()
        .and_then(|r| r.last_error.clone())
        .unwrap_or_else(|| "warming_up".to_owned());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"ready": false, "reason": reason})),
    )
        .into_response()
}

impl WidgetService {
    /// A service minting with `bootstrapper` for the origins of `config`,
    /// exporting `metrics` (give the same `Arc` to the bootstrapper and the
    /// token provider) at `/metrics`.
    pub fn new(bootstrapper: Bootstrapper, config: ServiceConfig, metrics: Arc<Metrics>) -> Self {
        let one = NonZeroU32::MIN;
        let per_client = NonZeroU32::new(config.per_client_per_minute).unwrap_or(one);
        let global = NonZeroU32::new(config.global_per_second).unwrap_or(one);
        Self {
            shared: Arc::new(Shared {
                bootstrapper,
                allowlist: std::sync::RwLock::new(Arc::new(config.allowlist.clone())),
                wake: tokio::sync::Notify::new(),
                mints: Semaphore::new(config.max_mints_in_flight.clamp(1, Semaphore::MAX_PERMITS)),
                readiness: Mutex::new(Readiness::default()),
                per_client: RateLimiter::keyed(Quota::per_minute(per_client)),
                global: RateLimiter::direct(Quota::per_second(global)),
                trusted_proxies: config.trusted_proxies.clone(),
                upstream_deadline: config.upstream_deadline,
                metrics,
            }),
            config,
        }
    }

    /// Parses an allowlist (as `--allowed-origin` takes it).
    pub fn allowlist(
        origins: &[String],
        policy: OriginPolicy,
    ) -> Result<Vec<Origin>, ta_protocol::OriginError> {
        let mut list: Vec<Origin> = Vec::new();
        for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            let origin = Origin::parse(origin, policy)?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        if list.is_empty() {
            return Err(ta_protocol::OriginError::Empty);
        }
        Ok(list)
    }

    /// The HTTP routes with their layers.
    pub fn router(&self) -> Router {
        let shared = Arc::clone(&self.shared);
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                shared
                    .allowlist()
                    .iter()
                    .any(|o| o.as_str().as_bytes() == origin.as_bytes())
            }))
            .allow_methods([Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .expose_headers([
                header::RETRY_AFTER,
                header::HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600));
        Router::new()
            .route("/v1/widget-token", post(widget_token))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(Arc::clone(&self.shared))
            // One stack of layers, outermost first, applied once: each
            // `Router::layer` boxes its layer again, an allocation and a
            // clone per layer and request. CORS and counting sit outside
            // the limits, so that a 413 or a 504 is counted and readable by
            // the page.
            .layer(
                ServiceBuilder::new()
                    // The id is this service's: one a client sent is dropped.
                    .layer(middleware::DropClientRequestIdLayer)
                    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                    .layer(PropagateRequestIdLayer::x_request_id())
                    // Every log line of a request carries its id (the span's
                    // field).
                    .layer(
                        TraceLayer::new_for_http()
                            .make_span_with(|request: &axum::extract::Request| {
                                let id = request
                                    .headers()
                                    .get("x-request-id")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default();
                                tracing::info_span!(
                                    "request",
                                    request_id = %id,
                                    method = %request.method(),
                                    path = %request.uri().path(),
                                )
                            })
                            .on_request(())
                            .on_response(
                                tower_http::trace::DefaultOnResponse::new()
                                    .level(tracing::Level::DEBUG)
                                    .latency_unit(tower_http::LatencyUnit::Micros),
                            )
                            .on_failure(()),
                    )
                    .layer(middleware::CountLayer(Arc::clone(&self.shared.metrics)))
                    .layer(cors)
                    .layer(middleware::DeadlineLayer(self.config.request_timeout))
                    .map_response(IntoResponse::into_response)
                    .layer(RequestBodyLimitLayer::new(self.config.max_body_bytes)),
            )
    }

    /// The site allowlist in force.
    pub fn allowed_origins(&self) -> Vec<Origin> {
        self.shared.allowlist().as_ref().clone()
    }

    /// Replaces the site allowlist (a configuration reload): requests that
    /// arrive from now on are checked against `allowlist`, for the CORS
    /// answer and for the token alike. An empty list is refused.
    pub fn set_allowlist(&self, allowlist: Vec<Origin>) -> Result<(), ta_protocol::OriginError> {
        if allowlist.is_empty() {
            return Err(ta_protocol::OriginError::Empty);
        }
        *self
            .shared
            .allowlist
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(allowlist);
        Ok(())
    }

    /// Makes the warm-up loop ([`keep_warm`](Self::keep_warm)) try again now
    /// rather than after its backoff: after a credential was replaced, say.
    pub fn retry_warm_up_now(&self) {
        if let Ok(mut readiness) = self.shared.readiness.lock() {
            readiness.last_failure = None;
        }
        self.shared.wake.notify_one();
    }

    /// Keeps the caches warm: warms up at once, retries with backoff (1 s
    /// doubling to 60 s) while that fails, then looks again every 30 s, and
    /// at the AAD token's refresh-ahead time when that comes sooner, so that
    /// no widget request waits for AAD. Runs until dropped.
    pub async fn keep_warm(&self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.shared.bootstrapper.warm_up().await {
                Ok(()) => {
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = None;
                        readiness.last_failure = None;
                    }
                    backoff = Duration::from_secs(1);
                    // Forget clients whose rate-limit state is back to full.
                    self.shared.per_client.retain_recent();
                    self.shared.per_client.shrink_to_fit();
                    // The refresh-ahead time is on the bootstrapper's clock.
                    let mut wait = WARM_CHECK_INTERVAL;
                    if let Some(due) = self.shared.bootstrapper.token_refresh_due() {
                        let now = self.shared.bootstrapper.clock().now();
                        // At least a second: a refresh due now or in the
                        // past is under way in another caller, or its token
                        // has expired and the next warm-up fetches anew.
                        wait = wait.min(due.saturating_duration_since(now).max(MIN_WARM_WAIT));
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                Err(failure) => {
                    warn!(error = %failure.report_line(), retry_in = ?backoff, "warm-up failed");
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = Some(format!("upstream_{}", failure.kind().code()));
                    }
                    self.shared.per_client.retain_recent();
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.shared.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

/// The service's own middleware, as plain tower services: each calls the
/// service inside it directly, where `axum::middleware::from_fn` clones the
/// whole stack below it for every request.
mod middleware {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::extract::Request;
    use axum::http::{Method, StatusCode};
    use axum::response::Response;
    use tower::{Layer, Service};
    use tracing::warn;

    use crate::metrics::{Metrics, RouteLabels};

    type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    /// Removes an `x-request-id` the client sent: the id is the service's.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct DropClientRequestIdLayer;

    impl<S> Layer<S> for DropClientRequestIdLayer {
        type Service = DropClientRequestId<S>;

        fn layer(&self, inner: S) -> Self::Service {
            DropClientRequestId(inner)
        }
    }

    #[derive(Debug, Clone)]
    pub(super) struct DropClientRequestId<S>(S);

    impl<S: Service<Request>> Service<Request> for DropClientRequestId<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, mut request: Request) -> Self::Future {
            request.headers_mut().remove("x-request-id");
            self.0.call(request)
        }
    }

    /// Counts every answer by route and status.
    #[derive(Debug, Clone)]
    pub(super) struct CountLayer(pub(super) Arc<Metrics>);

    impl<S> Layer<S> for CountLayer {
        type Service = Count<S>;

        fn layer(&self, inner: S) -> Self::Service {
            Count {
                inner,
                metrics: Arc::clone(&self.0),
            }
        }
    }

    #[derive(Debug, Clone)]
    pub(super) struct Count<S> {
        inner: S,
        metrics: Arc<Metrics>,
    }

    impl<S> Service<Request> for Count<S>
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        type Response = Response;
        type Error = Infallible;
        type Future = BoxFuture;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: Request) -> Self::Future {
            let route = match request.uri().path() {
                "/v1/widget-token" if request.method() == Method::OPTIONS => "preflight",
                "/v1/widget-token" => "widget_token",
                "/healthz" => "healthz",
                "/readyz" => "readyz",
                "/metrics" => "metrics",
                _ => "other",
            };
            let answer = self.inner.call(request);
            let metrics = Arc::clone(&self.metrics);
            Box::pin(async move {
                let response = answer.await?;
                metrics
                    .requests
                    .get_or_create(&RouteLabels {
                        route,
                        status: response.status().as_u16(),
                    })
                    .inc();
                Ok(response)
            })
        }
    }

    /// The request timeout: past the limit, 504 `timeout` in the same JSON
    /// shape as every other error (tower-http's timeout answers an empty
    /// body).
    #[derive(Debug, Clone, Copy)]
    pub(super) struct DeadlineLayer(pub(super) Duration);

    impl<S> Layer<S> for DeadlineLayer {
        type Service = Deadline<S>;

        fn layer(&self, inner: S) -> Self::Service {
            Deadline {
                inner,
                limit: self.0,
            }
        }
    }

    #[derive(Debug, Clone)]
    pub(super) struct Deadline<S> {
        inner: S,
        limit: Duration,
    }

    impl<S> Service<Request> for Deadline<S>
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static,
    {
        type Response = Response;
        type Error = Infallible;
        type Future = BoxFuture;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: Request) -> Self::Future {
            // Read only if the deadline passes (a cheap clone).
            let request_id = request.headers().get("x-request-id").cloned();
            let limit = self.limit;
            let answer = self.inner.call(request);
            Box::pin(async move {
                match tokio::time::timeout(limit, answer).await {
                    Ok(response) => response,
                    Err(_) => {
                        warn!(limit = ?limit, "request timed out");
                        Ok(super::error(
                            StatusCode::GATEWAY_TIMEOUT,
                            "timeout",
                            "the request took too long; retry shortly",
                            request_id
                                .as_ref()
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default(),
                        ))
                    }
                }
            })
        }
    }
}
