//! The widget-token service: the SA backend endpoint a chat widget calls.
//!
//! `POST /v1/widget-token` from a browser whose `Origin` is on the site
//! allowlist answers a fresh widget token minted for that origin alone; any
//! other caller is refused before anything goes upstream.
//!
//! First step of the service: the endpoint, CORS (tower-http, a predicate
//! over the allowlist), request ids, body and time limits, a bound on mints
//! in flight, warm-up, and `/healthz` and `/readyz`. Rate limits, metrics and
//! configuration reload are still to come.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use ta_protocol::{AllowedOrigins, Origin, OriginPolicy};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};

use crate::{BootstrapError, Bootstrapper, FailureKind};

/// The settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The web origins that may ask for a widget token, normalized.
    pub allowlist: Vec<Origin>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time for one request.
    pub request_timeout: Duration,
    /// Mints in flight at most; more callers get 503 at once.
    pub max_mints_in_flight: usize,
}

impl ServiceConfig {
    /// An allowlist with the defaults: 1 KiB bodies, 30 s per request, 256
    /// mints in flight.
    pub fn new(allowlist: Vec<Origin>) -> Self {
        Self {
            allowlist,
            max_body_bytes: 1024,
            request_timeout: Duration::from_secs(30),
            max_mints_in_flight: 256,
        }
    }
}

/// Whether the caches are warm, and why not.
#[derive(Debug, Clone, Default)]
struct Readiness {
    last_error: Option<String>,
}

struct Shared {
    bootstrapper: Bootstrapper,
    allowlist: Arc<Vec<Origin>>,
    mints: Semaphore,
    readiness: Mutex<Readiness>,
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
            .field("allowlist", &self.config.allowlist)
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
    let mut response = (
        status,
        axum::Json(ErrorAnswer {
            error: code,
            message,
            request_id,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// How an upstream failure is answered to the browser: a status and a
/// stable code; the details go to the log only.
fn upstream_answer(failure: &BootstrapError) -> (StatusCode, &'static str) {
    let timeout = failure
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
    match failure.kind() {
        _ if timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        FailureKind::Upstream => (StatusCode::BAD_GATEWAY, "upstream_error"),
        FailureKind::Authentication => (StatusCode::SERVICE_UNAVAILABLE, "upstream_authentication"),
        FailureKind::NotFound => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "service_misconfigured"),
    }
}

async fn widget_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let request_id = request_id_of(&headers);
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
    let Some(origin) = shared.allowlist.iter().find(|o| o.as_str() == origin) else {
        warn!(request_id, origin, "refused: origin not on the allowlist");
        return error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not ask for a widget token",
            &request_id,
        );
    };
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
    // Least privilege: the token is minted for the requesting origin alone.
    let Ok(origins) = AllowedOrigins::new([origin.clone()]) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the origin could not be used",
            &request_id,
        );
    };
    match shared.bootstrapper.mint(origins).await {
        Ok(minted) => {
            let expires_in = minted
                .expires_at
                .duration_since(SystemTime::now())
                .map_or(0, |d| d.as_secs());
            let expires_at = minted
                .expiry
                .instant()
                .to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| minted.expiry.as_str().to_owned());
            info!(request_id, origin = %origin, session_id = %minted.session_id, "served a widget token");
            let mut response = axum::Json(TokenAnswer {
                token: minted.token.expose(),
                discover_uri: minted.discover_uri.as_str(),
                expires_at,
                expires_in,
                application_session_id: minted.session_id.as_str(),
            })
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(failure) => {
            let (status, code) = upstream_answer(&failure);
            warn!(request_id, kind = failure.kind().code(), error = %failure.report_line(), "minting failed");
            error(
                status,
                code,
                "the widget token could not be minted; the request id identifies the failure in the service's logs",
                &request_id,
            )
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.bootstrapper.is_warm() {
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true})),
        )
            .into_response();
    }
    let reason = shared
        .readiness
        .lock()
        .ok()
        .and_then(|r| r.last_error.clone())
        .unwrap_or_else(|| {
            "warming up: discovery, AAD token and capabilities not cached yet".to_owned()
        });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"ready": false, "reason": reason})),
    )
        .into_response()
}

impl WidgetService {
    /// A service minting with `bootstrapper` for the origins of `config`.
    pub fn new(bootstrapper: Bootstrapper, config: ServiceConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                bootstrapper,
                allowlist: Arc::new(config.allowlist.clone()),
                mints: Semaphore::new(config.max_mints_in_flight.max(1)),
                readiness: Mutex::new(Readiness::default()),
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
        let allowlist = Arc::clone(&self.shared.allowlist);
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                allowlist
                    .iter()
                    .any(|o| o.as_str().as_bytes() == origin.as_bytes())
            }))
            .allow_methods([Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600));
        Router::new()
            .route("/v1/widget-token", post(widget_token).layer(cors))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(Arc::clone(&self.shared))
            .layer(RequestBodyLimitLayer::new(self.config.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                self.config.request_timeout,
            ))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
    }

    /// Keeps the caches warm: warms up at once, retries with backoff (1 s
    /// doubling to 60 s) while that fails, then refreshes the AAD token ahead
    /// of expiry. Runs until dropped.
    pub async fn keep_warm(&self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.shared.bootstrapper.warm_up().await {
                Ok(()) => {
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = None;
                    }
                    backoff = Duration::from_secs(1);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Err(failure) => {
                    let line = failure.report_line();
                    warn!(error = %line, retry_in = ?backoff, "warm-up failed");
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = Some(line);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
