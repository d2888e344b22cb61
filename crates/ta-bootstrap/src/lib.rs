//! The orchestrator of the Trusted Application API flow: a library, with no
//! command line, no HTTP server and no emulator in it.
//!
//! A [`Bootstrapper`] drives [`ta_protocol`]'s state machines over any
//! [`ta_protocol::Transport`] (with the default `hyper` feature,
//! [`ta_hyper::HyperTransport`] is re-exported as [`hyper`]), with:
//!
//! - a capabilities cache shared by all callers: discovery and capabilities
//!   are fetched once (single flight), then every widget token costs one
//!   request;
//! - a [`TokenProvider`] for AAD tokens ([`ClientCredentialsProvider`]:
//!   client secret or certificate, refresh ahead, single flight);
//! - an injected [`Clock`] and [`EntropySource`], and an optional [`Observer`]
//!   for metrics;
//! - [`Bootstrapper::keep_warm`], a loop to spawn beside whatever mints:
//!   it renews the AAD token and the capabilities ahead of their expiry, so
//!   that a mint waits for its own request only.
//!
//! The widget-token service built on it is the `ta-widget-service` crate;
//! the `ta-bootstrap` executable is the `ta-bootstrap-cli` crate.
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ta_bootstrap::*;
//! use ta_protocol::{AllowedOrigins, Config, OriginPolicy};
//! use ta_protocol::aad::{ClientId, TokenEndpoint};
//!
//! let config = Config::builder(ta_protocol::DEFAULT_DISCOVER_URL, "sip:helpdesk@contoso.com")
//!     .build()?
//!     .into_shared();
//! let transport: Arc<dyn ta_protocol::Transport> =
//!     Arc::new(ta_bootstrap::hyper::HyperTransport::builder().build()?);
//! // The AAD token provider is built with the bootstrapper, on the same
//! // clock, entropy and observer (`Bootstrapper::builder` takes a
//! // `TokenProvider` of your own instead).
//! let bootstrapper = Bootstrapper::with_client_credentials(
//!     config,
//!     transport,
//!     TokenEndpoint::for_tenant("contoso.onmicrosoft.com")?,
//!     ClientId::new("00000000-0000-0000-0000-000000000001")?,
//!     Credential::Secret(ta_protocol::ClientSecret::new("…")),
//! )
//! .build();
//! let origins = AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())?;
//! let minted = bootstrapper.mint(origins).await?;
//! println!("a widget token for session {} expires {}", minted.session_id, minted.expiry);
//! # Ok(()) }
//! ```

mod bootstrapper;
mod builder;
mod caps_cache;
pub mod chat;
mod clock;
mod credentials;
mod driver;
mod ids;
mod keep_warm;
mod observer;
mod report;
mod single_flight;
mod token;

pub use bootstrapper::{BootstrapError, Bootstrapper};
pub use builder::BootstrapperBuilder;
pub use caps_cache::CAPABILITIES_TTL;
pub use clock::{Clock, SystemClock};
pub use credentials::{CertificateSigner, Credential, CredentialError, Signer};
pub use driver::drive;
pub use ids::{EntropySource, RandomEntropy};
pub use keep_warm::WARM_CHECK_INTERVAL;
pub use observer::{CacheKind, Observer};
pub use report::FailureKind;
#[cfg(feature = "mock")]
pub use token::MockTokenProvider;
pub use token::{
    ClientCredentialsProvider, ClientCredentialsProviderBuilder, MIN_USABLE_LIFETIME, TokenProvider,
};

/// The hyper 1.x + rustls (ring) transport, [`ta_hyper`], re-exported (the
/// default `hyper` feature). Without it, bring a transport of your own.
#[cfg(feature = "hyper")]
pub use ta_hyper as hyper;
