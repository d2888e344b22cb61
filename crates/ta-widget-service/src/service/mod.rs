//! The widget-token service: the SA backend endpoint a chat widget calls.
//!
//! `POST /v1/widget-token` from a browser whose `Origin` is on the site
//! allowlist answers a fresh widget token minted for that origin alone; any
//! other caller is refused before anything goes upstream. `GET
//! /v1/client.js` and `GET /v1/chat.js` serve the widget's token and chat
//! clients (`clients/js/`).
//!
//! The service: the endpoint, CORS (tower-http, a predicate over the
//! allowlist), rate limits per client address and overall (governor;
//! `X-Forwarded-For`/`Forwarded` honoured only from trusted proxies), request
//! ids (a tracing span per request carries it), body and time limits, a bound
//! on mints in flight, warm-up, an optional pool of pre-minted tokens
//! ([`crate::pool`]), `/healthz`, `/readyz` and `/metrics` (Prometheus
//! text). The allowlist can be replaced while running
//! ([`WidgetService::set_allowlist`]). Serve the [`WidgetService::router`]
//! with [`crate::server::serve`] (TLS, bounded request heads, graceful
//! drain).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
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

mod answers;
mod callback;
mod handler;
mod middleware;
mod modules;
mod pool;
mod readiness;
mod renewal;

use crate::forwarded::{client_address, rate_key};
use answers::{
    TokenAnswer, error, mint_failed, no_store_json, request_id_of, too_many, upstream_answer,
};
pub use callback::ChatEndpoint;
use handler::widget_token;
use readiness::{FAILURE_HOLD, Readiness, healthz, metrics, readyz};
pub use renewal::{RenewalHint, RenewalHintError};
use ta_bootstrap::{BootstrapError, Bootstrapper, FailureKind};

/// The settings of the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// When a widget should renew its token: the answer's `renewAfter`.
    pub renewal: RenewalHint,
    /// The pool of pre-minted tokens ([`crate::pool`]): off unless set.
    /// Its refills run in [`WidgetService::keep_pool`].
    pub pool: crate::pool::PoolConfig,
}

impl ServiceConfig {
    /// An allowlist with the defaults: 1 KiB bodies, 30 s per request, 25 s
    /// per mint, 256 mints in flight, 60 requests a minute per client, 200 a
    /// second in all, no trusted proxy, renewal after three quarters of a
    /// token's life, no pool.
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
            renewal: RenewalHint::default(),
            pool: crate::pool::PoolConfig::off(),
        }
    }
}

struct Shared {
    bootstrapper: Bootstrapper,
    /// Replaced whole on reload; readers take a snapshot.
    allowlist: std::sync::RwLock<Arc<Vec<Origin>>>,
    /// Wakes the warm-up loop (after a reload, say).
    wake: tokio::sync::Notify,
    mints: Arc<Semaphore>,
    /// The pool of pre-minted tokens, if it is on.
    pool: Option<pool::PoolState>,
    readiness: Mutex<Readiness>,
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    trusted_proxies: Vec<IpAddr>,
    upstream_deadline: Duration,
    renewal: RenewalHint,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
    /// The chat, when the service runs one.
    chat: std::sync::OnceLock<ChatEndpoint>,
    /// The operator's check before each mint, if any.
    mint_check: std::sync::OnceLock<Arc<dyn crate::mint_check::MintCheck>>,
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

impl WidgetService {
    /// A service minting with `bootstrapper` for the origins of `config`,
    /// exporting `metrics` (give the same `Arc` to the bootstrapper and the
    /// token provider) at `/metrics`.
    pub fn new(bootstrapper: Bootstrapper, config: ServiceConfig, metrics: Arc<Metrics>) -> Self {
        let one = NonZeroU32::MIN;
        let per_client = NonZeroU32::new(config.per_client_per_minute).unwrap_or(one);
        let global = NonZeroU32::new(config.global_per_second).unwrap_or(one);
        let pool = pool::PoolState::new(&config, bootstrapper.clock().now());
        Self {
            shared: Arc::new(Shared {
                bootstrapper,
                allowlist: std::sync::RwLock::new(Arc::new(config.allowlist.clone())),
                wake: tokio::sync::Notify::new(),
                mints: Arc::new(Semaphore::new(
                    config.max_mints_in_flight.clamp(1, Semaphore::MAX_PERMITS),
                )),
                pool,
                readiness: Mutex::new(Readiness::default()),
                per_client: RateLimiter::keyed(Quota::per_minute(per_client)),
                global: RateLimiter::direct(Quota::per_second(global)),
                trusted_proxies: config.trusted_proxies.clone(),
                upstream_deadline: config.upstream_deadline,
                renewal: config.renewal,
                max_body_bytes: config.max_body_bytes,
                metrics,
                chat: std::sync::OnceLock::new(),
                mint_check: std::sync::OnceLock::new(),
            }),
            config,
        }
    }

    /// Parses an allowlist (as `--allowed-origin` takes it).
    pub fn allowlist(
        origins: &[String],
        policy: OriginPolicy,
    ) -> Result<Vec<Origin>, ta_protocol::OriginError> {
        Origin::parse_all(origins.iter().map(String::as_str), policy)
    }

    /// Runs the chat too: `GET`/`POST /v1/callback` take the platform's
    /// callbacks (authenticated by the endpoint's verifier) for its
    /// switchboard. Set once, before [`router`](Self::router).
    pub fn with_chat(self, chat: ChatEndpoint) -> Self {
        let _ = self.shared.chat.set(chat);
        self
    }

    /// Checks each widget-token request with `check` after the origin and
    /// the rate limits, before its mint: a refusal is answered as the check
    /// says, and nothing goes upstream. Set once, before
    /// [`router`](Self::router). See [`crate::mint_check`].
    pub fn with_mint_check(self, check: impl crate::mint_check::MintCheck) -> Self {
        let _ = self.shared.mint_check.set(Arc::new(check));
        self
    }

    /// The metrics it exports (give them to its [`Server`](crate::server::Server)
    /// too, for the connection counts).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// The chat's switchboard, if the service runs one.
    pub fn switchboard(&self) -> Option<&ta_bootstrap::chat::Switchboard> {
        self.shared.chat.get().map(|c| &c.switchboard)
    }

    /// This replica and its peers, if the service runs the chat as one of
    /// several ([`ChatEndpoint::with_replicas`]): their routes can change
    /// while it runs ([`Replicas::set_routes`](crate::replicas::Replicas::set_routes)).
    pub fn replicas(&self) -> Option<&crate::replicas::Replicas> {
        self.shared.chat.get()?.replicas.as_deref()
    }

    /// The HTTP routes with their layers.
    pub fn router(&self) -> Router {
        let browser = self.layered(
            Router::new()
                .route("/v1/widget-token", post(widget_token))
                .route("/v1/client.js", get(modules::client_js))
                .route("/v1/chat.js", get(modules::chat_js))
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics))
                .with_state(Arc::clone(&self.shared)),
            Some(self.cors()),
            self.config.max_body_bytes,
        );
        match self.shared.chat.get() {
            // Not a browser's route: no CORS, and a body of a callback's
            // size.
            Some(chat) => browser.merge(
                self.layered(
                    Router::new()
                        .route(
                            "/v1/callback",
                            post(callback::callback).get(callback::callback_check),
                        )
                        .with_state(Arc::clone(&self.shared)),
                    None,
                    chat.max_body_bytes,
                ),
            ),
            None => browser,
        }
    }

    fn cors(&self) -> CorsLayer {
        let shared = Arc::clone(&self.shared);
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                shared
                    .allowlist()
                    .iter()
                    .any(|o| o.as_str().as_bytes() == origin.as_bytes())
            }))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .expose_headers([
                header::RETRY_AFTER,
                header::ETAG,
                header::HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600))
    }

    /// `routes` under the service's layers: request ids, tracing, counting,
    /// `cors` if given, the deadline and a `body_limit`.
    fn layered(&self, routes: Router, cors: Option<CorsLayer>, body_limit: usize) -> Router {
        routes
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
                    .option_layer(cors)
                    .layer(middleware::DeadlineLayer(self.config.request_timeout))
                    .map_response(IntoResponse::into_response)
                    .layer(RequestBodyLimitLayer::new(body_limit)),
            )
    }

    /// The site allowlist in force.
    pub fn allowed_origins(&self) -> Vec<Origin> {
        self.shared.allowlist().as_ref().clone()
    }

    /// Replaces the site allowlist (a configuration reload): requests that
    /// arrive from now on are checked against `allowlist`, for the CORS
    /// answer and for the token alike, and the pooled tokens of origins no
    /// longer on it are thrown away. An empty list is refused.
    pub fn set_allowlist(&self, allowlist: Vec<Origin>) -> Result<(), ta_protocol::OriginError> {
        if allowlist.is_empty() {
            return Err(ta_protocol::OriginError::Empty);
        }
        let before = std::mem::replace(
            &mut *self
                .shared
                .allowlist
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Arc::new(allowlist.clone()),
        );
        // A removed origin's pooled tokens go with it.
        self.shared.pool_set_origins(&before, &allowlist);
        Ok(())
    }
}
