//! The state machines of the API's call flow: the driving interface
//! ([`Flow`], [`Output`], [`Driveable`]) here; the outcomes, the engine
//! (requests, redirects, retries, the 401) and the steps' answers in
//! their own rooms.

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

mod engine;
mod outcomes;
mod steps;

use engine::{AfterCapabilities, AfterDiscovery, Engine, Exchange, Polled, Stage};
pub use outcomes::{
    AnonymousDiscovery, Bootstrapped, Capabilities, ChatAnswer, Discovery, MintRequest, WidgetToken,
};
use outcomes::{Goal, Outcome, not_consented};
use steps::rel_of;

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

impl Flow<ChatAnswer> {
    /// One of the SA's chat requests, sent with the AAD token (one is asked
    /// for first when `token` is `None`; a 401 is answered once with a new
    /// one), to hosts in `trusted` only (the platform's, as discovery
    /// learned them: the token never follows a callback's `baseuri`
    /// elsewhere). A call that starts or sends something is not repeated
    /// once it may have reached the server.
    pub fn chat_call(
        config: Arc<Config>,
        trusted: Arc<TrustedHosts>,
        call: crate::chat::ChatCall,
        token: Option<AccessToken>,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        let (kind, url, body, content_type) = call.into_parts();
        let mut flow = Self::start(config, entropy, token, Stage::Call);
        flow.engine.trusted = trusted;
        flow.engine.ex = Exchange::new(Step::Chat(kind), Method::POST, url, body);
        flow.engine.ex.content_type = content_type;
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
