//! The emulated endpoints: the shared state, the router and its
//! bookkeeping here; one module per endpoint, and one for faults.
#![allow(clippy::result_large_err)] // handlers answer errors as ready-made responses

use std::collections::HashMap;
use std::future::Future as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State as AxState};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hal_model::{
    AnonApplicationToken, ErrorBody, ExpiryFormat, ExpiryTime, Link, Namespace, PsatToken, Rel,
    Resource, names,
};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{
    AppConfig, EmulatorConfig, EndpointConfig, EndpointIdStyle, ExpiryStyle, PathCasing,
    RelNamespace,
};
use crate::faults::{FaultKind, Faults};
use crate::stats::{Route, Stats};
use crate::tokens::{AccessClaims, PsatClaims, keys};

mod aad;
mod anonymous;
mod applications;
mod auth;
mod capabilities;
pub(crate) mod chat;
mod discovery;
mod injection;
mod mint;

use aad::aad_token;
use applications::applications;
use capabilities::application;
pub(crate) use chat::deliver::run as deliver_callbacks;
use discovery::discover;
use injection::inject_faults;
use mint::mint;

/// What percent-encoding of an endpoint id leaves alone: letters, digits
/// and `-._~`. Hex is written lower-case, as the API did.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The value of `X-MS-Server-Fqdn`.
pub(crate) const SERVER_FQDN: &str = "ta-emulator.loopback.invalid";

/// The shared state of a running emulator.
pub(crate) struct State {
    pub(crate) config: EmulatorConfig,
    pub(crate) stats: Stats,
    pub(crate) port: u16,
    /// The plain-HTTP port of the widget-facing side
    /// ([`EmulatorConfig::widget_http`]).
    pub(crate) widget_port: Option<u16>,
    /// Seconds added to the wall clock (tests move time forward).
    pub(crate) clock_offset: AtomicI64,
    /// The mint's session ids, with their application and origins, for as
    /// long as their token lives.
    sessions: Mutex<Expiring<(String, String)>>,
    /// Client assertion ids seen (replays are refused), for as long as the
    /// assertion is valid.
    assertion_ids: Mutex<Expiring<()>>,
    correlation: AtomicU64,
    pub(crate) faults: Faults,
    /// The network distance in force.
    pub(crate) network: crate::network::Network,
    /// AAD tokens issued so far (each token carries its number).
    token_seq: AtomicU64,
    /// Tokens numbered up to this are revoked.
    revoked_up_to: AtomicU64,
    /// The chat world.
    pub(in crate::app) chat: chat::world::World,
}

/// Entries forgotten once they expire (Unix seconds on the emulator's
/// clock). Expired entries are swept whenever the map has doubled since the
/// last sweep, so that a long-running emulator holds only what is alive.
#[derive(Debug)]
struct Expiring<V> {
    entries: HashMap<String, (V, u64)>,
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            sweep_at: Self::MIN_SWEEP,
        }
    }
}

impl<V> Expiring<V> {
    const MIN_SWEEP: usize = 1024;

    /// The entry for `key`, unless it has expired at `now`.
    fn get(&self, key: &str, now: u64) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value)
    }

    /// Adds or replaces an entry that lives until `expires`.
    fn insert(&mut self, key: String, value: V, expires: u64, now: u64) {
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.entries.len() * 2).max(Self::MIN_SWEEP);
        }
        self.entries.insert(key, (value, expires));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl State {
    pub(crate) fn new(
        config: EmulatorConfig,
        port: u16,
        widget_port: Option<u16>,
        callbacks: tokio::sync::mpsc::UnboundedSender<chat::deliver::Outgoing>,
    ) -> Self {
        let callback_url = config
            .chat
            .callback_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok());
        Self {
            chat: chat::world::World::new(callback_url, config.chat.callback_faults(), callbacks),
            faults: Faults::new(&config.faults, config.fault_seed),
            network: crate::network::Network::new(config.network, config.fault_seed),
            token_seq: AtomicU64::new(0),
            revoked_up_to: AtomicU64::new(0),
            config,
            stats: Stats::default(),
            port,
            widget_port,
            clock_offset: AtomicI64::new(0),
            sessions: Mutex::new(Expiring::default()),
            assertion_ids: Mutex::new(Expiring::default()),
            correlation: AtomicU64::new(0),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.config.tls { "https" } else { "http" }
    }

    /// Where discovery, AAD and the anonymous discovery are served.
    pub(crate) fn discovery_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the browser reaches the widget-facing side: the plain-HTTP
    /// listener when there is one, else discovery's scheme and host.
    pub(crate) fn widget_origin(&self) -> String {
        match self.widget_port {
            Some(port) => format!("http://127.0.0.1:{port}"),
            None => format!("{}://{}", self.scheme(), self.discovery_host()),
        }
    }

    /// Where the API (applications and below) is served: another host name
    /// than discovery, so that clients must follow absolute links.
    pub(crate) fn api_host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// The token audience: scheme and host of the discover URL.
    pub(crate) fn audience(&self) -> String {
        format!("{}://{}", self.scheme(), self.discovery_host())
    }

    pub(crate) fn discover_url(&self) -> String {
        format!(
            "{}://{}/{}/discover",
            self.scheme(),
            self.discovery_host(),
            self.ps()
        )
    }

    pub(crate) fn token_url(&self) -> String {
        format!(
            "{}://{}/{}/oauth2/v2.0/token",
            self.scheme(),
            self.discovery_host(),
            self.config.tenant
        )
    }

    fn now(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        wall.saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// The counters, the chat's included.
    pub(crate) fn snapshot(&self) -> crate::StatsSnapshot {
        self.stats
            .snapshot(self.chat.stats(), self.network.crossed())
    }

    /// The chat's conversations open now, described.
    pub(crate) fn open_conversations(&self) -> Vec<String> {
        self.chat.open_conversations()
    }

    /// The callback faults now.
    pub(crate) fn callback_faults(&self) -> crate::CallbackFaults {
        self.chat.callback_faults()
    }

    /// Sets the callback faults.
    pub(crate) fn set_callback_faults(&self, faults: crate::CallbackFaults) {
        self.chat.set_callback_faults(faults);
    }

    /// Sets where the SA's callbacks go (`None`: nowhere).
    pub(crate) fn set_callback_url(&self, url: Option<&str>) -> Result<(), String> {
        let url = url
            .map(crate::chat_config::check_callback_url)
            .transpose()?;
        self.chat.set_callback_url(url);
        Ok(())
    }

    /// Switches the platform's callback signing to its second key (and
    /// publishes it).
    pub(crate) fn rotate_callback_key(&self) {
        self.chat.rotate_key();
    }

    fn now_u64(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0)
    }

    fn ps(&self) -> &'static str {
        match self.config.quirks.path_casing {
            PathCasing::Lower => "platformservice",
            PathCasing::Camel => "platformService",
        }
    }

    fn ns(&self) -> Namespace {
        match self.config.quirks.namespace {
            RelNamespace::Service => Namespace::Service,
            RelNamespace::RtcSaas => Namespace::RtcSaas,
        }
    }

    fn rel(&self, local: &str) -> Rel {
        Rel::new(self.ns(), local)
    }

    /// The endpoint id as written in an href; `application_href` is the one
    /// the seed shows encoded.
    fn endpoint_in_href(&self, sip: &str, application_href: bool) -> String {
        let encode = match self.config.quirks.endpoint_id {
            EndpointIdStyle::Raw => false,
            EndpointIdStyle::Encoded => true,
            EndpointIdStyle::Mixed => application_href,
        };
        if encode {
            lowercase_hex(&utf8_percent_encode(sip, ENCODE_SET).to_string())
        } else {
            sip.to_owned()
        }
    }

    fn body<T: Serialize>(&self, status: StatusCode, value: &T) -> Response {
        let mut bytes = Vec::with_capacity(256);
        if self.config.quirks.bom {
            bytes.extend_from_slice(hal_model::UTF8_BOM);
        }
        bytes.extend_from_slice(&hal_model::to_vec(value));
        (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response()
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        subcode: Option<&str>,
        message: &str,
    ) -> Response {
        self.body(status, &ErrorBody::new(code, subcode, message))
    }

    fn next_correlation(&self) -> String {
        let n = self.correlation.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-0000-4000-8000-{:012x}", self.port, n)
    }

    fn app_by_client(&self, client_id: &str) -> Option<&AppConfig> {
        self.config
            .applications
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }
}

/// Lower-cases the hex digits of percent-escapes only (`%3A` → `%3a`).
fn lowercase_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escape = 0;
    for c in text.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

type Shared = Arc<State>;

fn tagged(route: Route, mut response: Response) -> Response {
    response.extensions_mut().insert(route);
    response
}

/// The host a request was sent to (`Host`, or the HTTP/2 authority).
fn host_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    uri.authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .or_else(|| {
            headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_ascii_lowercase)
        })
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A query parameter as written (not decoded), its name matched
/// case-insensitively.
fn raw_query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// The CORS rule of the widget-facing routes: origins the psat token in
/// the query was minted for.
fn widget_cors(state: &Shared) -> CorsLayer {
    let cors_state = Arc::clone(state);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            cors_state.psat_allows_origin(parts.uri.query(), origin)
        }))
        .allow_methods([Method::GET])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600))
}

/// The CORS rule of the widget's UCWA routes: an application's origins on
/// its resources, else origins a live token was minted for (a preflight
/// carries no token; each request's own origin is checked against its
/// token's).
fn ucwa_cors(state: &Shared) -> CorsLayer {
    let cors_state = Arc::clone(state);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            origin
                .to_str()
                .is_ok_and(|o| cors_state.ucwa_allows_origin(parts.uri.path(), o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .expose_headers([http::header::LOCATION])
        .max_age(std::time::Duration::from_secs(600))
}

/// The widget's UCWA routes, served on both listeners.
fn ucwa_routes(state: &Shared) -> Router<Shared> {
    use chat::widget as w;
    let base = "/ucwa/psanon/v1/applications";
    Router::new()
        .route(base, post(w::create_application))
        .route(
            &format!("{base}/{{app}}"),
            axum::routing::delete(w::delete_application),
        )
        .route(&format!("{base}/{{app}}/events"), get(w::poll_events))
        .route(
            &format!("{base}/{{app}}/communication/messaginginvitations"),
            post(w::start_messaging),
        )
        .route(
            &format!("{base}/{{app}}/communication/conversations/{{conversation}}"),
            axum::routing::delete(w::widget_leave),
        )
        .route(
            &format!(
                "{base}/{{app}}/communication/conversations/{{conversation}}/messaging/messages"
            ),
            post(w::widget_send),
        )
        .route(
            &format!(
                "{base}/{{app}}/communication/conversations/{{conversation}}/messaging/typing"
            ),
            post(w::widget_typing),
        )
        .route(
            &format!(
                "{base}/{{app}}/communication/conversations/{{conversation}}/messaging/terminate"
            ),
            post(w::widget_stop),
        )
        .layer(ucwa_cors(state))
}

/// The SA's chat calls, the identity provider's keys and the controls.
fn platform_routes(state: &Shared) -> Router<Shared> {
    use chat::platform as p;
    let base = "/platformservice/v1/applications/{id}/communication";
    let calls = Router::new()
        .route(
            &format!("{base}/onlinemeetinginvitations/startadhocmeeting"),
            post(p::start_adhoc_meeting),
        )
        .route(
            &format!("{base}/messaginginvitations"),
            post(p::messaging_invitations),
        )
        .route(
            &format!("{base}/messaginginvitations/{{invitation}}/{{action}}"),
            post(p::invitation_action),
        )
        .route(
            &format!("{base}/participantinvitations"),
            post(p::participant_invitations),
        )
        .route(
            &format!("{base}/conversations/{{conversation}}/{{*rest}}"),
            post(p::conversation_action),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            p::sa_calls,
        ));
    Router::new()
        .merge(calls)
        .route("/{tenant}/discovery/keys", get(callback_keys))
        .route("/{tenant}/discovery/v2.0/keys", get(callback_keys))
        .route("/_emulator/callback-url", post(set_callback_url))
        .route("/_emulator/rotate-callback-key", post(rotate_callback_key))
}

async fn callback_keys(AxState(state): AxState<Shared>) -> Response {
    tagged(
        Route::Keys,
        axum::Json(state.callback_keys()).into_response(),
    )
}

async fn set_callback_url(AxState(state): AxState<Shared>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let answer = match state.set_callback_url((!text.is_empty()).then_some(text.as_str())) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => state.error(StatusCode::BAD_REQUEST, "BadRequest", None, &message),
    };
    tagged(Route::Control, answer)
}

async fn rotate_callback_key(AxState(state): AxState<Shared>) -> Response {
    state.rotate_callback_key();
    tagged(Route::Control, StatusCode::NO_CONTENT.into_response())
}

/// The network distance, the fault injection and the request counting
/// every route goes through.
fn with_common_layers(router: Router<Shared>, state: Shared) -> Router {
    router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            inject_faults,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), finish))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            cross_network,
        ))
        .with_state(state)
}

/// One round trip of the network distance before each request is answered
/// (the emulator's own `/_emulator/…` routes aside).
async fn cross_network(AxState(state): AxState<Shared>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/_emulator/") {
        state.network.cross(1).await;
    }
    next.run(request).await
}

/// The router of the main listener, with paths matched case-insensitively.
pub(crate) fn router(state: Shared) -> Router {
    let routes = Router::new()
        .route(
            "/platformservice/discover",
            get(discover).layer(widget_cors(&state)),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(aad_token))
        .route("/{tenant}/oauth2/token", post(aad_token))
        .route("/platformservice/v1/applications", get(applications))
        .route("/platformservice/v1/applications/{id}", get(application))
        .route(
            "/platformservice/v1/applications/{id}/anonapplicationtokens",
            post(mint),
        )
        .route("/_emulator/stats", get(stats))
        .merge(ucwa_routes(&state))
        .merge(platform_routes(&state));
    with_common_layers(routes, state)
}

/// The router of the widget-facing plain-HTTP listener
/// ([`EmulatorConfig::widget_http`]): what a browser calls, and the
/// emulator's own counters; nothing the SA calls.
pub(crate) fn widget_router(state: Shared) -> Router {
    let routes = Router::new()
        .route(
            "/platformservice/discover",
            get(discovery::widget_discover).layer(widget_cors(&state)),
        )
        // The counters, for tests that drive a browser (no CA needed).
        .route("/_emulator/stats", get(stats))
        .merge(ucwa_routes(&state));
    with_common_layers(routes, state)
}

/// Lower-cases the path (not the query) before routing: the API's paths
/// were case-insensitive (`platformService` and `platformservice`).
pub(crate) fn lowercase_path<B>(mut request: http::Request<B>) -> http::Request<B> {
    let uri = request.uri();
    let path = uri.path();
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        let mut target = path.to_ascii_lowercase();
        if let Some(q) = uri.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = target.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(new) = Uri::from_parts(parts) {
                *request.uri_mut() = new;
            }
        }
    }
    request
}

/// Counts every answer and stamps the correlation headers.
async fn finish(AxState(state): AxState<Shared>, request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .copied()
        .unwrap_or(if preflight {
            Route::Preflight
        } else {
            Route::NotFound
        });
    state.stats.count_request(route, response.status().as_u16());
    let correlation = state.next_correlation();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        headers.insert("x-ms-correlation-id", v);
    }
    headers.insert("x-ms-server-fqdn", HeaderValue::from_static(SERVER_FQDN));
    response
}

async fn not_found(AxState(state): AxState<Shared>, method: Method, uri: Uri) -> Response {
    tagged(
        Route::NotFound,
        state.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            None,
            &format!("no resource at {method} {}", uri.path()),
        ),
    )
}

async fn stats(AxState(state): AxState<Shared>) -> Response {
    tagged(Route::Stats, axum::Json(state.snapshot()).into_response())
}

#[cfg(test)]
mod tests {
    use super::Expiring;

    #[test]
    fn an_entry_lives_until_it_expires() {
        let mut map = Expiring::default();
        map.insert("session".to_owned(), 7, 100, 10);
        assert_eq!(map.get("session", 99), Some(&7));
        assert_eq!(map.get("session", 100), None);
        assert_eq!(map.get("other", 50), None);
    }

    #[test]
    fn expired_entries_are_swept_so_memory_stays_bounded() {
        let mut map = Expiring::default();
        // 100,000 entries, each alive for 10 s, one second apart: at most 10
        // are alive at once.
        for i in 0..100_000u64 {
            map.insert(format!("s{i}"), (), i + 10, i);
            assert!(map.len() <= 2 * Expiring::<()>::MIN_SWEEP, "{}", map.len());
        }
        assert_eq!(map.get("s99999", 99_999), Some(&()));
        assert_eq!(map.get("s0", 99_999), None);
    }
}
