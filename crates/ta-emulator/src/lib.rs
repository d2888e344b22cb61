//! An emulator of the Skype for Business **Trusted Application API** and of
//! **Azure AD**'s client credentials endpoints, over HTTPS.
//!
//! The real service is retired; this emulator is what the project's tests,
//! benchmarks and demos run against. It is as strict as the service was (a
//! client that skips a step, sends a token to the wrong audience, or glues
//! URLs instead of following links fails) and reproduces the quirks real
//! answers showed, each as a setting ([`Quirks`]).
//!
//! - Discovery is served on `127.0.0.1`, the API on `localhost` (both
//!   loopback, different host names), so clients must follow absolute links.
//! - AAD tokens and `psat` tokens are RS256 JWTs signed with a fixed
//!   development key (see `keys/README.md`).
//! - HTTPS uses a CA generated at start; [`Emulator::ca_pem`] gives it to
//!   clients.
//! - Counters ([`StatsSnapshot`]) are readable in-process and at
//!   `GET /_emulator/stats`.
//!
//! Endpoints:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/platformservice/discover` | discovery (unauthenticated unless configured) |
//! | POST | `/{tenant}/oauth2/v2.0/token`, `/{tenant}/oauth2/token` | AAD client credentials (client secret or certificate assertion) |
//! | GET | `/platformservice/v1/applications?endpointId=` | 401 challenge, 403 `ApplicationNotFound`, or the application link |
//! | GET | `/platformservice/v1/applications/{id}?endpointId=` | the capabilities |
//! | POST | `/platformservice/v1/applications/{id}/anonApplicationTokens?endpointId=` | mints a `psat` token |
//! | GET, OPTIONS | `/platformservice/discover?anonymousContext=` | the chat client's anonymous discovery, with CORS |
//! | GET | `/_emulator/stats` | counters (JSON) |

mod app;
mod chat_config;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod faults;
mod network;
mod reset;
mod server;
pub mod signing;
mod stats;
mod tls;
mod tokens;

pub use chat_config::{AgentConfig, CallbackFaults, ChatConfig, DEFAULT_APP_ID_URI};
pub use config::{
    AppConfig, ConfigError, DEFAULT_APPLICATION_ID, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    DEFAULT_ENDPOINT, DEFAULT_TENANT, DEFAULT_TENANT_ID, EmulatorConfig, EndpointConfig,
    EndpointIdStyle, ExpiryStyle, PathCasing, Quirks, RelNamespace,
};
pub use faults::{FaultKind, FaultRule, RouteMatch, Trigger};
pub use network::{MAX_RTT_MS, NetworkDistance};
pub use server::{Emulator, StartError};
pub use stats::{RequestCount, Route, StatsSnapshot};
pub use tls::{LEAF_NAMES, TlsError};
pub use tokens::{
    DEV_CLIENT_CERTIFICATE_KEY, VerifiedPsat, dev_client_certificate_pem, verify_psat,
};
