//! The transport-agnostic ("sans-IO") core of a Service Application client
//! of the Skype for Business **Trusted Application API**.
//!
//! The call flow this crate implements:
//!
//! 1. **Discovery**: `GET <discover URL>` without a token → the
//!    `applications` link (often on another host).
//! 2. **Authorization**: `GET <applications>?endpointId=<sip uri>` → 401 with
//!    a `WWW-Authenticate: Bearer` challenge → an AAD app-only token for the
//!    audience (scheme + host of the discover URL) → the same request with
//!    `Authorization: Bearer …` → a relative `application` link.
//! 3. **Capabilities**: `GET <application>` → what the tenant consented to,
//!    `anonApplicationTokens` among them.
//! 4. **Mint**: `POST <anonApplicationTokens>` with
//!    `{"applicationSessionId", "allowedOrigins"}` → a `psat=` token, its
//!    expiry and the anonymous discover link for the chat widget.
//! 5. The widget's **anonymous discovery**: `GET <discover link>` with an
//!    `Origin` header → the `anonApplications` link.
//!
//! Each step, or a run of steps, is a [`Flow`]: a state machine that builds
//! `http::Request`s and consumes `http::Response`s. It owns no socket, no
//! clock and no randomness: the driver passes the time, an [`Entropy`] for
//! request ids and jitter, and AAD tokens when asked. See [`Flow`] for the
//! drive loop. Redirects, retries with backoff, the 401 challenge and the
//! rule that the AAD token only goes over https to trusted hosts are all
//! decided here, so every transport behaves the same.
//!
//! [`aad`] has the client credentials grant: [`aad::TokenFlow`], the same
//! kind of state machine (one drive loop, [`Driveable`], serves both), over
//! pure request builders and response parsers. [`Transport`] is the one
//! trait a transport implements.

pub mod aad;
mod challenge;
pub mod chat;
pub mod classify;
mod config;
mod entropy;
mod error;
mod flow;
mod request;
mod retry;
mod secret;
mod transport;

pub use challenge::{Challenge, ChallengeError, challenges, parse_challenges};
pub use config::{
    AllowedOrigins, ApplicationSessionId, Audience, Config, ConfigBuilder, ConfigError,
    DEFAULT_DISCOVER_URL, DEFAULT_MAX_REDIRECTS, EndpointId, MAX_ALLOWED_ORIGINS_CHARS,
    MAX_SESSION_ID_CHARS, Origin, OriginError, OriginPolicy, REAL_SERVICE_HOSTS, SessionIdError,
    TrustedHosts, is_loopback_http,
};
pub use entropy::{ClientRequestId, Entropy, InvalidRequestId, SeededEntropy};
pub use error::{
    ApiError, ApiErrorKind, AuthError, AuthErrorKind, Correlation, DisplayUrl, Error, ServerError,
    ServerErrorKind, Step, UntrustedError, UntrustedReason, UsageError,
};
pub use flow::{
    AnonymousDiscovery, Bootstrapped, Capabilities, ChatAnswer, Discovery, Driveable, Flow,
    MintRequest, Output, RequestId, TokenNeed, Transmit, WidgetToken,
};
pub use request::{
    CLIENT_REQUEST_ID, JSON_UTF8, X_MS_CORRELATION_ID, X_MS_DIAGNOSTICS, X_MS_SERVER_FQDN,
    with_endpoint_id,
};
pub use retry::{RetryAfter, RetryPolicy, parse_retry_after};
pub use secret::{AccessToken, ClientAssertion, ClientSecret, PrivateKey, PsatToken, redact};
pub use transport::{Transport, TransportError, TransportErrorKind};

#[cfg(feature = "mock")]
pub use transport::MockTransport;

/// The HAL model this crate reads and writes, re-exported.
pub use hal_model;

/// The crates in this crate's public API, re-exported so that a transport's
/// author depends on them at the versions it uses: `http` (requests and
/// answers), `bytes` (bodies) and `async_trait` (to implement
/// [`Transport`]).
pub use async_trait;
pub use bytes;
pub use http;
