//! The state machines of the call flow.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ExpiryTime, HrefError,
    Namespace, PsatToken, names,
};
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, LOCATION};
use http::{Method, StatusCode};
use serde::Serialize;
use url::Url;

use crate::aad::{AssertionNeed, SignerError, TokenError};
use crate::challenge::{self, Challenge};
use crate::config::{AllowedOrigins, ApplicationSessionId, Audience, Config, Origin, TrustedHosts};
use crate::entropy::Entropy;
use crate::error::{
    ApiError, AuthError, AuthErrorKind, Correlation, DisplayUrl, Error, ServerError,
    ServerErrorKind, Step, UntrustedError, UntrustedReason, UsageError,
};
use crate::request::{BuildError, Outgoing, with_endpoint_id};
use crate::retry::{RetryDecision, is_retryable_status, retry_after_delay};
use crate::secret::{AccessToken, ClientAssertion, redact};
use crate::transport::TransportError;

/// Identifies an outstanding request of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

impl RequestId {
    pub(crate) fn new(n: u64) -> Self {
        Self(n)
    }

    /// The number (unique within one flow).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A request the driver must send with its [`Transport`](crate::Transport).
pub struct Transmit {
    id: RequestId,
    step: Step,
    request: http::Request<Bytes>,
}

impl Transmit {
    pub(crate) fn new(id: RequestId, step: Step, request: http::Request<Bytes>) -> Self {
        Self { id, step, request }
    }

    /// The id to hand back with the answer.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The step this request belongs to.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The request.
    pub fn request(&self) -> &http::Request<Bytes> {
        &self.request
    }

    /// The id and the request, to send it.
    pub fn into_parts(self) -> (RequestId, http::Request<Bytes>) {
        (self.id, self.request)
    }
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URI may carry a psat token and the headers an AAD token.
        f.debug_struct("Transmit")
            .field("id", &self.id.0)
            .field("step", &self.step)
            .field("method", self.request.method())
            .field("uri", &redact(&self.request.uri().to_string()))
            .finish_non_exhaustive()
    }
}

/// The flow needs an AAD token for `audience`.
///
/// If `rejected` is set, the API refused that token: drop it from any cache
/// and fetch a new one. Answer with [`Flow::handle_token`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenNeed {
    /// The step that needs it.
    pub step: Step,
    /// The token's audience (AAD `resource`; v2 scope `<audience>/.default`).
    pub audience: Audience,
    /// The API's Bearer challenge, if the need comes from a 401.
    pub challenge: Option<Challenge>,
    /// The token the API just refused, if any.
    pub rejected: Option<AccessToken>,
}

/// What a flow asks its driver to do next: the output of every
/// [`Driveable`] state machine, the API's [`Flow`]s (whose error is
/// [`Error`]) and the AAD [`TokenFlow`](crate::aad::TokenFlow) (whose error
/// is [`TokenError`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Output<T, E = Error> {
    /// Send this request; hand the answer to [`Flow::handle_response`] or the
    /// failure to [`Flow::handle_transport_error`].
    Transmit(Transmit),
    /// Get an AAD token; hand it to [`Flow::handle_token`]. (API flows only.)
    NeedToken(TokenNeed),
    /// Sign a client assertion; hand it to
    /// [`TokenFlow::handle_assertion`](crate::aad::TokenFlow::handle_assertion).
    /// (The AAD token flow with a certificate only.)
    NeedAssertion(AssertionNeed),
    /// Nothing to do before this instant (a retry backoff): poll again then.
    Timeout(Instant),
    /// The flow is over. Polling again returns `None`.
    Done(Result<T, E>),
}

/// The outcome of discovery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discovery {
    /// The URL the discovery answer came from (after redirects).
    pub url: Url,
    /// The discovery answer.
    pub resource: Discover,
    /// The applications URL (absolute, resolved).
    pub applications_url: Url,
    /// The namespace the deployment writes its rels in.
    pub namespace: Option<Namespace>,
    /// The hosts the AAD token may go to from now on: the configured ones,
    /// plus the hosts of the absolute links of this answer when it came from
    /// a trusted host.
    pub trusted_hosts: Arc<TrustedHosts>,
}

/// The outcome of the applications and application requests: what the
/// tenant consented to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Capabilities {
    /// The discovery this was found from.
    pub discovery: Discovery,
    /// The application resource's URL.
    pub application_url: Url,
    /// The application resource.
    pub application: Application,
    /// The resolved `anonApplicationTokens` URL, if consented.
    pub anon_application_tokens: Option<Url>,
}

impl Capabilities {
    /// The `anonApplicationTokens` URL, or, when the tenant has not
    /// consented (the application lists no such link), the error a mint
    /// gives: `Server(MissingLink { rel: "anonApplicationTokens" })` at the
    /// application step.
    pub fn anonymous_tokens_url(&self) -> Result<&Url, Error> {
        self.anon_application_tokens
            .as_ref()
            .ok_or_else(|| not_consented(&self.application_url))
    }
}

/// The failure of a mint the tenant has not consented to: the application
/// at `application_url` lists no `anonApplicationTokens` link.
fn not_consented(application_url: &Url) -> Error {
    Error::Server(Box::new(ServerError {
        step: Step::Application,
        url: DisplayUrl::new(application_url),
        status: None,
        kind: ServerErrorKind::MissingLink {
            rel: names::ANON_APPLICATION_TOKENS,
        },
        correlation: Correlation::default(),
    }))
}

/// What to mint a widget token for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MintRequest {
    /// The widget session's unique id (reused only by retries of this mint).
    pub session_id: ApplicationSessionId,
    /// The origins the widget may call the API from.
    pub allowed_origins: AllowedOrigins,
}

/// The JSON body of the mint.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MintBody<'a> {
    application_session_id: &'a str,
    allowed_origins: &'a str,
}

impl MintRequest {
    /// A mint of a token for `session_id` (unique per widget session)
    /// usable from `allowed_origins`.
    pub fn new(session_id: ApplicationSessionId, allowed_origins: AllowedOrigins) -> Self {
        Self {
            session_id,
            allowed_origins,
        }
    }

    /// The request body, written as the API's example writes it.
    pub fn body(&self) -> Bytes {
        let body = MintBody {
            application_session_id: self.session_id.as_str(),
            allowed_origins: &self.allowed_origins.joined(),
        };
        let mut out = Vec::with_capacity(128);
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Two string members cannot fail to serialize.
        let _ = body.serialize(&mut serializer);
        Bytes::from(out)
    }
}

/// A minted widget token: what the SA hands to the chat widget.
///
/// Its `Debug` hides the token and the discover link's query (which carries
/// the token). Made by the mint's flow only.
#[derive(Clone)]
#[non_exhaustive]
pub struct WidgetToken {
    /// The `psat=…` token.
    pub token: PsatToken,
    /// When it expires, as the API wrote it.
    pub expiry: ExpiryTime,
    /// The anonymous discover link the widget goes to first (absolute https;
    /// it carries the token, so treat it as a secret too).
    pub discover_url: Url,
    /// The token resource's `self` link, if it had a usable one.
    pub self_url: Option<Url>,
    /// The session id the token was minted for.
    pub session_id: ApplicationSessionId,
    /// The origins it was minted for.
    pub allowed_origins: AllowedOrigins,
    /// The whole answer.
    pub resource: AnonApplicationToken,
}

impl fmt::Debug for WidgetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WidgetToken")
            .field("token", &self.token)
            .field("expiry", &self.expiry)
            .field("discover_url", &DisplayUrl::new(&self.discover_url))
            .field("self_url", &self.self_url.as_ref().map(DisplayUrl::new))
            .field("session_id", &self.session_id)
            .field("allowed_origins", &self.allowed_origins)
            .finish_non_exhaustive()
    }
}

impl WidgetToken {
    /// When it expires, as a [`SystemTime`](std::time::SystemTime).
    pub fn expires_at(&self) -> std::time::SystemTime {
        self.expiry.system_time()
    }
}

/// The outcome of a whole bootstrap: capabilities (to cache) and the token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Bootstrapped {
    /// Discovery and capabilities, reusable for later mints.
    pub capabilities: Capabilities,
    /// The widget token.
    pub token: WidgetToken,
}

/// The outcome of the chat client's anonymous discovery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AnonymousDiscovery {
    /// The UCWA anonymous applications URL (resolved).
    pub anon_applications: Url,
    /// The answer.
    pub resource: AnonDiscover,
    /// The `Access-Control-Allow-Origin` the API answered, if any.
    pub allow_origin: Option<String>,
    /// The origin the request was sent from.
    pub origin: Origin,
}

impl AnonymousDiscovery {
    /// Whether a browser on `origin` would be allowed to read the answer.
    pub fn cors_allows_origin(&self) -> bool {
        self.allow_origin.as_deref() == Some(self.origin.as_str())
    }
}

mod private {
    use super::{AnonymousDiscovery, Bootstrapped, Capabilities, Discovery, WidgetToken};

    /// What a flow ended with, before it is handed out as its typed
    /// outcome.
    // One per flow, moved a few times per flow: boxing would cost more than
    // the copies it saves.
    #[derive(Debug)]
    #[allow(clippy::large_enum_variant)]
    pub enum Outcome {
        Discovery(Discovery),
        Capabilities(Capabilities),
        Token(WidgetToken),
        Bootstrapped(Bootstrapped),
        Anonymous(AnonymousDiscovery),
    }

    /// The outcomes a flow can have.
    pub trait Goal: Sized {
        /// The typed outcome, if `outcome` is of this kind.
        fn take(outcome: Outcome) -> Option<Self>;
    }

    impl Goal for Discovery {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Discovery(d) => Some(d),
                _ => None,
            }
        }
    }

    impl Goal for Capabilities {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Capabilities(c) => Some(c),
                _ => None,
            }
        }
    }

    impl Goal for WidgetToken {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Token(t) => Some(t),
                _ => None,
            }
        }
    }

    impl Goal for Bootstrapped {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Bootstrapped(b) => Some(b),
                _ => None,
            }
        }
    }

    impl Goal for AnonymousDiscovery {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Anonymous(a) => Some(a),
                _ => None,
            }
        }
    }
}

use private::{Goal, Outcome};

/// One step of the call flow as a sans-IO state machine, or several in a row.
///
/// A flow builds `http::Request`s and consumes `http::Response`s; it owns no
/// socket, no clock and no randomness. Time (`now`) is passed to every call;
/// request ids and jitter come from the [`Entropy`] it was given; tokens
/// come from the driver when it asks.
///
/// # The drive loop
///
/// 1. Call [`poll_output`](Self::poll_output) with the current time.
/// 2. On [`Output::Transmit`], send the request with your transport and hand
///    the answer to [`handle_response`](Self::handle_response), or the
///    failure to [`handle_transport_error`](Self::handle_transport_error).
/// 3. On [`Output::NeedToken`], get an AAD token for the audience (dropping
///    `rejected` from your cache first) and hand it, or the failure, to
///    [`handle_token`](Self::handle_token).
/// 4. On [`Output::Timeout`], wait until that instant.
/// 5. On [`Output::Done`], stop: that is the result.
///
/// A flow has at most one request or token need outstanding, so a
/// sequential loop is enough:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use bytes::Bytes;
/// use ta_protocol::*;
///
/// // Any transport: here a function that plays the server.
/// struct Fake;
/// #[async_trait::async_trait]
/// impl Transport for Fake {
///     async fn send(&self, req: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
///         let body = match req.uri().path() {
///             "/platformservice/discover" => r#"{"_links":{"service:applications":{"href":"https://api.example/platformservice/v1/applications"}}}"#,
///             _ => return Ok(http::Response::builder().status(404).body(Bytes::new()).unwrap()),
///         };
///         Ok(http::Response::new(Bytes::from(body)))
///     }
/// }
///
/// async fn drive<T>(mut flow: Flow<T>, transport: &impl Transport) -> Result<T, Error>
/// where
///     Flow<T>: Driveable<T>,
/// {
///     loop {
///         match flow.poll_output(Instant::now()) {
///             Some(Output::Transmit(transmit)) => {
///                 let (id, request) = transmit.into_parts();
///                 match transport.send(request).await {
///                     Ok(response) => flow.handle_response(id, response, Instant::now())?,
///                     Err(error) => flow.handle_transport_error(id, error, Instant::now())?,
///                 }
///             }
///             Some(Output::NeedToken(need)) => {
///                 // Ask your token source for `need.audience`.
///                 let token: Result<AccessToken, aad::TokenError> = Ok(AccessToken::new("t"));
///                 flow.handle_token(token, Instant::now())?;
///             }
///             Some(Output::Timeout(_at)) => { /* sleep until `_at` with your runtime */ }
///             Some(Output::Done(result)) => return result,
///             Some(_) | None => return Err(UsageError::Waiting("an answer").into()),
///         }
///     }
/// }
///
/// let config = Config::builder("https://api.example/platformservice/discover", "sip:helpdesk@contoso.com")
///     .build()?
///     .into_shared();
/// let flow = Flow::discovery(config, Box::new(SeededEntropy::new(7)));
/// let discovery = futures_executor::block_on(drive(flow, &Fake))?;
/// assert_eq!(discovery.applications_url.as_str(), "https://api.example/platformservice/v1/applications");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Flow<T> {
    engine: Engine,
    _goal: PhantomData<fn() -> T>,
}

/// The state machines that can be driven: every `Flow<T>` this crate
/// constructs, and the AAD [`TokenFlow`](crate::aad::TokenFlow). Lets a
/// driver be written once for all of them. An input a machine never asks
/// for (a token handed to the AAD flow, an assertion to an API flow) is a
/// [`UsageError`].
pub trait Driveable<T, E = Error> {
    /// See [`Flow::poll_output`].
    fn poll_output(&mut self, now: Instant) -> Option<Output<T, E>>;
    /// See [`Flow::handle_response`].
    fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError>;
    /// See [`Flow::handle_transport_error`].
    fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError>;
    /// See [`Flow::handle_token`].
    fn handle_token(
        &mut self,
        token: Result<AccessToken, TokenError>,
        now: Instant,
    ) -> Result<(), UsageError>;
    /// See [`TokenFlow::handle_assertion`](crate::aad::TokenFlow::handle_assertion).
    fn handle_assertion(
        &mut self,
        assertion: Result<ClientAssertion, SignerError>,
        now: Instant,
    ) -> Result<(), UsageError>;
}

impl<T> fmt::Debug for Flow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("step", &self.engine.ex.step)
            .field("stage", &self.engine.stage.name())
            .field("phase", &self.engine.ex.phase)
            .finish_non_exhaustive()
    }
}

impl Flow<Discovery> {
    /// Discovery alone: `GET <discover URL>`, without a token (a 401 there is
    /// answered once with a token).
    pub fn discovery(config: Arc<Config>, entropy: Box<dyn Entropy>) -> Self {
        Self::start(
            config,
            entropy,
            None,
            Stage::Discovery(AfterDiscovery::Stop),
        )
    }
}

impl Flow<Capabilities> {
    /// From a discovery: applications (with `endpointId`) then application.
    /// A `token` (from a cache) is sent at once; without one, the first
    /// request draws the 401 challenge.
    pub fn capabilities(
        config: Arc<Config>,
        discovery: Discovery,
        token: Option<AccessToken>,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        let mut flow = Self::start(config, entropy, token, Stage::Over);
        flow.engine
            .begin_applications(discovery, AfterCapabilities::Stop);
        flow
    }
}

impl Flow<WidgetToken> {
    /// From known capabilities: the mint alone (one request on the warm
    /// path). Without a `token`, one is asked for before the request.
    pub fn mint(
        config: Arc<Config>,
        capabilities: &Capabilities,
        request: MintRequest,
        token: Option<AccessToken>,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        let mut flow = Self::start(config, entropy, token, Stage::Over);
        flow.engine.begin_mint(
            request,
            capabilities.anon_application_tokens.clone(),
            &capabilities.application_url,
            Arc::clone(&capabilities.discovery.trusted_hosts),
            None,
        );
        flow
    }
}

impl Flow<Bootstrapped> {
    /// The whole SA flow: discovery, applications, application, mint.
    pub fn bootstrap(
        config: Arc<Config>,
        request: MintRequest,
        token: Option<AccessToken>,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        let then = AfterDiscovery::Capabilities(AfterCapabilities::Mint(request));
        Self::start(config, entropy, token, Stage::Discovery(then))
    }
}

impl Flow<AnonymousDiscovery> {
    /// The chat client's step: `GET <anonymous discover link>` with an
    /// `Origin` header, no AAD token.
    pub fn anonymous_discovery(
        config: Arc<Config>,
        discover_url: Url,
        origin: Origin,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        let mut flow = Self::start(config, entropy, None, Stage::AnonymousDiscovery { origin });
        flow.engine.ex = Exchange::new(Step::AnonymousDiscovery, Method::GET, discover_url, None);
        flow
    }
}

impl<T> Flow<T> {
    /// A flow at `stage`, its first exchange the discovery (the
    /// constructors that start elsewhere replace it).
    fn start(
        config: Arc<Config>,
        entropy: Box<dyn Entropy>,
        token: Option<AccessToken>,
        stage: Stage,
    ) -> Self {
        let trusted = Arc::new(config.trusted_hosts().clone());
        let discover_url = config.discover_url().clone();
        Self {
            engine: Engine {
                ex: Exchange::new(Step::Discovery, Method::GET, discover_url, None),
                config,
                entropy,
                token,
                trusted,
                stage,
                next_id: 0,
            },
            _goal: PhantomData,
        }
    }

    /// The step in progress (or the last one, once finished).
    pub fn step(&self) -> Step {
        self.engine.ex.step
    }

    /// Whether the flow has finished (its result may still be waiting to be
    /// polled).
    pub fn is_finished(&self) -> bool {
        self.engine.is_finished()
    }

    /// The AAD token the flow holds now (given at the start or by
    /// [`handle_token`](Self::handle_token)), if any.
    pub fn token(&self) -> Option<&AccessToken> {
        self.engine.token.as_ref()
    }

    /// Hands in the answer to the request `id`.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.engine.handle_response(id, response, now)
    }

    /// Hands in the transport's failure to send the request `id`.
    pub fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.engine.handle_transport_error(id, error, now)
    }

    /// Hands in the token asked for by [`Output::NeedToken`], or why there is
    /// none (which ends the flow), at `now`.
    pub fn handle_token(
        &mut self,
        token: Result<AccessToken, TokenError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        let _ = now;
        self.engine.handle_token(token)
    }
}

impl<T: Goal> Flow<T> {
    /// What to do next; `None` while a request or a token is outstanding,
    /// and after [`Output::Done`] was returned.
    pub fn poll_output(&mut self, now: Instant) -> Option<Output<T>> {
        match self.engine.poll(now)? {
            Polled::Transmit(t) => Some(Output::Transmit(t)),
            Polled::NeedToken(n) => Some(Output::NeedToken(n)),
            Polled::Timeout(at) => Some(Output::Timeout(at)),
            Polled::Done(Err(e)) => Some(Output::Done(Err(e))),
            Polled::Done(Ok(outcome)) => Some(Output::Done(T::take(outcome).ok_or(
                Error::Internal("the flow ended with an outcome of another kind"),
            ))),
        }
    }
}

impl<T: Goal> Driveable<T> for Flow<T> {
    fn poll_output(&mut self, now: Instant) -> Option<Output<T>> {
        Self::poll_output(self, now)
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_response(self, id, response, now)
    }

    fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_transport_error(self, id, error, now)
    }

    fn handle_token(
        &mut self,
        token: Result<AccessToken, TokenError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_token(self, token, now)
    }

    fn handle_assertion(
        &mut self,
        assertion: Result<ClientAssertion, SignerError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        let _ = (assertion, now);
        Err(if self.engine.is_finished() {
            UsageError::Finished
        } else {
            UsageError::UnexpectedAssertion
        })
    }
}

/// What a flow does once discovery is done.
#[derive(Debug)]
enum AfterDiscovery {
    /// Stop: the discovery is the outcome.
    Stop,
    /// Go on to the capabilities.
    Capabilities(AfterCapabilities),
}

/// What a flow does once the capabilities are read.
#[derive(Debug)]
enum AfterCapabilities {
    /// Stop: the capabilities are the outcome.
    Stop,
    /// Mint this request.
    Mint(MintRequest),
}

/// Where a flow is, carrying what it has learned so far and what it will
/// do next. The current request's own progress (sent, backing off, waiting
/// for a token) is the [`Exchange`]'s.
// One per flow, moved a few times per flow: boxing would cost more than the
// copies it saves.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Discovery.
    Discovery(AfterDiscovery),
    /// The applications request, after `discovery`.
    Applications {
        discovery: Discovery,
        then: AfterCapabilities,
    },
    /// The application request (the capabilities), after `discovery`.
    Application {
        discovery: Discovery,
        then: AfterCapabilities,
    },
    /// The mint of `request`; `capabilities` are kept when they are part of
    /// the outcome (a bootstrap).
    Mint {
        request: MintRequest,
        capabilities: Option<Capabilities>,
    },
    /// The widget's anonymous discovery, with `origin`.
    AnonymousDiscovery { origin: Origin },
    /// The flow's result, to be polled.
    Finished(Result<Outcome, Error>),
    /// The result was handed out (or the flow is being set up).
    Over,
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Self::Discovery(_) => Step::Discovery.label(),
            Self::Applications { .. } => Step::Applications.label(),
            Self::Application { .. } => Step::Application.label(),
            Self::Mint { .. } => Step::Mint.label(),
            Self::AnonymousDiscovery { .. } => Step::AnonymousDiscovery.label(),
            Self::Finished(_) => "finished",
            Self::Over => "over",
        }
    }
}

// One per flow, moved a few times per flow: boxing would cost more than the
// copies it saves.
#[allow(clippy::large_enum_variant)]
enum Polled {
    Transmit(Transmit),
    NeedToken(TokenNeed),
    Timeout(Instant),
    Done(Result<Outcome, Error>),
}

#[derive(Debug)]
enum Phase {
    /// Ready to send.
    Ready,
    /// Sent; waiting for the answer.
    InFlight(RequestId),
    /// A token need to hand out.
    NeedToken(TokenNeed),
    /// Waiting for the token.
    AwaitingToken,
    /// Backing off until then.
    Sleeping(Instant),
}

/// One logical request: its redirects, retries and token retry.
#[derive(Debug)]
struct Exchange {
    step: Step,
    method: Method,
    url: Url,
    body: Option<Bytes>,
    failures: u32,
    redirects: u8,
    started: Option<Instant>,
    token_retry_used: bool,
    sent_with_token: bool,
    phase: Phase,
}

impl Exchange {
    fn new(step: Step, method: Method, url: Url, body: Option<Bytes>) -> Self {
        Self {
            step,
            method,
            url,
            body,
            failures: 0,
            redirects: 0,
            started: None,
            token_retry_used: false,
            sent_with_token: false,
            phase: Phase::Ready,
        }
    }
}

struct Engine {
    config: Arc<Config>,
    entropy: Box<dyn Entropy>,
    token: Option<AccessToken>,
    trusted: Arc<TrustedHosts>,
    /// The current request.
    ex: Exchange,
    /// Where the flow is and what it learned.
    stage: Stage,
    next_id: u64,
}

impl Engine {
    fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Finished(_) | Stage::Over)
    }

    fn finish(&mut self, outcome: Outcome) {
        self.stage = Stage::Finished(Ok(outcome));
    }

    fn fail(&mut self, error: Error) {
        self.stage = Stage::Finished(Err(error));
    }

    fn poll(&mut self, now: Instant) -> Option<Polled> {
        match &self.stage {
            Stage::Finished(_) => {
                let Stage::Finished(result) = std::mem::replace(&mut self.stage, Stage::Over)
                else {
                    return None;
                };
                return Some(Polled::Done(result));
            }
            Stage::Over => return None,
            _ => {}
        }
        match &self.ex.phase {
            Phase::Ready => Some(self.transmit(now)),
            Phase::Sleeping(until) if now < *until => Some(Polled::Timeout(*until)),
            Phase::Sleeping(_) => Some(self.transmit(now)),
            Phase::NeedToken(_) => {
                match std::mem::replace(&mut self.ex.phase, Phase::AwaitingToken) {
                    Phase::NeedToken(need) => Some(Polled::NeedToken(need)),
                    _ => None,
                }
            }
            Phase::InFlight(_) | Phase::AwaitingToken => None,
        }
    }

    fn token_need(&self, challenge: Option<Challenge>, rejected: Option<AccessToken>) -> TokenNeed {
        TokenNeed {
            step: self.ex.step,
            audience: self.config.audience().clone(),
            challenge,
            rejected,
        }
    }

    fn untrusted(&self, url: &Url, reason: UntrustedReason) -> Error {
        Error::Untrusted(Box::new(UntrustedError {
            step: self.ex.step,
            url: DisplayUrl::new(url),
            reason,
        }))
    }

    fn transmit(&mut self, now: Instant) -> Polled {
        let step = self.ex.step;
        // Whether this request carries the token.
        let with_token = if self.ex.sent_with_token || self.ex.token_retry_used {
            self.token.is_some()
        } else if step.is_authenticated() {
            match (&self.token, step) {
                (Some(_), _) => true,
                // The first authenticated request may go without a token to
                // draw the challenge; later steps know they need one.
                (None, Step::Applications) => false,
                (None, _) => {
                    self.ex.phase = Phase::AwaitingToken;
                    return Polled::NeedToken(self.token_need(None, None));
                }
            }
        } else {
            false
        };
        if !self.config.is_secure_enough(&self.ex.url) {
            let error = self.untrusted(&self.ex.url, UntrustedReason::Insecure);
            return self.failed(error);
        }
        if with_token && !self.trusted.allows(&self.ex.url) {
            let error = self.untrusted(&self.ex.url, UntrustedReason::UntrustedHost);
            return self.failed(error);
        }
        let request_id = self.entropy.client_request_id();
        let built = Outgoing {
            method: &self.ex.method,
            url: &self.ex.url,
            body: self.ex.body.as_ref(),
            request_id: &request_id,
            bearer: if with_token {
                self.token.as_ref()
            } else {
                None
            },
            origin: match &self.stage {
                Stage::AnonymousDiscovery { origin } => Some(origin),
                _ => None,
            },
        }
        .build();
        let request = match built {
            Ok(request) => request,
            Err(BuildError::Token) => {
                let error = Error::Auth(Box::new(AuthError {
                    step,
                    kind: AuthErrorKind::InvalidToken,
                }));
                return self.failed(error);
            }
            Err(BuildError::Uri) => {
                let error = self.server_error(
                    None,
                    Correlation::default(),
                    ServerErrorKind::BadLink {
                        rel: rel_of(step),
                        reason: "the URL is not a valid HTTP request target".to_owned(),
                    },
                );
                return self.failed(error);
            }
        };
        self.ex.sent_with_token = with_token;
        self.ex.started.get_or_insert(now);
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.ex.phase = Phase::InFlight(id);
        Polled::Transmit(Transmit { id, step, request })
    }

    fn failed(&mut self, error: Error) -> Polled {
        self.stage = Stage::Over;
        Polled::Done(Err(error))
    }

    fn check_in_flight(&self, id: RequestId) -> Result<(), UsageError> {
        match self.ex.phase {
            _ if self.is_finished() => Err(UsageError::Finished),
            Phase::InFlight(current) if current == id => Ok(()),
            _ => Err(UsageError::UnknownRequest(id.0)),
        }
    }

    fn handle_token(&mut self, token: Result<AccessToken, TokenError>) -> Result<(), UsageError> {
        if self.is_finished() || !matches!(self.ex.phase, Phase::AwaitingToken) {
            return Err(if self.is_finished() {
                UsageError::Finished
            } else {
                UsageError::UnexpectedToken
            });
        }
        match token {
            Ok(token) => {
                self.token = Some(token);
                self.ex.sent_with_token = true;
                self.ex.phase = Phase::Ready;
            }
            Err(error) => self.fail(Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::TokenUnavailable(error),
            }))),
        }
        Ok(())
    }

    fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        let step = self.ex.step;
        let failure = Error::Transport {
            step,
            source: error.clone(),
        };
        // Every step is safe to repeat: GETs, and the mint with the same
        // applicationSessionId. So whether the request may have been sent
        // does not forbid a retry; the kind of failure decides.
        if !error.kind().is_retryable() {
            self.fail(failure);
            return Ok(());
        }
        self.retry_or_fail(failure, None, now);
        Ok(())
    }

    fn retry_or_fail(
        &mut self,
        failure: Error,
        server_delay: Option<std::time::Duration>,
        now: Instant,
    ) {
        self.ex.failures += 1;
        let started = self.ex.started.unwrap_or(now);
        let elapsed = now.saturating_duration_since(started);
        let jitter = self.entropy.jitter();
        let decision =
            self.config
                .retry_policy()
                .decide(self.ex.failures, elapsed, server_delay, jitter);
        match decision {
            RetryDecision::Wait(wait) => match now.checked_add(wait) {
                Some(until) => self.ex.phase = Phase::Sleeping(until),
                None => self.give_up(failure, elapsed),
            },
            RetryDecision::GiveUp(_) => self.give_up(failure, elapsed),
        }
    }

    fn give_up(&mut self, failure: Error, elapsed: std::time::Duration) {
        let error = if self.ex.failures <= 1 {
            failure
        } else {
            Error::RetriesExhausted {
                step: self.ex.step,
                attempts: self.ex.failures,
                elapsed,
                last: Box::new(failure),
            }
        };
        self.fail(error);
    }

    fn server_error(
        &self,
        status: Option<StatusCode>,
        correlation: Correlation,
        kind: ServerErrorKind,
    ) -> Error {
        Error::Server(Box::new(ServerError {
            step: self.ex.step,
            url: DisplayUrl::new(&self.ex.url),
            status,
            kind,
            correlation,
        }))
    }

    fn api_error(&self, response: &http::Response<Bytes>) -> ApiError {
        // A message may echo what was sent (a token in a URL): mask it here,
        // so that no Debug or Display of the error can show it.
        let body = hal_model::from_slice::<hal_model::ErrorBody>(response.body())
            .ok()
            .map(|mut body| {
                body.message = body.message.map(|m| redact(&m));
                body
            });
        let body_excerpt = match (&body, response.body().is_empty()) {
            (None, false) => {
                let text = String::from_utf8_lossy(response.body());
                Some(redact(&text.chars().take(200).collect::<String>()))
            }
            _ => None,
        };
        ApiError {
            step: self.ex.step,
            method: self.ex.method.clone(),
            url: DisplayUrl::new(&self.ex.url),
            status: response.status(),
            body,
            body_excerpt,
            correlation: Correlation::from_headers(response.headers()),
        }
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        let status = response.status();
        // Read from the headers only where an error will carry it.
        let correlation = || Correlation::from_headers(response.headers());
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            self.redirect(&response, correlation());
        } else if status == StatusCode::UNAUTHORIZED
            && (self.ex.step.is_authenticated() || self.ex.step == Step::Discovery)
        {
            self.unauthorized(&response);
        } else if is_retryable_status(status) {
            let delay = retry_after_delay(response.headers());
            let failure = Error::Rejected(Box::new(self.api_error(&response)));
            self.retry_or_fail(failure, delay, now);
        } else if status.is_success() {
            self.success(&response);
        } else if status.is_client_error() || status.is_server_error() {
            let error = Error::Rejected(Box::new(self.api_error(&response)));
            self.fail(error);
        } else {
            let error = self.server_error(
                Some(status),
                correlation(),
                ServerErrorKind::UnexpectedStatus,
            );
            self.fail(error);
        }
        Ok(())
    }

    fn redirect(&mut self, response: &http::Response<Bytes>, correlation: Correlation) {
        let status = Some(response.status());
        let max = self.config.max_redirects();
        if self.ex.redirects >= max {
            let error = self.server_error(
                status,
                correlation,
                ServerErrorKind::TooManyRedirects { max },
            );
            return self.fail(error);
        }
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| self.ex.url.join(location).ok());
        let Some(target) = target else {
            let error = self.server_error(status, correlation, ServerErrorKind::BadRedirect);
            return self.fail(error);
        };
        if !self.config.is_secure_enough(&target) {
            let error = self.untrusted(&target, UntrustedReason::Insecure);
            return self.fail(error);
        }
        let carries_token = self.ex.step.is_authenticated() || self.ex.sent_with_token;
        if carries_token && !self.trusted.allows(&target) {
            let error = self.untrusted(&target, UntrustedReason::UntrustedRedirect);
            return self.fail(error);
        }
        self.ex.redirects += 1;
        self.ex.url = target;
        self.ex.phase = Phase::Ready;
    }

    fn unauthorized(&mut self, response: &http::Response<Bytes>) {
        // A malformed challenge header is read as no challenge: the token is
        // still worth one try.
        let challenges = challenge::challenges(response.headers()).unwrap_or_default();
        if self.ex.token_retry_used {
            let error = Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::Rejected {
                    answer: Box::new(self.api_error(response)),
                    challenges,
                },
            }));
            return self.fail(error);
        }
        let bearer = challenges.iter().find(|c| c.is_scheme("Bearer")).cloned();
        if bearer.is_none() && !challenges.is_empty() {
            let error = Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::NoBearerChallenge {
                    schemes: challenges.iter().map(|c| c.scheme.clone()).collect(),
                },
            }));
            return self.fail(error);
        }
        self.ex.token_retry_used = true;
        let rejected = if self.ex.sent_with_token {
            self.token.take()
        } else {
            None
        };
        self.ex.phase = Phase::NeedToken(self.token_need(bearer, rejected));
    }

    fn success(&mut self, response: &http::Response<Bytes>) {
        let status = Some(response.status());
        // Each step's handler sets the next stage, or the outcome.
        let result = match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Discovery(then) => self.discovered(response.body(), then),
            Stage::Applications { discovery, then } => {
                self.applications(response.body(), discovery, then)
            }
            Stage::Application { discovery, then } => {
                self.application(response.body(), discovery, then)
            }
            Stage::Mint {
                request,
                capabilities,
            } => self.minted(response.body(), request, capabilities),
            Stage::AnonymousDiscovery { origin } => self.anonymous(response, origin),
            Stage::Finished(_) | Stage::Over => {
                return self.fail(Error::Internal(
                    "an answer was taken after the flow finished",
                ));
            }
        };
        if let Err(kind) = result {
            let correlation = Correlation::from_headers(response.headers());
            let error = self.server_error(status, correlation, kind);
            self.fail(error);
        }
    }

    fn resolve_link(
        &self,
        rel: &'static str,
        link: &hal_model::Link,
    ) -> Result<Url, ServerErrorKind> {
        let url = link.resolve(&self.ex.url).map_err(|e| bad_link(rel, &e))?;
        self.require_secure(rel, url)
    }

    fn require_secure(&self, rel: &'static str, url: Url) -> Result<Url, ServerErrorKind> {
        if self.config.is_secure_enough(&url) {
            Ok(url)
        } else {
            Err(ServerErrorKind::BadLink {
                rel,
                reason: format!("{} is not https", DisplayUrl::new(&url)),
            })
        }
    }

    fn discovered(&mut self, body: &[u8], then: AfterDiscovery) -> Result<(), ServerErrorKind> {
        let resource: Discover = hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let link = resource
            .applications()
            .ok_or(ServerErrorKind::MissingLink {
                rel: names::APPLICATIONS,
            })?;
        let applications_url = self.resolve_link(names::APPLICATIONS, link)?;
        let mut trusted = (*self.trusted).clone();
        // Links of an answer from a trusted host extend the trust; an answer
        // a redirect brought from elsewhere extends nothing.
        if self.trusted.allows(&self.ex.url) {
            for (_, links) in resource.resource().links().iter() {
                for link in links.as_slice() {
                    if let Ok(url) = link.absolute() {
                        trusted.add_url_host(&url);
                    }
                }
            }
        }
        self.trusted = Arc::new(trusted);
        let discovery = Discovery {
            url: self.ex.url.clone(),
            namespace: resource.resource().namespace(),
            resource,
            applications_url,
            trusted_hosts: Arc::clone(&self.trusted),
        };
        match then {
            AfterDiscovery::Stop => self.finish(Outcome::Discovery(discovery)),
            AfterDiscovery::Capabilities(then) => self.begin_applications(discovery, then),
        }
        Ok(())
    }

    fn begin_applications(&mut self, discovery: Discovery, then: AfterCapabilities) {
        self.trusted = Arc::clone(&discovery.trusted_hosts);
        let url = with_endpoint_id(&discovery.applications_url, self.config.endpoint_id());
        self.ex = Exchange::new(Step::Applications, Method::GET, url, None);
        self.stage = Stage::Applications { discovery, then };
    }

    fn applications(
        &mut self,
        body: &[u8],
        discovery: Discovery,
        then: AfterCapabilities,
    ) -> Result<(), ServerErrorKind> {
        let resource: Applications = hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let link = resource.application().ok_or(ServerErrorKind::MissingLink {
            rel: names::APPLICATION,
        })?;
        let url = self.resolve_link(names::APPLICATION, link)?;
        self.ex = self.next_exchange(Step::Application, Method::GET, url, None);
        self.stage = Stage::Application { discovery, then };
        Ok(())
    }

    /// The exchange of the next step, carrying on with the token in hand.
    fn next_exchange(&self, step: Step, method: Method, url: Url, body: Option<Bytes>) -> Exchange {
        let mut ex = Exchange::new(step, method, url, body);
        ex.sent_with_token = self.token.is_some();
        ex
    }

    fn application(
        &mut self,
        body: &[u8],
        discovery: Discovery,
        then: AfterCapabilities,
    ) -> Result<(), ServerErrorKind> {
        let application: Application =
            hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let anon_application_tokens = application
            .anon_application_tokens()
            .map(|link| self.resolve_link(names::ANON_APPLICATION_TOKENS, link))
            .transpose()?;
        let capabilities = Capabilities {
            discovery,
            application_url: self.ex.url.clone(),
            application,
            anon_application_tokens,
        };
        match then {
            AfterCapabilities::Stop => self.finish(Outcome::Capabilities(capabilities)),
            AfterCapabilities::Mint(request) => {
                let anon = capabilities.anon_application_tokens.clone();
                let application_url = capabilities.application_url.clone();
                let trusted = Arc::clone(&capabilities.discovery.trusted_hosts);
                self.begin_mint(request, anon, &application_url, trusted, Some(capabilities));
            }
        }
        Ok(())
    }

    /// Starts the mint of `request`, from the capabilities'
    /// `anonApplicationTokens` URL; `keep` the capabilities when they are
    /// part of the outcome.
    fn begin_mint(
        &mut self,
        request: MintRequest,
        anon_application_tokens: Option<Url>,
        application_url: &Url,
        trusted: Arc<TrustedHosts>,
        keep: Option<Capabilities>,
    ) {
        self.trusted = trusted;
        match anon_application_tokens {
            Some(url) => {
                let body = request.body();
                self.ex = self.next_exchange(Step::Mint, Method::POST, url, Some(body));
                self.stage = Stage::Mint {
                    request,
                    capabilities: keep,
                };
            }
            None => {
                // Not consented (or not listed): nothing is sent.
                self.ex = Exchange::new(
                    Step::Application,
                    Method::GET,
                    application_url.clone(),
                    None,
                );
                self.fail(not_consented(application_url));
            }
        }
    }

    fn minted(
        &mut self,
        body: &[u8],
        request: MintRequest,
        capabilities: Option<Capabilities>,
    ) -> Result<(), ServerErrorKind> {
        let resource: AnonApplicationToken =
            hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        if resource.token.expose().trim().is_empty() {
            return Err(ServerErrorKind::MissingMember { member: "token" });
        }
        let link = resource.discover().ok_or(ServerErrorKind::MissingLink {
            rel: names::DISCOVER,
        })?;
        let discover_url = link.absolute().map_err(|e| bad_link(names::DISCOVER, &e))?;
        let discover_url = self.require_secure(names::DISCOVER, discover_url)?;
        let self_url = resource
            .self_link()
            .and_then(|link| link.resolve(&self.ex.url).ok());
        let token = WidgetToken {
            token: resource.token.clone(),
            expiry: resource.expiry_time.clone(),
            discover_url,
            self_url,
            session_id: request.session_id,
            allowed_origins: request.allowed_origins,
            resource,
        };
        self.finish(match capabilities {
            Some(capabilities) => Outcome::Bootstrapped(Bootstrapped {
                capabilities,
                token,
            }),
            None => Outcome::Token(token),
        });
        Ok(())
    }

    fn anonymous(
        &mut self,
        response: &http::Response<Bytes>,
        origin: Origin,
    ) -> Result<(), ServerErrorKind> {
        let resource: AnonDiscover =
            hal_model::from_slice(response.body()).map_err(ServerErrorKind::Body)?;
        let link = resource
            .anon_applications()
            .ok_or(ServerErrorKind::MissingLink {
                rel: names::ANON_APPLICATIONS,
            })?;
        let anon_applications = self.resolve_link(names::ANON_APPLICATIONS, link)?;
        let allow_origin = response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.finish(Outcome::Anonymous(AnonymousDiscovery {
            anon_applications,
            resource,
            allow_origin,
            origin,
        }));
        Ok(())
    }
}

fn bad_link(rel: &'static str, error: &HrefError) -> ServerErrorKind {
    ServerErrorKind::BadLink {
        rel,
        reason: redact(&error.to_string()),
    }
}

/// The rel whose link a step's URL came from.
fn rel_of(step: Step) -> &'static str {
    match step {
        Step::Discovery => "discover URL",
        Step::Applications => names::APPLICATIONS,
        Step::Application => names::APPLICATION,
        Step::Mint => names::ANON_APPLICATION_TOKENS,
        Step::AnonymousDiscovery => names::DISCOVER,
        Step::AadToken => "token endpoint",
    }
}
