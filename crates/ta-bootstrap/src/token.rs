//! AAD tokens: the provider trait, and a client-credentials provider with a
//! refresh-ahead, single-flight cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ta_protocol::aad::{self, ClientId, Proof, TokenEndpoint, TokenError, TokenFlow};
use ta_protocol::{AccessToken, Audience, RetryPolicy, Transport};
use tracing::{Instrument, debug, info_span, warn};

use crate::clock::{Clock, SystemClock};
use crate::credentials::Credential;
use crate::driver::{self, Sources};
use crate::ids::{EntropySource, random_entropy};
use crate::observer::{CacheKind, Observer};
use crate::single_flight::{Entry, SingleFlight, refresh_margin};

/// Gives AAD tokens for an audience.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// A token valid for a while yet: cached, or fetched now.
    async fn token(&self, audience: &Audience) -> Result<AccessToken, TokenError>;
    /// A cached token that has not expired, without fetching.
    fn cached(&self, audience: &Audience) -> Option<AccessToken>;
    /// Drops `token` (the API refused it) so that the next call fetches.
    fn invalidate(&self, audience: &Audience, token: &AccessToken);
    /// When [`token`](Self::token) will next ask AAD for `audience` (the
    /// cached token's refresh-ahead time, or the end of a backoff), on the
    /// provider's clock, if a token is cached: a background task calls
    /// `token` then, so that no caller waits for AAD. `None` when the
    /// provider does not say.
    fn refresh_due(&self, audience: &Audience) -> Option<Instant> {
        let _ = audience;
        None
    }
}

/// Lifetimes below this count as "already near expiry".
pub const MIN_USABLE_LIFETIME: Duration = Duration::from_secs(10);
/// Near-expiry tokens accepted in a row before giving up.
const MAX_SHORT_TOKENS: u32 = 3;
/// The longest token lifetime believed.
const MAX_BELIEVED_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// After a failed refresh while the old token is still valid, no new attempt
/// before this.
const REFRESH_RETRY_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Cached {
    token: AccessToken,
    expires_at: Instant,
    refresh_at: Instant,
}

/// One audience's token, and the backoff after near-expiry tokens.
#[derive(Debug, Default)]
struct TokenSlot {
    token: Option<Cached>,
    /// Near-expiry tokens received in a row.
    short_tokens: u32,
    /// No fetch before this (after near-expiry tokens, or a failed refresh).
    hold_until: Option<Instant>,
}

/// What one fetch brought: AAD's answer and the refresh margin drawn for it.
struct Fetched {
    response: aad::TokenResponse,
    refresh_margin: Duration,
}

type Slot = SingleFlight<TokenSlot>;

impl TokenSlot {
    /// A token that has not expired.
    fn usable(&self, now: Instant) -> Option<AccessToken> {
        self.token
            .as_ref()
            .filter(|c| now < c.expires_at)
            .map(|c| c.token.clone())
    }
}

impl Entry for TokenSlot {
    type Value = AccessToken;
    type Fetched = Fetched;
    type Error = TokenError;

    /// A token not yet due for its refresh ahead.
    fn fresh(&mut self, now: Instant) -> Option<AccessToken> {
        self.token
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// Refreshing ahead: while another caller fetches, the current token
    /// still works; only callers without a usable token wait.
    fn while_fetching(&self, now: Instant) -> Option<AccessToken> {
        self.usable(now)
    }

    /// Backing off after near-expiry tokens or a failed refresh: no request
    /// to AAD.
    fn held(
        &self,
        now: Instant,
        last_error: Option<&TokenError>,
    ) -> Option<Result<AccessToken, TokenError>> {
        let until = self.hold_until.filter(|until| now < *until)?;
        Some(self.usable(now).ok_or_else(|| {
            last_error.cloned().unwrap_or_else(|| {
                TokenError::Other(format!(
                    "Azure AD's last token expired at once; asking again in {} ms",
                    until.saturating_duration_since(now).as_millis()
                ))
            })
        }))
    }

    fn store(
        &mut self,
        now: Instant,
        fetched: Result<Fetched, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        let Fetched {
            response,
            refresh_margin,
        } = match fetched {
            Ok(fetched) => fetched,
            // Refresh ahead failed: the old token still works for now, and
            // AAD is left alone for a moment.
            Err(error) => {
                let token = self.usable(now).ok_or_else(|| error.clone())?;
                warn!(%error, "refreshing the AAD token failed; the current one is still valid");
                self.hold_until = now.checked_add(REFRESH_RETRY_BACKOFF);
                return Ok(token);
            }
        };
        let lifetime = believed_lifetime(&response);
        if lifetime < MIN_USABLE_LIFETIME {
            self.short_tokens += 1;
            let backoff = Duration::from_secs(1 << (self.short_tokens - 1).min(6));
            self.hold_until = now.checked_add(backoff);
            if self.short_tokens >= MAX_SHORT_TOKENS {
                self.token = None;
                return Err(TokenError::Other(format!(
                    "Azure AD issued {} tokens in a row that expire within {} s; check the clock and the token lifetime policy",
                    self.short_tokens,
                    lifetime.as_secs()
                )));
            }
        } else {
            self.short_tokens = 0;
            self.hold_until = None;
        }
        let expires_at = now.checked_add(lifetime).unwrap_or(now);
        let refresh_at = expires_at.checked_sub(refresh_margin).unwrap_or(now);
        self.token = Some(Cached {
            token: response.access_token.clone(),
            expires_at,
            refresh_at,
        });
        Ok(response.access_token)
    }
}

/// A lifetime beyond a day is not believed (and cannot overflow the clock).
fn believed_lifetime(response: &aad::TokenResponse) -> Duration {
    response.expires_in.min(MAX_BELIEVED_LIFETIME)
}

/// The client-credentials grant against one token endpoint for one
/// application, with a cache per audience.
///
/// - Refresh ahead: a token is replaced once it enters the last fifth of its
///   life (at most five minutes before expiry), with jitter; if that fetch
///   fails while the old token is still valid, the old token is used.
/// - Busy answers (429, 502, 503, 504) and retryable transport failures are
///   retried with a [`RetryPolicy`] (settable on the builder), honouring
///   `Retry-After`.
/// - Single flight: callers arriving while a token is being fetched wait for
///   that one request and all get its result, or its error; the next call
///   tries again.
/// - After a token AAD issues already near expiry (under
///   [`MIN_USABLE_LIFETIME`]), AAD is not asked again for a backoff (1 s,
///   2 s, 4 s, …): calls in between get that token while it is valid, or an
///   error at once. After three such tokens in a row, the provider answers an
///   error (and keeps backing off) until AAD issues a normal token.
pub struct ClientCredentialsProvider {
    transport: Arc<dyn Transport>,
    endpoint: TokenEndpoint,
    client_id: ClientId,
    credential: std::sync::RwLock<Arc<Credential>>,
    clock: Arc<dyn Clock>,
    entropy: EntropySource,
    slots: Mutex<HashMap<Audience, Arc<Slot>>>,
    observer: Option<Arc<dyn Observer>>,
    retry: RetryPolicy,
}

impl fmt::Debug for ClientCredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsProvider")
            .field("endpoint", &self.endpoint.url().as_str())
            .field("client_id", &self.client_id)
            .field("credential", &self.credential())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ClientCredentialsProvider`]; see
/// [`ClientCredentialsProvider::builder`].
pub struct ClientCredentialsProviderBuilder {
    transport: Arc<dyn Transport>,
    endpoint: TokenEndpoint,
    client_id: ClientId,
    credential: Credential,
    clock: Arc<dyn Clock>,
    entropy: EntropySource,
    observer: Option<Arc<dyn Observer>>,
    retry: RetryPolicy,
}

impl fmt::Debug for ClientCredentialsProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsProviderBuilder")
            .field("endpoint", &self.endpoint.url().as_str())
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsProviderBuilder {
    /// Sets the clock (default: [`SystemClock`]). Give the bootstrapper the
    /// same one: [`TokenProvider::refresh_due`] is read on it.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets where request ids, assertion `jti`s and jitter come from
    /// (default: a [`RandomEntropy`](crate::RandomEntropy) for each fetch).
    pub fn entropy(mut self, entropy: EntropySource) -> Self {
        self.entropy = entropy;
        self
    }

    /// Reports AAD fetches and token-cache look-ups to `observer`.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sets how busy answers (429, 502, 503, 504) and retryable transport
    /// failures of one token fetch are retried (default:
    /// [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the provider.
    pub fn build(self) -> ClientCredentialsProvider {
        ClientCredentialsProvider {
            transport: self.transport,
            endpoint: self.endpoint,
            client_id: self.client_id,
            credential: std::sync::RwLock::new(Arc::new(self.credential)),
            clock: self.clock,
            entropy: self.entropy,
            slots: Mutex::new(HashMap::new()),
            observer: self.observer,
            retry: self.retry,
        }
    }
}

impl ClientCredentialsProvider {
    /// Starts a provider for `client_id` at `endpoint`, which sends its
    /// token requests over `transport` and proves itself with `credential`.
    pub fn builder(
        transport: Arc<dyn Transport>,
        endpoint: TokenEndpoint,
        client_id: ClientId,
        credential: Credential,
    ) -> ClientCredentialsProviderBuilder {
        ClientCredentialsProviderBuilder {
            transport,
            endpoint,
            client_id,
            credential,
            clock: Arc::new(SystemClock),
            entropy: random_entropy(),
            observer: None,
            retry: RetryPolicy::default(),
        }
    }

    /// The credential the next token request will use.
    pub fn credential(&self) -> Arc<Credential> {
        Arc::clone(
            &self
                .credential
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the credential (a rotated secret or certificate): the next
    /// token request uses it. Tokens already cached stay in use until they
    /// are refreshed ahead of expiry as usual (a rotation does not revoke
    /// them at AAD either); a token request under way finishes with the
    /// credential it started with.
    pub fn set_credential(&self, credential: Credential) {
        *self
            .credential
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(credential);
    }

    fn count_fetch(&self, ok: bool) {
        if let Some(observer) = &self.observer {
            observer.aad_fetch(ok);
        }
    }

    fn slot(&self, audience: &Audience) -> Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(slots.entry(audience.clone()).or_default())
    }

    /// One token fetch: the sans-IO [`TokenFlow`] (retries by the
    /// builder's policy, a fresh client assertion each attempt: AAD refuses
    /// a replayed `jti`), driven over the transport.
    async fn fetch(&self, audience: &Audience) -> Result<aad::TokenResponse, TokenError> {
        let credential = self.credential();
        let (proof, signer) = match credential.as_ref() {
            Credential::Secret(secret) => (Proof::Secret(secret.clone()), None),
            Credential::Certificate(signer) => (
                Proof::Certificate {
                    certificate_sha1: signer.certificate_sha1(),
                },
                Some(signer.as_ref()),
            ),
        };
        let flow = TokenFlow::new(
            self.endpoint.clone(),
            self.client_id.clone(),
            audience.clone(),
            proof,
            self.retry,
            (self.entropy)(),
        );
        let span = info_span!(
            "aad_token",
            endpoint = %self.endpoint.url(),
            client_id = %self.client_id,
            audience = %audience,
        );
        let sources = Sources {
            tokens: None,
            signer,
        };
        let result = driver::run(
            flow,
            self.transport.as_ref(),
            sources,
            self.clock.as_ref(),
            self.observer.as_deref(),
        )
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match &result {
            Ok(token) => debug!(
                expires_in = token.expires_in.as_secs(),
                "AAD issued a token"
            ),
            Err(error @ TokenError::Aad(aad)) => {
                let status = aad.status().map_or(0, |s| s.as_u16());
                if matches!(status, 429 | 502 | 503 | 504) {
                    warn!(status, %error, "AAD stayed busy or unavailable through the retries");
                } else if status >= 500 {
                    warn!(status, %error, "AAD failed on the token request");
                } else {
                    warn!(status, %error, "AAD refused the token request");
                }
            }
            Err(error) => warn!(%error, "the AAD token request failed"),
        }
        result
    }

    fn refresh_margin(&self, lifetime: Duration) -> Duration {
        refresh_margin(lifetime, (self.entropy)().jitter())
    }
}

#[async_trait::async_trait]
impl TokenProvider for ClientCredentialsProvider {
    async fn token(&self, audience: &Audience) -> Result<AccessToken, TokenError> {
        let slot = self.slot(audience);
        let looked_up = |hit| {
            if let Some(observer) = &self.observer {
                observer.cache_lookup(CacheKind::AadToken, hit);
            }
        };
        let fetch = || async {
            let result = self.fetch(audience).await;
            self.count_fetch(result.is_ok());
            result.map(|response| Fetched {
                refresh_margin: self.refresh_margin(believed_lifetime(&response)),
                response,
            })
        };
        slot.get(self.clock.as_ref(), looked_up, fetch).await
    }

    fn refresh_due(&self, audience: &Audience) -> Option<Instant> {
        self.slot(audience).with(|slot| {
            let refresh_at = slot.token.as_ref()?.refresh_at;
            Some(
                slot.hold_until
                    .map_or(refresh_at, |until| until.max(refresh_at)),
            )
        })
    }

    fn cached(&self, audience: &Audience) -> Option<AccessToken> {
        let now = self.clock.now();
        self.slot(audience).with(|slot| slot.usable(now))
    }

    fn invalidate(&self, audience: &Audience, token: &AccessToken) {
        self.slot(audience).with(|slot| {
            if slot.token.as_ref().is_some_and(|c| &c.token == token) {
                debug!(audience = %audience, "dropping the AAD token the API refused");
                slot.token = None;
                slot.hold_until = None;
            }
        });
    }
}
