//! Building a [`Bootstrapper`]: its transport and token source, and the
//! clock, entropy, observer and capabilities lifetime it runs with.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ta_protocol::{Config, RetryPolicy, Transport};

use crate::bootstrapper::{Bootstrapper, Inner};
use crate::caps_cache::CAPABILITIES_TTL;
use crate::clock::{Clock, SystemClock};
use crate::ids::{EntropySource, random_entropy};
use crate::observer::Observer;
use crate::single_flight::SingleFlight;
use crate::token::{ClientCredentialsProviderBuilder, TokenProvider};

/// Where a bootstrapper's AAD tokens come from.
pub(crate) enum Tokens {
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
    caps_lifetime: Duration,
}

impl fmt::Debug for BootstrapperBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapperBuilder")
            .finish_non_exhaustive()
    }
}

impl BootstrapperBuilder {
    pub(crate) fn new(config: Arc<Config>, transport: Arc<dyn Transport>, tokens: Tokens) -> Self {
        Self {
            config,
            transport,
            tokens,
            clock: Arc::new(SystemClock),
            entropy: random_entropy(),
            observer: None,
            caps_lifetime: CAPABILITIES_TTL,
        }
    }

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

    /// Sets how long fetched capabilities are used before they are fetched
    /// again (default: [`CAPABILITIES_TTL`], 15 minutes). They are renewed
    /// ahead, at 80 % to 84 % of it, while the cached ones are served. A
    /// zero lifetime is taken as one second.
    pub fn capabilities_lifetime(mut self, lifetime: Duration) -> Self {
        self.caps_lifetime = lifetime.max(Duration::from_secs(1));
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
                caps_lifetime: self.caps_lifetime,
                renewing: AtomicBool::new(false),
                observer: self.observer,
            }),
        }
    }
}
