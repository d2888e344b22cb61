//! The orchestrator: drives `ta-protocol`'s flows over a transport, with a
//! shared capabilities cache and a token provider.

use std::fmt;
use std::sync::Arc;

use ta_protocol::aad::{ClientId, TokenEndpoint, TokenError};
use ta_protocol::{
    AllowedOrigins, ApplicationSessionId, Capabilities, Config, Driveable, Error, Flow,
    MintRequest, RetryPolicy, Transport, WidgetToken,
};
use tracing::{Instrument, info, info_span, warn};

use crate::clock::{Clock, SystemClock};
use crate::credentials::Credential;
use crate::ids::{EntropySource, random_entropy};
use crate::observer::{CacheKind, Observer};
use crate::single_flight::{Entry, SingleFlight};
use crate::token::{ClientCredentialsProvider, ClientCredentialsProviderBuilder, TokenProvider};

/// Why a widget token could not be minted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The protocol failed (the server said no, misbehaved, or could not be
    /// reached; or the client refused to send the token somewhere).
    #[error(transparent)]
    Protocol(#[from] Error),
    /// No AAD token could be had.
    #[error("{0}")]
    Token(#[from] TokenError),
}

impl BootstrapError {
    /// The protocol error, if it is one.
    pub fn protocol(&self) -> Option<&Error> {
        match self {
            Self::Protocol(e) => Some(e),
            Self::Token(_) => None,
        }
    }
}

/// How long fetched capabilities are used before they are fetched again
/// (consent can change).
pub const CAPABILITIES_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The cached capabilities: fresh for [`CAPABILITIES_TTL`].
#[derive(Debug, Default)]
struct CapsEntry {
    caps: Option<Arc<Capabilities>>,
    fetched_at: Option<std::time::Instant>,
}

impl Entry for CapsEntry {
    type Value = Arc<Capabilities>;
    type Fetched = Capabilities;
    type Error = BootstrapError;

    fn fresh(&mut self, now: std::time::Instant) -> Option<Arc<Capabilities>> {
        if self
            .fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) >= CAPABILITIES_TTL)
        {
            self.caps = None;
            self.fetched_at = None;
        }
        self.caps.clone()
    }

    fn store(
        &mut self,
        now: std::time::Instant,
        fetched: Result<Capabilities, BootstrapError>,
    ) -> Result<Arc<Capabilities>, BootstrapError> {
        let caps = Arc::new(fetched?);
        self.caps = Some(Arc::clone(&caps));
        self.fetched_at = Some(now);
        Ok(caps)
    }
}

struct Inner {
    config: Arc<Config>,
    transport: Arc<dyn Transport>,
    tokens: Arc<dyn TokenProvider>,
    client_credentials: Option<Arc<ClientCredentialsProvider>>,
    clock: Arc<dyn Clock>,
    entropy: EntropySource,
    caps: SingleFlight<CapsEntry>,
    observer: Option<Arc<dyn Observer>>,
}

/// Mints widget tokens: discovery and capabilities are fetched once and
/// shared (single flight), the AAD token comes from a [`TokenProvider`], and
/// each widget token then costs one request.
///
/// Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct Bootstrapper {
    inner: Arc<Inner>,
}

impl fmt::Debug for Bootstrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrapper")
            .field("discover_url", &self.inner.config.discover_url().as_str())
            .field("endpoint_id", self.inner.config.endpoint_id())
            .finish_non_exhaustive()
    }
}

/// Where a bootstrapper's AAD tokens come from.
enum Tokens {
    /// A provider of the caller's.
    Given(Arc<dyn TokenProvider>),
    /// A client-credentials provider built with the bootstrapper's clock,
    /// entropy and observer.
    ClientCredentials(Box<ClientCredentialsProviderBuilder>),
}

/// Builds a [`Bootstrapper`].
pub struct BootstrapperBuilder {
    config: Arc<Config>,
    transport: Arc<dyn Transport>,
    tokens: Tokens,
    clock: Arc<dyn Clock>,
    entropy: EntropySource,
    observer: Option<Arc<dyn Observer>>,
}

impl fmt::Debug for BootstrapperBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapperBuilder")
            .finish_non_exhaustive()
    }
}

impl BootstrapperBuilder {
    /// Sets the clock (default: the system's). With
    /// [`Bootstrapper::with_client_credentials`], the token provider reads
    /// it too.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how one AAD token fetch is retried (default:
    /// [`RetryPolicy::default`]). Only for a bootstrapper made with
    /// [`Bootstrapper::with_client_credentials`]: a provider of your own
    /// has its own policy, and this one is not used.
    pub fn aad_retry_policy(mut self, policy: RetryPolicy) -> Self {
        if let Tokens::ClientCredentials(builder) = self.tokens {
            self.tokens = Tokens::ClientCredentials(Box::new(builder.retry_policy(policy)));
        }
        self
    }

    /// Sets where session ids, request ids and jitter come from (default:
    /// a [`RandomEntropy`](crate::RandomEntropy) for each flow).
    pub fn entropy(mut self, entropy: EntropySource) -> Self {
        self.entropy = entropy;
        self
    }

    /// Reports upstream requests, capabilities-cache look-ups and mint
    /// times to `observer`.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds it (and, with
    /// [`Bootstrapper::with_client_credentials`], its token provider, on the
    /// same clock, entropy and observer).
    pub fn build(self) -> Bootstrapper {
        let (tokens, client_credentials) = match self.tokens {
            Tokens::Given(tokens) => (tokens, None),
            Tokens::ClientCredentials(builder) => {
                let mut builder = builder
                    .clock(Arc::clone(&self.clock))
                    .entropy(Arc::clone(&self.entropy));
                if let Some(observer) = &self.observer {
                    builder = builder.observer(Arc::clone(observer));
                }
                let provider = Arc::new(builder.build());
                (
                    Arc::clone(&provider) as Arc<dyn TokenProvider>,
                    Some(provider),
                )
            }
        };
        Bootstrapper {
            inner: Arc::new(Inner {
                config: self.config,
                transport: self.transport,
                tokens,
                client_credentials,
                clock: self.clock,
                entropy: self.entropy,
                caps: SingleFlight::default(),
                observer: self.observer,
            }),
        }
    }
}

/// Whether a failure on a cached link means the cache is stale.
fn stale_cache(error: &BootstrapError) -> bool {
    error
        .protocol()
        .and_then(Error::status)
        .is_some_and(|s| matches!(s.as_u16(), 401 | 403 | 404 | 410))
}

impl Bootstrapper {
    /// Starts a bootstrapper for a configuration, a transport and a token
    /// provider.
    pub fn builder(
        config: Arc<Config>,
        transport: Arc<dyn Transport>,
        tokens: Arc<dyn TokenProvider>,
    ) -> BootstrapperBuilder {
        BootstrapperBuilder {
            config,
            transport,
            tokens: Tokens::Given(tokens),
            clock: Arc::new(SystemClock),
            entropy: random_entropy(),
            observer: None,
        }
    }

    /// Starts a bootstrapper that gets its AAD tokens with the client
    /// credentials grant at `endpoint` (a [`ClientCredentialsProvider`]
    /// over the same `transport`): the clock, entropy and observer set on
    /// the builder serve both, set once.
    ///
    /// ```no_run
    /// # fn example(transport: std::sync::Arc<dyn ta_protocol::Transport>) -> Result<(), Box<dyn std::error::Error>> {
    /// use ta_bootstrap::{Bootstrapper, Credential};
    /// use ta_protocol::aad::{ClientId, TokenEndpoint};
    /// use ta_protocol::{ClientSecret, Config};
    ///
    /// let config = Config::builder(ta_protocol::DEFAULT_DISCOVER_URL, "sip:helpdesk@contoso.com")
    ///     .build()?
    ///     .into_shared();
    /// let bootstrapper = Bootstrapper::with_client_credentials(
    ///     config,
    ///     transport,
    ///     TokenEndpoint::for_tenant("contoso.onmicrosoft.com")?,
    ///     ClientId::new("00000000-0000-0000-0000-000000000001")?,
    ///     Credential::Secret(ClientSecret::new("…")),
    /// )
    /// .build();
    /// // The provider, to rotate the credential later.
    /// let provider = bootstrapper.client_credentials();
    /// # let _ = provider;
    /// # Ok(()) }
    /// ```
    pub fn with_client_credentials(
        config: Arc<Config>,
        transport: Arc<dyn Transport>,
        endpoint: TokenEndpoint,
        client_id: ClientId,
        credential: Credential,
    ) -> BootstrapperBuilder {
        let provider = ClientCredentialsProvider::builder(
            Arc::clone(&transport),
            endpoint,
            client_id,
            credential,
        );
        BootstrapperBuilder {
            config,
            transport,
            tokens: Tokens::ClientCredentials(Box::new(provider)),
            clock: Arc::new(SystemClock),
            entropy: random_entropy(),
            observer: None,
        }
    }

    /// The client-credentials provider, when this bootstrapper was made with
    /// [`with_client_credentials`](Self::with_client_credentials) (to
    /// rotate its credential with
    /// [`set_credential`](ClientCredentialsProvider::set_credential)).
    pub fn client_credentials(&self) -> Option<&Arc<ClientCredentialsProvider>> {
        self.inner.client_credentials.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The clock this bootstrapper reads.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The observer, if one was given.
    pub fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.inner.observer.as_ref()
    }

    /// The token provider.
    pub fn tokens(&self) -> &Arc<dyn TokenProvider> {
        &self.inner.tokens
    }

    /// The capabilities, from the cache or fetched now (discovery, then
    /// applications and application with the AAD token sent at once).
    /// Concurrent callers share one fetch and its result or error.
    pub async fn capabilities(&self) -> Result<Arc<Capabilities>, BootstrapError> {
        let looked_up = |hit| {
            if let Some(observer) = &self.inner.observer {
                observer.cache_lookup(CacheKind::Capabilities, hit);
            }
        };
        self.inner
            .caps
            .get(self.inner.clock.as_ref(), looked_up, || {
                self.fetch_capabilities()
            })
            .await
    }

    async fn fetch_capabilities(&self) -> Result<Capabilities, BootstrapError> {
        let config = &self.inner.config;
        let discovery = self
            .drive(Flow::discovery(Arc::clone(config), self.entropy()))
            .instrument(info_span!("discovery", url = %config.discover_url()))
            .await?;
        info!(
            applications = %discovery.applications_url,
            namespace = ?discovery.namespace,
            "discovered the API"
        );
        // Fetch the token first, so that the applications request carries it
        // at once instead of drawing the 401 challenge.
        let token = self.inner.tokens.token(config.audience()).await?;
        let caps = self
            .drive(Flow::capabilities(
                Arc::clone(config),
                discovery,
                Some(token),
                self.entropy(),
            ))
            .instrument(info_span!("capabilities", endpoint_id = %config.endpoint_id()))
            .await?;
        info!(
            capabilities = ?caps.application.capabilities(),
            anonymous_tokens = caps.anon_application_tokens.is_some(),
            "read the application's capabilities"
        );
        // Not consented (yet): nothing to cache; the next call asks again.
        caps.anonymous_tokens_url()?;
        Ok(caps)
    }

    /// Forgets the cached capabilities if they are still `stale` (another
    /// caller may already have replaced them).
    fn invalidate(&self, stale: &Arc<Capabilities>) {
        self.inner.caps.with(|entry| {
            if entry.caps.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
                warn!("dropping the cached capabilities: a cached link was refused");
                entry.caps = None;
            }
        });
    }

    /// Whether a mint would go through now without warming up: the
    /// capabilities are cached and the token provider holds a valid token.
    pub fn is_warm(&self) -> bool {
        self.inner.caps.with(|entry| entry.caps.is_some())
            && self
                .inner
                .tokens
                .cached(self.inner.config.audience())
                .is_some()
    }

    /// When the AAD token should next be fetched ahead of its expiry (see
    /// [`TokenProvider::refresh_due`]); [`warm_up`](Self::warm_up) then
    /// fetches it. The time is on the token provider's clock: give the
    /// provider and the bootstrapper the same one.
    pub fn token_refresh_due(&self) -> Option<std::time::Instant> {
        self.inner.tokens.refresh_due(self.inner.config.audience())
    }

    /// Forgets the cached capabilities.
    pub fn invalidate_capabilities(&self) {
        self.inner.caps.with(|entry| entry.caps = None);
    }

    /// Fills the caches: AAD token and capabilities.
    pub async fn warm_up(&self) -> Result<(), BootstrapError> {
        self.inner
            .tokens
            .token(self.inner.config.audience())
            .await?;
        self.capabilities().await.map(|_| ())
    }

    /// Mints a widget token for `origins`, with a new session id.
    pub async fn mint(&self, origins: AllowedOrigins) -> Result<WidgetToken, BootstrapError> {
        let session_id = (self.inner.entropy)().session_id();
        self.mint_with_session(origins, session_id).await
    }

    /// Mints a widget token for `origins` and a given session id.
    ///
    /// Warm, this is one request. If a cached link is refused (401, 403,
    /// 404, 410), the capabilities are fetched again and the mint redone
    /// once; a second failure is returned.
    pub async fn mint_with_session(
        &self,
        origins: AllowedOrigins,
        session_id: ApplicationSessionId,
    ) -> Result<WidgetToken, BootstrapError> {
        let span = info_span!("mint", session_id = %session_id);
        let started = self.inner.clock.now();
        let result = async {
            let request = MintRequest::new(session_id, origins);
            let mut redone = false;
            loop {
                let caps = self.capabilities().await?;
                let token = self
                    .inner
                    .tokens
                    .token(self.inner.config.audience())
                    .await?;
                let flow = Flow::mint(
                    Arc::clone(&self.inner.config),
                    &caps,
                    request.clone(),
                    Some(token),
                    self.entropy(),
                );
                match self.drive(flow).await {
                    Ok(token) => {
                        info!(expiry = %token.expiry, "minted a widget token");
                        return Ok(token);
                    }
                    Err(error) => {
                        let error = BootstrapError::from(error);
                        if !redone && stale_cache(&error) {
                            redone = true;
                            self.invalidate(&caps);
                            continue;
                        }
                        return Err(error);
                    }
                }
            }
        }
        .instrument(span)
        .await;
        if let (Some(observer), Ok(_)) = (&self.inner.observer, &result) {
            observer.minted(self.inner.clock.now().saturating_duration_since(started));
        }
        result
    }

    /// A fresh [`Entropy`](ta_protocol::Entropy) from this bootstrapper's
    /// source, for flows driven by hand.
    pub fn entropy(&self) -> Box<dyn ta_protocol::Entropy> {
        (self.inner.entropy)()
    }

    /// Drives a flow to its end over the transport.
    pub async fn drive<T>(&self, flow: Flow<T>) -> Result<T, Error>
    where
        Flow<T>: Driveable<T>,
    {
        crate::drive(
            flow,
            self.inner.transport.as_ref(),
            self.inner.tokens.as_ref(),
            self.inner.clock.as_ref(),
            self.inner.observer.as_deref(),
        )
        .await
    }
}
