//! The orchestrator: drives `ta-protocol`'s flows over a transport, with a
//! shared capabilities cache and a token provider.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ta_protocol::aad::{ClientId, TokenEndpoint, TokenError};
use ta_protocol::{
    AllowedOrigins, ApplicationSessionId, Capabilities, Config, Driveable, Error, Flow,
    MintRequest, Transport, WidgetToken,
};
use tracing::{Instrument, info, info_span, warn};

use crate::builder::{BootstrapperBuilder, Tokens};
use crate::caps_cache::{CapsEntry, Fetched as CapsFetched, Look};
use crate::clock::Clock;
use crate::credentials::Credential;
use crate::ids::EntropySource;
use crate::observer::{CacheKind, Observer};
use crate::single_flight::SingleFlight;
use crate::token::{ClientCredentialsProvider, TokenProvider};

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

pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) tokens: Arc<dyn TokenProvider>,
    pub(crate) client_credentials: Option<Arc<ClientCredentialsProvider>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) entropy: EntropySource,
    pub(crate) caps: SingleFlight<CapsEntry>,
    /// How long fetched capabilities are used.
    pub(crate) caps_lifetime: Duration,
    /// A renewal of the capabilities runs in the background.
    pub(crate) renewing: AtomicBool,
    pub(crate) observer: Option<Arc<dyn Observer>>,
}

/// Mints widget tokens: discovery and capabilities are fetched once and
/// shared (single flight), the AAD token comes from a [`TokenProvider`], and
/// each widget token then costs one request.
///
/// Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct Bootstrapper {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Bootstrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrapper")
            .field("discover_url", &self.inner.config.discover_url().as_str())
            .field("endpoint_id", self.inner.config.endpoint_id())
            .finish_non_exhaustive()
    }
}

/// A background renewal of the capabilities: the next may start once it
/// is over, even if its task was dropped half-way.
struct Renewal(Bootstrapper);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.inner.renewing.store(false, Ordering::Release);
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
        BootstrapperBuilder::new(config, transport, Tokens::Given(tokens))
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
        BootstrapperBuilder::new(
            config,
            transport,
            Tokens::ClientCredentials(Box::new(provider)),
        )
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
    ///
    /// Renewed ahead: once the cached capabilities are due for renewal
    /// (80 % to 84 % of their lifetime), they are still returned at once
    /// while one renewal runs in the background (on the current Tokio
    /// runtime; without one, the caller renews them itself). A renewal
    /// that fails keeps the cached ones until they expire, and the next
    /// is held back (5 s, doubling to 60 s). Only a caller that finds
    /// nothing valid waits for a fetch: with calls further apart than the
    /// renewal window (a fifth of the lifetime), call
    /// [`warm_up`](Self::warm_up) at [`refresh_due`](Self::refresh_due)
    /// too, as `serve`'s warm-up loop does.
    pub async fn capabilities(&self) -> Result<Arc<Capabilities>, BootstrapError> {
        let now = self.inner.clock.now();
        let look = self.inner.caps.with(|entry| entry.look(now));
        let renewing_behind = match look {
            Look::Fresh(caps) | Look::Held(caps) => Some(caps),
            Look::Due(caps) => self.renew_in_background().then_some(caps),
            Look::Missing => None,
        };
        if let Some(caps) = renewing_behind {
            self.looked_up(true);
            return Ok(caps);
        }
        self.capabilities_waiting().await
    }

    /// The capabilities from the cache when fresh, else from a fetch this
    /// caller waits for (or shares).
    async fn capabilities_waiting(&self) -> Result<Arc<Capabilities>, BootstrapError> {
        self.inner
            .caps
            .get(
                self.inner.clock.as_ref(),
                |hit| self.looked_up(hit),
                || self.fetch_for_cache(),
            )
            .await
    }

    fn looked_up(&self, hit: bool) {
        if let Some(observer) = &self.inner.observer {
            observer.cache_lookup(CacheKind::Capabilities, hit);
        }
    }

    /// Starts one background renewal of the capabilities, unless one runs.
    /// Whether one runs (false without a Tokio runtime).
    fn renew_in_background(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if self.inner.renewing.swap(true, Ordering::AcqRel) {
            return true;
        }
        let renewal = Renewal(self.clone());
        runtime.spawn(
            async move {
                info!("renewing the capabilities ahead of their expiry");
                let this = &renewal.0;
                // A failure is kept by the cache (and logged there).
                let _ = this
                    .inner
                    .caps
                    .get(this.inner.clock.as_ref(), |_| {}, || this.fetch_for_cache())
                    .await;
            }
            .instrument(info_span!("capabilities_renewal")),
        );
        true
    }

    /// One fetch, with the lifetime and the jittered renewal time drawn
    /// for it.
    async fn fetch_for_cache(&self) -> Result<CapsFetched, BootstrapError> {
        let caps = self.fetch_capabilities().await?;
        let jitter = self.entropy().jitter();
        Ok(CapsFetched::new(caps, self.inner.caps_lifetime, jitter))
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
        if self.inner.caps.with(|entry| entry.forget(Some(stale))) {
            warn!("dropping the cached capabilities: a cached link was refused");
        }
    }

    /// Whether a mint would go through now without warming up: the
    /// capabilities are cached and the token provider holds a valid token.
    pub fn is_warm(&self) -> bool {
        let now = self.inner.clock.now();
        self.inner.caps.with(|entry| entry.is_valid(now))
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

    /// When the capabilities should next be renewed ahead of their expiry
    /// (or after a failed renewal's hold); [`warm_up`](Self::warm_up) then
    /// renews them. `None` while none are cached. On the bootstrapper's
    /// clock.
    pub fn capabilities_refresh_due(&self) -> Option<std::time::Instant> {
        self.inner.caps.with(|entry| entry.refresh_due())
    }

    /// When [`warm_up`](Self::warm_up) next has something to renew: the
    /// earlier of [`token_refresh_due`](Self::token_refresh_due) and
    /// [`capabilities_refresh_due`](Self::capabilities_refresh_due). A
    /// loop that calls `warm_up` at this time (and retries when it fails)
    /// keeps every widget request off the upstream path but for its mint.
    pub fn refresh_due(&self) -> Option<std::time::Instant> {
        [self.token_refresh_due(), self.capabilities_refresh_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Forgets the cached capabilities.
    pub fn invalidate_capabilities(&self) {
        self.inner.caps.with(|entry| entry.forget(None));
    }

    /// Fills the caches: AAD token and capabilities, and renews whichever
    /// is due for its renewal ahead, waiting for it (a background job's
    /// call: requests meanwhile are served from the caches).
    pub async fn warm_up(&self) -> Result<(), BootstrapError> {
        self.inner
            .tokens
            .token(self.inner.config.audience())
            .await?;
        self.capabilities_waiting().await.map(|_| ())
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
