//! Test set-up shared by the workspace's crates: an emulator, and a
//! bootstrapper with its token provider over the hyper transport trusting
//! the emulator's CA. Not published; a dev-dependency only.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    clippy::expect_used,
    missing_debug_implementations
)]

use std::sync::Arc;

pub mod balancer;
pub mod peer;
pub mod widget;

use ta_bootstrap::{
    Bootstrapper, BootstrapperBuilder, ClientCredentialsProvider, Clock, Credential, Observer,
};
use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};
use ta_hyper::HyperTransport;
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::{AllowedOrigins, ClientSecret, Config, OriginPolicy, Transport};

/// A running emulator and a bootstrapper pointed at it.
pub struct Setup {
    /// The emulator (dropping it stops it).
    pub emulator: Emulator,
    /// A hyper transport that trusts the emulator's CA.
    pub transport: Arc<dyn Transport>,
    /// The token provider, with the application's credential.
    pub tokens: Arc<ClientCredentialsProvider>,
    /// The bootstrapper.
    pub bootstrapper: Bootstrapper,
}

/// An emulator with `config`, and a bootstrapper using its default
/// application's secret.
pub async fn setup(config: EmulatorConfig) -> Setup {
    setup_with(
        config,
        Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
    )
    .await
}

/// The same, with `credential`.
pub async fn setup_with(config: EmulatorConfig, credential: Credential) -> Setup {
    start(config, credential, None).await
}

/// The same as [`setup`], the bootstrapper and the token provider reporting
/// to `observer`.
pub async fn setup_observed(config: EmulatorConfig, observer: Arc<dyn Observer>) -> Setup {
    let secret = Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET));
    start(config, secret, Some(observer)).await
}

async fn start(
    config: EmulatorConfig,
    credential: Credential,
    observer: Option<Arc<dyn Observer>>,
) -> Setup {
    let emulator = Emulator::start(config).await.unwrap();
    let transport: Arc<dyn Transport> = Arc::new(
        HyperTransport::builder()
            .add_root_certificates_pem(emulator.ca_pem().unwrap().as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let mut bootstrapper = builder_for(&emulator, &transport, credential);
    if let Some(observer) = observer {
        bootstrapper = bootstrapper.observer(observer);
    }
    let bootstrapper = bootstrapper.build();
    let tokens = Arc::clone(bootstrapper.client_credentials().unwrap());
    Setup {
        emulator,
        transport,
        tokens,
        bootstrapper,
    }
}

/// A bootstrapper builder for `emulator` over `transport`, with the
/// emulator's default endpoint and `credential`.
fn builder_for(
    emulator: &Emulator,
    transport: &Arc<dyn Transport>,
    credential: Credential,
) -> BootstrapperBuilder {
    let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared();
    Bootstrapper::with_client_credentials(
        config,
        Arc::clone(transport),
        TokenEndpoint::parse(&emulator.token_url(), false).unwrap(),
        ClientId::new(DEFAULT_CLIENT_ID).unwrap(),
        credential,
    )
}

impl Setup {
    /// Another bootstrapper's builder against the same emulator and
    /// transport (the default application's secret), to set its clock,
    /// lifetimes or observer; it shares no cache with
    /// [`Setup::bootstrapper`].
    pub fn builder(&self) -> BootstrapperBuilder {
        let secret = Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET));
        builder_for(&self.emulator, &self.transport, secret)
    }
}

/// A clock that moves only when told: its monotonic time starts at the
/// real one's and is advanced by [`ManualClock::advance`]; its wall-clock
/// seconds are the system's (for client assertions).
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<std::time::Instant>);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(std::time::Instant::now())))
    }

    /// Moves it `by` forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> std::time::Instant {
        *self.0.lock().unwrap()
    }

    fn unix_seconds(&self) -> u64 {
        ta_bootstrap::SystemClock.unix_seconds()
    }
}

/// An allowlist parsed from a comma-separated list, with the default policy.
pub fn origins(list: &str) -> AllowedOrigins {
    AllowedOrigins::parse_list(list, OriginPolicy::default()).unwrap()
}
