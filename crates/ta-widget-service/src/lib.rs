//! The widget-token service: the endpoint a chat widget calls for its
//! token, as a component to mount in an axum app or a tower stack, and the
//! accept loop that serves it.
//!
//! - [`WidgetService`] wraps a [`ta_bootstrap::Bootstrapper`]: its
//!   [`router`](WidgetService::router) answers `POST /v1/widget-token` to
//!   browsers on the site allowlist (CORS, rate limits, request ids,
//!   bounded mints in flight), and `/healthz`, `/readyz` and `/metrics`.
//!   [`ServiceConfig`] holds its settings.
//! - [`Metrics`] are its Prometheus metrics; they are also the
//!   [`ta_bootstrap::Observer`] of the bootstrapper and the token provider.
//! - [`server::serve`] runs a router over HTTP or HTTPS (reloadable
//!   certificate, bounded request heads and connections, graceful drain).
//! - [`mint_check`]: an operator's own check of each widget-token request
//!   before its mint ([`WidgetService::with_mint_check`]), and one that
//!   ships: tickets the site's backend signs into the page.
//!
//! ```no_run
//! # async fn example(bootstrapper: ta_bootstrap::Bootstrapper) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ta_protocol::{Origin, OriginPolicy};
//! use ta_widget_service::{Metrics, ServiceConfig, WidgetService};
//!
//! let allowlist = vec![Origin::parse("https://contoso.com", OriginPolicy::default())?];
//! let service = WidgetService::new(bootstrapper, ServiceConfig::new(allowlist), Arc::new(Metrics::new()));
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my own routes" }))
//!     .merge(service.router());
//! # let _ = app;
//! # Ok(()) }
//! ```

pub mod callback;
pub mod forwarded;
mod metrics;
pub mod mint_check;
pub mod pool;
pub mod replicas;
pub mod server;
mod service;

pub use metrics::Metrics;
pub use pool::{PoolConfig, PoolConfigError, PoolSwitchError};
pub use service::{ChatEndpoint, RenewalHint, RenewalHintError, ServiceConfig, WidgetService};
