//! The emulated endpoints.
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
    /// AAD tokens issued so far (each token carries its number).
    token_seq: AtomicU64,
    /// Tokens numbered up to this are revoked.
    revoked_up_to: AtomicU64,
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
    pub(crate) fn new(config: EmulatorConfig, port: u16) -> Self {
        Self {
            faults: Faults::new(&config.faults, config.fault_seed),
            token_seq: AtomicU64::new(0),
            revoked_up_to: AtomicU64::new(0),
            config,
            stats: Stats::default(),
            port,
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

/// The router, with paths matched case-insensitively.
pub(crate) fn router(state: Shared) -> Router {
    let cors_state = Arc::clone(&state);
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            cors_state.psat_allows_origin(parts.uri.query(), origin)
        }))
        .allow_methods([Method::GET])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600));
    Router::new()
        .route("/platformservice/discover", get(discover).layer(cors))
        .route("/{tenant}/oauth2/v2.0/token", post(aad_token))
        .route("/{tenant}/oauth2/token", post(aad_token))
        .route("/platformservice/v1/applications", get(applications))
        .route("/platformservice/v1/applications/{id}", get(application))
        .route(
            "/platformservice/v1/applications/{id}/anonapplicationtokens",
            post(mint),
        )
        .route("/_emulator/stats", get(stats))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            inject_faults,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), finish))
        .with_state(state)
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
    tagged(
        Route::Stats,
        axum::Json(state.stats.snapshot()).into_response(),
    )
}

// ---------------------------------------------------------------- discovery

async fn discover(
    AxState(state): AxState<Shared>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(context) = raw_query_param(query.as_deref(), "anonymousContext") {
        return tagged(
            Route::AnonymousDiscovery,
            state.anonymous_discovery(&context, &headers),
        );
    }
    tagged(Route::Discovery, state.discovery(&uri, &headers))
}

fn raw_query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

impl State {
    fn discovery(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        if host_of(uri, headers).as_deref() != Some(&self.discovery_host()) {
            return self.misdirected(uri, headers);
        }
        if self.config.discovery_requires_token {
            if let Err(response) = self.authenticate(headers) {
                return response;
            }
        }
        let scheme = self.scheme();
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!(
                    "{scheme}://{}/{}/discover",
                    self.discovery_host(),
                    self.ps()
                )),
            )
            .with_link(
                self.rel(names::APPLICATIONS),
                Link::new(format!(
                    "{scheme}://{}/{}/v1/applications",
                    self.api_host(),
                    self.ps()
                )),
            )
            .with_link(
                Rel::parse(names::MY_APPLICATIONS),
                Link::new(format!(
                    "{scheme}://{}/{}/v1/myApplications",
                    self.api_host(),
                    self.ps()
                )),
            );
        self.body(StatusCode::OK, &resource)
    }

    fn misdirected(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            Some("WrongHost"),
            &format!(
                "{} is not served on host {}; follow the links of the previous answer",
                uri.path(),
                host_of(uri, headers).unwrap_or_default()
            ),
        )
    }

    /// Decodes the `anonymousContext` value as the link carries it:
    /// percent-encoded twice (`psat%253d…`).
    fn psat_from_context(raw: &str) -> Option<String> {
        let once = percent_decode_str(raw).decode_utf8().ok()?;
        if !once.to_ascii_lowercase().starts_with("psat%3d") {
            return None;
        }
        let twice = percent_decode_str(&once).decode_utf8().ok()?;
        twice.strip_prefix("psat=").map(str::to_owned)
    }

    fn valid_psat(&self, raw_context: &str) -> Result<PsatClaims, &'static str> {
        let jwt = Self::psat_from_context(raw_context)
            .ok_or("anonymousContext must carry the psat token as the link gave it (percent-encoded twice)")?;
        let keys = keys().map_err(|_| "the emulator has no signing key")?;
        let claims: PsatClaims = keys
            .verify(&jwt)
            .ok_or("the anonymous token's signature or format is invalid")?;
        let now = self.now_u64();
        if claims.exp <= now {
            return Err("the anonymous token has expired");
        }
        if claims.nbf > now.saturating_add(300) {
            return Err("the anonymous token is not valid yet");
        }
        Ok(claims)
    }

    /// The CORS rule: only origins that were in `allowedOrigins` at mint.
    fn psat_allows_origin(&self, query: Option<&str>, origin: &HeaderValue) -> bool {
        let Some(raw) = raw_query_param(query, "anonymousContext") else {
            return false;
        };
        let Ok(claims) = self.valid_psat(&raw) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        claims.ao.split(';').any(|allowed| allowed == origin)
    }

    fn anonymous_discovery(&self, raw_context: &str, headers: &HeaderMap) -> Response {
        if let Err(reason) = self.valid_psat(raw_context) {
            return self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("InvalidAnonymousToken"),
                reason,
            );
        }
        let _ = headers.get(ORIGIN);
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("/{}/discover", self.ps())),
            )
            .with_link(
                Rel::parse(names::ANON_APPLICATIONS),
                Link::new("/ucwa/psanon/v1/applications"),
            )
            .with_rel(self.rel(names::DISCOVER));
        self.body(StatusCode::OK, &resource)
    }
}

// ---------------------------------------------------------------- API

impl State {
    /// Checks the bearer token; the error is the 401 to answer.
    fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, Response> {
        let challenge = |error: Option<&str>, message: &str| {
            let mut value = format!(
                r#"Bearer realm="{}", authorization_uri="{}://{}/{}/oauth2/authorize", resource_id="{}""#,
                self.api_host(),
                self.scheme(),
                self.discovery_host(),
                self.config.tenant,
                self.audience()
            );
            if let Some(error) = error {
                value.push_str(&format!(r#", error="{error}""#));
            }
            let mut response = self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some(if error.is_some() {
                    "InvalidToken"
                } else {
                    "MissingToken"
                }),
                message,
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
            response
        };
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(challenge(None, "an AAD access token is required"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                challenge(
                    Some("invalid_request"),
                    "the Authorization header is not `Bearer <token>`",
                )
            })?;
        let keys =
            keys().map_err(|_| challenge(Some("invalid_token"), "the emulator has no key"))?;
        let claims: AccessClaims = keys.verify(token).ok_or_else(|| {
            challenge(
                Some("invalid_token"),
                "the token's signature or format is invalid",
            )
        })?;
        let now = self.now_u64();
        if claims.exp <= now {
            return Err(challenge(Some("invalid_token"), "the token has expired"));
        }
        if claims.seq <= self.revoked_up_to.load(Ordering::Relaxed) {
            return Err(challenge(
                Some("invalid_token"),
                "the token has been revoked",
            ));
        }
        if claims.nbf > now.saturating_add(300) {
            return Err(challenge(
                Some("invalid_token"),
                "the token is not valid yet",
            ));
        }
        if claims.aud != self.audience() {
            return Err(challenge(
                Some("invalid_token"),
                &format!(
                    "the token's audience is {:?}; this API accepts {:?}",
                    claims.aud,
                    self.audience()
                ),
            ));
        }
        if claims.tid != self.config.tenant_id {
            return Err(challenge(
                Some("invalid_token"),
                "the token is for another tenant",
            ));
        }
        Ok(claims)
    }

    /// The application of the token and the endpoint named by `endpointId`,
    /// or the 403 to answer.
    fn resolve_endpoint(
        &self,
        claims: &AccessClaims,
        endpoint_id: Option<&str>,
    ) -> Result<(&AppConfig, &EndpointConfig), Response> {
        let Some(endpoint_id) = endpoint_id else {
            return Err(self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                Some("MissingEndpointId"),
                "the endpointId query parameter is required",
            ));
        };
        let not_found = || {
            self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotFound"),
                &format!("no application endpoint {endpoint_id} is configured for this application in the tenant"),
            )
        };
        let app = self.app_by_client(&claims.appid).ok_or_else(not_found)?;
        if !app.consented {
            return Err(self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotConsented"),
                "the tenant admin has not consented to this application",
            ));
        }
        let endpoint = app
            .endpoints
            .iter()
            .find(|e| e.sip.eq_ignore_ascii_case(endpoint_id))
            .ok_or_else(not_found)?;
        Ok((app, endpoint))
    }

    fn api_prelude(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(AccessClaims, &AppConfig, &EndpointConfig), Response> {
        if host_of(uri, headers).as_deref() != Some(&self.api_host()) {
            return Err(self.misdirected(uri, headers));
        }
        let claims = self.authenticate(headers)?;
        let endpoint_id = query_param(query, "endpointId");
        let (app, endpoint) = self.resolve_endpoint(&claims, endpoint_id.as_deref())?;
        Ok((claims, app, endpoint))
    }
}

async fn applications(
    AxState(state): AxState<Shared>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, endpoint)) => {
            let ps = state.ps();
            let resource = Resource::new()
                .with_link(
                    Rel::parse(names::SELF),
                    Link::new(format!(
                        "/{ps}/v1/applications?endpointId={}",
                        state.endpoint_in_href(&endpoint.sip, false)
                    )),
                )
                .with_link(
                    state.rel(names::APPLICATION),
                    Link::new(format!(
                        "/{ps}/v1/applications/{}?endpointId={}",
                        app.application_id,
                        state.endpoint_in_href(&endpoint.sip, true)
                    )),
                )
                .with_rel(state.rel("applications"));
            state.body(StatusCode::OK, &resource)
        }
    };
    tagged(Route::Applications, response)
}

async fn application(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, _)) if !app.application_id.eq_ignore_ascii_case(&id) => state.error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("ApplicationNotFound"),
            &format!("application {id} does not belong to the token's application"),
        ),
        Ok((_, app, endpoint)) => state.body(StatusCode::OK, &state.capabilities(app, endpoint)),
    };
    tagged(Route::Application, response)
}

impl State {
    fn capabilities(&self, app: &AppConfig, endpoint: &EndpointConfig) -> Resource {
        let ps = self.ps();
        let id = &app.application_id;
        let raw = self.endpoint_in_href(&endpoint.sip, false);
        let base = format!("/{ps}/v1/applications/{id}");
        let mut resource = Resource::new().with_link(
            Rel::parse(names::SELF),
            Link::new(format!(
                "{base}?endpointId={}",
                self.endpoint_in_href(&endpoint.sip, true)
            )),
        );
        if endpoint.anon_tokens {
            resource = resource.with_link(
                self.rel(names::ANON_APPLICATION_TOKENS),
                Link::new(format!("{base}/anonApplicationTokens?endpointId={raw}")),
            );
        }
        let communication = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("{base}/communication?endpointId={raw}")),
            )
            .with_link(
                self.rel(names::JOIN_ONLINE_MEETING),
                Link::new(format!(
                    "{base}/communication/onlineMeetingInvitations?endpointId={raw}"
                )),
            )
            .with_link(
                self.rel(names::INVITE_USER_TO_MEETING),
                Link::new(format!(
                    "{base}/communication/userMeetingInvitations?endpointId={raw}"
                )),
            )
            .with_link(
                self.rel(names::START_MESSAGING),
                Link::new(format!(
                    "{base}/communication/messagingInvitations?endpointId={raw}"
                )),
            )
            .with_rel(self.rel(names::COMMUNICATION))
            .with_etag("4294967295");
        let adhoc = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("{base}/adhocMeetings?endpointId={raw}")),
            )
            .with_rel(self.rel(names::ADHOC_MEETINGS));
        resource
            .with_embedded(self.rel(names::COMMUNICATION), communication)
            .with_embedded(self.rel(names::ADHOC_MEETINGS), adhoc)
            .with_rel(self.rel("application"))
    }
}

// ---------------------------------------------------------------- mint

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintBody {
    application_session_id: Option<serde_json::Value>,
    allowed_origins: Option<serde_json::Value>,
}

async fn mint(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, endpoint)) => state.mint(&id, app, endpoint, &headers, &body),
    };
    tagged(Route::Mint, response)
}

impl State {
    fn bad_request(&self, message: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            Some("InvalidRequest"),
            message,
        )
    }

    fn mint(
        &self,
        id: &str,
        app: &AppConfig,
        endpoint: &EndpointConfig,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        if !app.application_id.eq_ignore_ascii_case(id) {
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotFound"),
                &format!("application {id} does not belong to the token's application"),
            );
        }
        if !endpoint.anon_tokens {
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("AnonymousTokensNotConsented"),
                "the tenant has not consented to anonymous application tokens for this endpoint",
            );
        }
        let json_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json_type {
            return self.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                None,
                "the body must be application/json",
            );
        }
        let parsed: MintBody = match hal_model::from_slice(body) {
            Ok(parsed) => parsed,
            Err(e) => return self.bad_request(&format!("the body is not the expected JSON: {e}")),
        };
        let session = match parsed.application_session_id {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return self.bad_request("applicationSessionId must be a string"),
            None => return self.bad_request("applicationSessionId is required"),
        };
        let length = session.chars().count();
        if !(1..=100).contains(&length) {
            return self.bad_request(&format!(
                "applicationSessionId has {length} characters; it must have 1 to 100"
            ));
        }
        let origins = match parsed.allowed_origins {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return self.bad_request("allowedOrigins must be a string"),
            None => return self.bad_request("allowedOrigins is required"),
        };
        if origins.chars().count() > 500 {
            return self.bad_request(&format!(
                "allowedOrigins has {} characters; at most 500 are accepted",
                origins.chars().count()
            ));
        }
        if let Err(message) = check_origins(&origins) {
            return self.bad_request(&message);
        }
        let now = self.now_u64();
        let exp = now.saturating_add(self.config.psat_lifetime_secs);
        if let Ok(mut sessions) = self.sessions.lock() {
            match sessions.get(&session, now) {
                Some((owner, known)) if owner != &app.application_id || known != &origins => {
                    return self.error(
                        StatusCode::CONFLICT,
                        "Conflict",
                        Some("AlreadyExists"),
                        "this applicationSessionId was already used by another application or with other allowed origins",
                    );
                }
                Some(_) => {}
                None => {
                    sessions.insert(
                        session.clone(),
                        (app.application_id.clone(), origins.clone()),
                        exp,
                        now,
                    );
                }
            }
        }
        let claims = PsatClaims {
            nbf: now,
            exp,
            asi: session,
            aeu: endpoint.sip.clone(),
            ao: origins,
            app: app.application_id.clone(),
        };
        let Ok(jwt) = keys().and_then(|k| k.sign(&claims)) else {
            return self.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailure",
                None,
                "the emulator could not sign the token",
            );
        };
        Stats::bump(&self.stats.psat_tokens_minted);
        let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(exp).unwrap_or(i64::MAX))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let expiry = ExpiryTime::with_format(
            at,
            match self.config.quirks.expiry {
                ExpiryStyle::Rfc3339 => ExpiryFormat::Rfc3339,
                ExpiryStyle::MicrosoftJson => ExpiryFormat::MicrosoftJson,
            },
        );
        let ps = self.ps();
        let raw = self.endpoint_in_href(&endpoint.sip, false);
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!(
                    "{}://[::1]:{}/{ps}/v1/applications/{}/anonApplicationTokens?endpointId={raw}",
                    self.scheme(),
                    self.port,
                    app.application_id
                )),
            )
            .with_link(
                self.rel(names::DISCOVER),
                Link::new(format!(
                    "{}://{}/{ps}/discover?anonymousContext=psat%253d{jwt}",
                    self.scheme(),
                    self.discovery_host()
                )),
            )
            .with_rel(self.rel(names::ANON_APPLICATION_TOKEN));
        let answer = AnonApplicationToken {
            token: PsatToken::new(format!("psat={jwt}")),
            expiry_time: expiry,
            resource,
        };
        self.body(StatusCode::OK, &answer)
    }
}

/// Checks a `;`-separated list of web origins.
fn check_origins(origins: &str) -> Result<(), String> {
    if origins.trim().is_empty() {
        return Err("allowedOrigins must list at least one origin".to_owned());
    }
    for origin in origins.split(';') {
        let fail = |why: &str| Err(format!("allowedOrigins: {origin:?} {why}"));
        let Some((scheme, authority)) = origin.split_once("://") else {
            return fail("is not scheme://host[:port]");
        };
        if scheme != "https" && scheme != "http" {
            return fail("must be http or https");
        }
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| matches!(c, '/' | '?' | '#' | '@' | '*' | ' ' | '\\'))
        {
            return fail("must be scheme://host[:port] with no path, query, user info or wildcard");
        }
        if url::Url::parse(origin).is_err() {
            return fail("has an invalid host or port");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- AAD

/// Both token endpoints: the version is read from the path.
async fn aad_token(
    AxState(state): AxState<Shared>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = state.endpoint_url(&uri, &headers);
    let v2 = uri.path().ends_with("/oauth2/v2.0/token");
    tagged(
        Route::AadToken,
        state.aad(&tenant, &endpoint, &headers, &body, v2),
    )
}

impl State {
    fn aad_error(&self, status: StatusCode, error: &str, code: u64, message: &str) -> Response {
        let correlation = self.next_correlation();
        let trace = self.next_correlation();
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.body(
            status,
            &json!({
                "error": error,
                "error_description": format!(
                    "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
                ),
                "error_codes": [code],
                "timestamp": timestamp,
                "trace_id": trace,
                "correlation_id": correlation,
            }),
        )
    }

    /// Checks a client assertion; the error is the answer to send.
    fn check_assertion(
        &self,
        app: &AppConfig,
        assertion: &str,
        assertion_type: Option<&str>,
        endpoint: &str,
    ) -> Result<(), Response> {
        if assertion_type != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return Err(self.aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type' (urn:ietf:params:oauth:client-assertion-type:jwt-bearer).",
            ));
        }
        let Some(certificate) = app.certificate_pem.as_deref() else {
            return Err(self.aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: the application has no registered certificate.",
            ));
        };
        let now = self.now_u64();
        let (jti, expires) =
            crate::tokens::verify_assertion(assertion, certificate, &app.client_id, endpoint, now)
                .map_err(|(code, message)| {
                    self.aad_error(StatusCode::UNAUTHORIZED, "invalid_client", code, &message)
                })?;
        let fresh = self
            .assertion_ids
            .lock()
            .map(|mut seen| {
                let fresh = seen.get(&jti, now).is_none();
                if fresh {
                    seen.insert(jti, (), expires, now);
                }
                fresh
            })
            .unwrap_or(false);
        if !fresh {
            return Err(self.aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700025,
                "The client assertion was already used (its jti is replayed).",
            ));
        }
        Ok(())
    }

    /// The URL a request was sent to, without its query (a client
    /// assertion's `aud`).
    fn endpoint_url(&self, uri: &Uri, headers: &HeaderMap) -> String {
        format!(
            "{}://{}{}",
            self.scheme(),
            host_of(uri, headers).unwrap_or_default(),
            uri.path()
        )
    }

    fn aad(
        &self,
        tenant: &str,
        endpoint: &str,
        headers: &HeaderMap,
        body: &[u8],
        v2: bool,
    ) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        if !tenant.eq_ignore_ascii_case(&self.config.tenant)
            && !tenant.eq_ignore_ascii_case(&self.config.tenant_id)
        {
            return self.aad_error(
                bad,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found."),
            );
        }
        let form_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return self.aad_error(
                bad,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let param = |name: &str| form.get(name).map(String::as_str);
        match param("grant_type") {
            None => {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                );
            }
            Some("client_credentials") => {}
            Some(other) => {
                return self.aad_error(
                    bad,
                    "unsupported_grant_type",
                    70003,
                    &format!("The app requested an unsupported grant type '{other}'."),
                );
            }
        }
        let Some(client_id) = param("client_id") else {
            return self.aad_error(
                bad,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(app) = self.app_by_client(client_id) else {
            return self.aad_error(
                bad,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'.",
                    self.config.tenant
                ),
            );
        };
        let audience = self.audience();
        let resource = if v2 {
            let Some(scope) = param("scope") else {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'scope'.",
                );
            };
            scope.strip_suffix("/.default").unwrap_or(scope).to_owned()
        } else {
            let Some(resource) = param("resource") else {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'resource'.",
                );
            };
            resource.to_owned()
        };
        if resource.trim_end_matches('/') != audience {
            return self.aad_error(
                bad,
                "invalid_resource",
                500011,
                &format!(
                    "The resource principal named {resource} was not found in the tenant named {}.",
                    self.config.tenant
                ),
            );
        }
        match (param("client_secret"), param("client_assertion")) {
            (Some(secret), _) => {
                if app.client_secret.as_deref() != Some(secret) {
                    return self.aad_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    );
                }
            }
            (None, Some(assertion)) => {
                if let Err(response) =
                    self.check_assertion(app, assertion, param("client_assertion_type"), endpoint)
                {
                    return response;
                }
            }
            (None, None) => {
                return self.aad_error(
                    bad,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                );
            }
        }
        let now = self.now_u64();
        let lifetime = self.config.aad_token_lifetime_secs;
        let claims = AccessClaims {
            aud: audience.clone(),
            iss: format!("https://sts.windows.net/{}/", self.config.tenant_id),
            tid: self.config.tenant_id.clone(),
            appid: app.client_id.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(lifetime),
            jti: self.next_correlation(),
            seq: self.token_seq.fetch_add(1, Ordering::Relaxed) + 1,
        };
        let Ok(token) = keys().and_then(|k| k.sign(&claims)) else {
            return self.aad_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                50000,
                "The emulator could not sign the token.",
            );
        };
        Stats::bump(&self.stats.aad_tokens_issued);
        if v2 {
            self.body(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": token,
                }),
            )
        } else {
            self.body(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime.to_string(),
                    "ext_expires_in": lifetime.to_string(),
                    "expires_on": now.saturating_add(lifetime).to_string(),
                    "not_before": now.to_string(),
                    "resource": audience,
                    "access_token": token,
                }),
            )
        }
    }
}

// ---------------------------------------------------------------- faults

/// Closes the connection a request came on (set per connection).
#[derive(Clone)]
pub(crate) struct ConnectionKill(pub(crate) Arc<tokio::sync::Notify>);

fn classify(method: &Method, matched: Option<&str>, query: Option<&str>) -> Route {
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
        _ => Route::NotFound,
    }
}

/// Applies the faults that fire for this request.
async fn inject_faults(AxState(state): AxState<Shared>, request: Request, next: Next) -> Response {
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
                let code = if status == StatusCode::TOO_MANY_REQUESTS {
                    "TooManyRequests"
                } else {
                    "ServiceFailure"
                };
                let mut response = state.error(status, code, None, "injected fault");
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
                    kill.0.notify_one();
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
    async fn alter(&self, response: Response, fault: &FaultKind) -> Response {
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
fn remove_links(value: &mut serde_json::Value, local: &str) {
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
struct HalfThenBreak {
    first: Option<Bytes>,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl HalfThenBreak {
    fn new(first: Bytes) -> Self {
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
