//! The hyper 1.x + hyper-rustls transport for [`ta_protocol`].
//!
//! [`HyperTransport`] implements [`ta_protocol::Transport`] with a pooled
//! `hyper-util` client over rustls (the `ring` provider):
//!
//! - HTTP/1.1 and HTTP/2, chosen by ALPN; connections are kept and reused.
//! - Trust: the Mozilla roots (`webpki-roots`) by default, plus extra roots
//!   from PEM. Certificate and host-name verification cannot be turned off.
//! - A connect timeout, a timeout for the answer's head, and a timeout for the
//!   whole call; a body size limit (1 MiB by default) that fails cleanly.
//! - No redirect is followed and nothing is retried: `ta-protocol` decides.
//! - Failures are [`TransportError`]s classified by kind, and say whether the
//!   request may have reached the server.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ta_protocol::Transport;
//! let transport = ta_hyper::HyperTransport::builder()
//!     .add_root_certificates_pem(b"-----BEGIN CERTIFICATE-----\n...")?
//!     .build()?;
//! let request = http::Request::get("https://api.skypeforbusiness.com/platformservice/discover")
//!     .body(bytes::Bytes::new())?;
//! let response = transport.send(request).await?;
//! # let _ = response;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ta_protocol::classify::{ErrorChain, FailurePhase};
use ta_protocol::{Transport, TransportError, TransportErrorKind};

/// The default limit on an answer's body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A PEM input holds no certificate, or a malformed one.
    #[error("root certificates from {origin}: {reason}")]
    RootCertificates {
        /// Where they came from (a path, or "bytes").
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// A root certificate was refused by rustls.
    #[error("root certificate refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// A setting is out of range.
    #[error("{0}")]
    Setting(&'static str),
}

/// Timeouts and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Time to establish TCP (hyper-util shares it among the addresses
    /// tried).
    pub connect_timeout: Duration,
    /// Time from sending to the answer's head (TLS included on a new
    /// connection).
    pub request_timeout: Duration,
    /// Time for the whole call, body included.
    pub call_timeout: Duration,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
        }
    }
}

impl Limits {
    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the timeout for the answer's head.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the timeout for the whole call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the largest accepted body.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets how long an idle pooled connection is kept.
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sets how many idle connections are kept per host (HTTP/1.1 needs one
    /// per request in flight to reuse them all; HTTP/2 multiplexes one).
    pub fn with_pool_max_idle_per_host(mut self, connections: usize) -> Self {
        self.pool_max_idle_per_host = connections;
        self
    }
}

/// Builds a [`HyperTransport`].
#[derive(Debug)]
pub struct HyperTransportBuilder {
    roots: RootCertStore,
    webpki_roots: bool,
    limits: Limits,
    http2: bool,
}

impl HyperTransportBuilder {
    /// Trusts the Mozilla roots (on by default).
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.webpki_roots = on;
        self
    }

    /// Trusts every certificate in a PEM document as a root.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, BuildError> {
        add_pem(&mut self.roots, pem, "bytes")?;
        Ok(self)
    }

    /// Trusts every certificate in a PEM file as a root.
    pub fn add_root_certificates_file(
        mut self,
        path: &std::path::Path,
    ) -> Result<Self, BuildError> {
        let origin = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| BuildError::RootCertificates {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        add_pem(&mut self.roots, &pem, &origin)?;
        Ok(self)
    }

    /// Sets the timeouts and limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Offers HTTP/2 by ALPN (on by default).
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Builds the transport. Needs a Tokio runtime when used, not here.
    pub fn build(mut self) -> Result<HyperTransport, BuildError> {
        let limits = self.limits;
        if limits.max_body_bytes == 0
            || limits.call_timeout.is_zero()
            || limits.request_timeout.is_zero()
            || limits.connect_timeout.is_zero()
        {
            return Err(BuildError::Setting(
                "the body limit and every timeout must be positive",
            ));
        }
        if limits.request_timeout > limits.call_timeout {
            return Err(BuildError::Setting(
                "the request timeout must not exceed the call timeout",
            ));
        }
        if self.webpki_roots {
            self.roots
                .extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.roots.is_empty() {
            return Err(BuildError::Setting("no root certificate is trusted"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // No ALPN here: the hyper-rustls builder sets it (and panics if set).
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1();
        let https = if self.http2 {
            https.enable_http2().wrap_connector(http)
        } else {
            https.wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(limits.pool_idle_timeout)
            .pool_max_idle_per_host(limits.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(HyperTransport { client, limits })
    }
}

fn add_pem(roots: &mut RootCertStore, pem: &[u8], origin: &str) -> Result<(), BuildError> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| BuildError::RootCertificates {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        roots.add(cert)?;
        added += 1;
    }
    if added == 0 {
        return Err(BuildError::RootCertificates {
            origin: origin.to_owned(),
            reason: "no certificate found".to_owned(),
        });
    }
    Ok(())
}

/// A [`Transport`] over a pooled hyper client with rustls.
///
/// Cheap to clone (the pool is shared); share one per process.
#[derive(Debug, Clone)]
pub struct HyperTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    limits: Limits,
}

impl HyperTransport {
    /// A builder with the defaults: Mozilla roots, HTTP/2 offered, default
    /// [`Limits`].
    pub fn builder() -> HyperTransportBuilder {
        HyperTransportBuilder {
            roots: RootCertStore::empty(),
            webpki_roots: true,
            limits: Limits::default(),
            http2: true,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let response =
            tokio::time::timeout(self.limits.request_timeout, self.client.request(request))
                .await
                .map_err(|_| TransportError::new(TransportErrorKind::Timeout, true))?
                .map_err(classify)?;
        let (parts, body) = response.into_parts();
        if let Some(length) = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if length > self.limits.max_body_bytes as u64 {
                return Err(TransportError::new(TransportErrorKind::BodyTooLarge, true)
                    .with_source(BodyTooLarge(self.limits.max_body_bytes)));
            }
        }
        let body = Limited::new(body, self.limits.max_body_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    TransportError::new(TransportErrorKind::BodyTooLarge, true)
                        .with_source(BodyTooLarge(self.limits.max_body_bytes))
                } else {
                    TransportError::new(TransportErrorKind::Io, true)
                        .with_source(Cause(e.to_string()))
                }
            })?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}

#[async_trait::async_trait]
impl Transport for HyperTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if request.uri().scheme().is_none() || request.uri().host().is_none() {
            return Err(
                TransportError::new(TransportErrorKind::InvalidRequest, false)
                    .with_source(Cause("the request URI is not absolute".to_owned())),
            );
        }
        tokio::time::timeout(self.limits.call_timeout, self.call(request))
            .await
            .map_err(|_| TransportError::new(TransportErrorKind::Timeout, true))?
    }
}

/// The body limit that was exceeded.
#[derive(Debug, thiserror::Error)]
#[error("the answer's body exceeds {0} bytes")]
struct BodyTooLarge(usize);

/// A cause kept as text (hyper's errors are not `Clone`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Cause(String);

/// Sorts a hyper-util client error by kind and by whether the request may
/// have been sent, with the walk every transport shares
/// ([`ta_protocol::classify`]).
fn classify(error: hyper_util::client::legacy::Error) -> TransportError {
    let tls = ErrorChain::new(&error).find::<rustls::Error>().is_some();
    let phase = if error.is_connect() {
        FailurePhase::Connecting
    } else {
        FailurePhase::Exchanging
    };
    ta_protocol::classify::classify(&error, phase, tls)
}
