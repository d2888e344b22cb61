//! Shared set-up: an emulator and a bootstrapper over the hyper transport.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::sync::Arc;

use ta_bootstrap::*;
use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};
use ta_hyper::HyperTransport;
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::{AllowedOrigins, ClientSecret, Config, OriginPolicy, Transport};

pub struct Setup {
    pub emulator: Emulator,
    pub transport: Arc<dyn Transport>,
    pub tokens: Arc<ClientCredentialsProvider>,
    pub bootstrapper: Bootstrapper,
    pub metrics: Arc<Metrics>,
}

pub async fn setup(config: EmulatorConfig) -> Setup {
    setup_with(
        config,
        Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
    )
    .await
}

pub async fn setup_with(config: EmulatorConfig, credential: Credential) -> Setup {
    let emulator = Emulator::start(config).await.unwrap();
    let transport: Arc<dyn Transport> = Arc::new(
        HyperTransport::builder()
            .add_root_certificates_pem(emulator.ca_pem().unwrap().as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let metrics = Arc::new(Metrics::new());
    let tokens = Arc::new(
        ClientCredentialsProvider::new(
            Arc::clone(&transport),
            TokenEndpoint::parse(&emulator.token_url(), false).unwrap(),
            ClientId::new(DEFAULT_CLIENT_ID).unwrap(),
            credential,
            Arc::new(SystemClock),
            Arc::new(RandomIds::new()),
        )
        .with_metrics(Arc::clone(&metrics)),
    );
    let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared();
    let bootstrapper = Bootstrapper::builder(
        config,
        Arc::clone(&transport),
        Arc::clone(&tokens) as Arc<dyn TokenProvider>,
    )
    .metrics(Arc::clone(&metrics))
    .build();
    Setup {
        emulator,
        transport,
        tokens,
        bootstrapper,
        metrics,
    }
}

pub fn origins(list: &str) -> AllowedOrigins {
    AllowedOrigins::parse_list(list, OriginPolicy::default()).unwrap()
}
