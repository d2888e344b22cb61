//! The orchestrator of the Trusted Application API flow.
//!
//! A [`Bootstrapper`] drives [`ta_protocol`]'s state machines over a
//! [`ta_protocol::Transport`] (by default [`ta_hyper::HyperTransport`]),
//! with:
//!
//! - a capabilities cache shared by all callers: discovery and capabilities
//!   are fetched once (single flight), then every widget token costs one
//!   request;
//! - a [`TokenProvider`] for AAD tokens ([`ClientCredentialsProvider`]:
//!   client secret or certificate, refresh ahead, single flight);
//! - an injected [`Clock`] and [`IdSource`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ta_bootstrap::*;
//! use ta_protocol::{AllowedOrigins, Config, OriginPolicy};
//! use ta_protocol::aad::{ClientId, TokenEndpoint};
//!
//! let config = Config::builder(ta_protocol::DEFAULT_DISCOVER_URL, "sip:helpdesk@contoso.com")
//!     .build()?
//!     .into_shared();
//! let transport: Arc<dyn ta_protocol::Transport> = Arc::new(ta_hyper::HyperTransport::builder().build()?);
//! let tokens = Arc::new(ClientCredentialsProvider::new(
//!     Arc::clone(&transport),
//!     TokenEndpoint::for_tenant("contoso.onmicrosoft.com")?,
//!     ClientId::new("00000000-0000-0000-0000-000000000001")?,
//!     Credential::Secret(ta_protocol::ClientSecret::new("…")),
//!     Arc::new(SystemClock),
//!     Arc::new(RandomIds::new()),
//! ));
//! let bootstrapper = Bootstrapper::builder(config, transport, tokens).build();
//! let origins = AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())?;
//! let minted = bootstrapper.mint(origins).await?;
//! println!("{} expires {}", minted.discover_uri, minted.expiry);
//! # Ok(()) }
//! ```

mod bootstrapper;
mod clock;
mod credentials;
pub mod demo_site;
mod ids;
mod metrics;
mod report;
pub mod server;
mod service;
mod token;

pub use bootstrapper::{
    BootstrapError, Bootstrapper, BootstrapperBuilder, CAPABILITIES_TTL, MintedToken, drive,
};
pub use clock::{Clock, SystemClock};
pub use credentials::{CertificateSigner, Credential, CredentialError};
pub use ids::{IdSource, RandomIds};
pub use metrics::Metrics;
pub use report::FailureKind;
pub use service::{ServiceConfig, WidgetService};
#[cfg(feature = "mock")]
pub use token::MockTokenProvider;
pub use token::{ClientCredentialsProvider, MIN_USABLE_LIFETIME, TokenProvider};
