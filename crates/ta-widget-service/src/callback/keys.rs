//! The keys document, fetched and cached: fetched on first use and again
//! when a token names a key it lacks, at most once per interval.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use ta_protocol::bytes::Bytes;
use ta_protocol::{Transport, http};

use super::verify::{key_id, verify};
use super::{CallbackAuth, CallbackClaims, KeySet, Refusal};

/// Where the keys document comes from.
#[async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    /// The document's bytes, or why there are none.
    async fn fetch(&self) -> Result<Bytes, String>;
}

/// The keys document at a URL, over a [`Transport`].
pub struct TransportKeySource {
    transport: Arc<dyn Transport>,
    url: http::Uri,
}

impl fmt::Debug for TransportKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportKeySource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TransportKeySource {
    /// The document at `url` (https, or http on a loopback address).
    pub fn new(transport: Arc<dyn Transport>, url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the keys URL {url:?}: {e}"))?;
        if parsed.scheme() != "https" && !ta_protocol::is_loopback_http(&parsed) {
            return Err(format!("the keys URL {url:?} is not https"));
        }
        let url = url
            .parse()
            .map_err(|e| format!("the keys URL {url:?}: {e}"))?;
        Ok(Self { transport, url })
    }
}

#[async_trait]
impl KeySource for TransportKeySource {
    async fn fetch(&self) -> Result<Bytes, String> {
        let mut request = http::Request::new(Bytes::new());
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the keys document answered {}", response.status()));
        }
        Ok(response.into_body())
    }
}

#[derive(Debug, Default)]
struct Cached {
    keys: Option<Arc<KeySet>>,
    /// When the keys in hand were fetched.
    fetched_at: Option<Instant>,
    /// The last attempt, successful or not.
    last_fetch: Option<Instant>,
}

/// The least time between two attempts while no keys are in hand (the
/// service cannot check any callback until one succeeds).
const RETRY_WITHOUT_KEYS: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks callback tokens against the identity provider's keys.
#[derive(Debug)]
pub struct CallbackVerifier {
    auth: CallbackAuth,
    source: Arc<dyn KeySource>,
    cached: tokio::sync::Mutex<Cached>,
}

impl CallbackVerifier {
    /// A verifier of tokens meeting `auth`, with keys from `source`.
    pub fn new(auth: CallbackAuth, source: Arc<dyn KeySource>) -> Self {
        Self {
            auth,
            source,
            cached: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// What tokens must say.
    pub fn auth(&self) -> &CallbackAuth {
        &self.auth
    }

    /// Checks a request's `Authorization` header at `now` (wall clock, for
    /// the token's times) and `at` (monotonic, for the fetch interval).
    pub async fn verify(
        &self,
        authorization: Option<&http::HeaderValue>,
        now: SystemTime,
        at: Instant,
    ) -> Result<CallbackClaims, Refusal> {
        let token = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let keys = self.keys_for(key_id(token).as_deref(), at).await?;
        verify(token, &keys, &self.auth, now)
    }

    /// The keys to check a token naming `kid` with: the cached ones, or
    /// fetched ones when there are none, when `kid` is unknown, or when
    /// they are older than [`CallbackAuth::max_key_age`] (a key the
    /// provider withdrew stops being accepted) — at most once per
    /// [`CallbackAuth::min_key_refetch`] while keys are in hand, and every
    /// second while none is. A failed fetch keeps the keys in hand.
    async fn keys_for(&self, kid: Option<&str>, at: Instant) -> Result<Arc<KeySet>, Refusal> {
        let mut cached = self.cached.lock().await;
        let known = match (&cached.keys, kid) {
            (Some(keys), Some(kid)) => keys.contains(kid),
            // A token without a key id is malformed: no fetch for it.
            (Some(_), None) => true,
            (None, _) => false,
        };
        let stale = cached
            .fetched_at
            .is_some_and(|t| at.saturating_duration_since(t) >= self.auth.max_key_age);
        let interval = if cached.keys.is_some() {
            self.auth.min_key_refetch
        } else {
            RETRY_WITHOUT_KEYS
        };
        let may_fetch = cached
            .last_fetch
            .is_none_or(|last| at.saturating_duration_since(last) >= interval);
        if (!known || stale) && may_fetch {
            cached.last_fetch = Some(at);
            match self.source.fetch().await.map(|body| KeySet::parse(&body)) {
                Ok(Ok(keys)) => {
                    tracing::info!(keys = keys.len(), "callback keys fetched");
                    cached.keys = Some(Arc::new(keys));
                    cached.fetched_at = Some(at);
                }
                Ok(Err(error)) => tracing::warn!(%error, "callback keys unusable"),
                Err(error) => tracing::warn!(%error, "callback keys not fetched"),
            }
        }
        cached.keys.clone().ok_or(Refusal::KeysUnavailable)
    }
}
