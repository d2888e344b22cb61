//! A second transport on another HTTP stack: reqwest, with rustls on ring
//! (reqwest's `rustls-no-provider` feature and a ring config handed to it,
//! so no aws-lc is compiled). It passes the transport conformance kit,
//! HTTP/2 included, then mints a widget token against the emulator.
//!
//! ```sh
//! cargo run -p ta-examples --example reqwest_transport
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use ta_bootstrap::{Bootstrapper, ClientCredentialsProvider, Credential, TokenProvider};
use ta_emulator::conformance::{Expectations, Peer};
use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator};
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::bytes::{Bytes, BytesMut};
use ta_protocol::classify::{ErrorChain, FailurePhase, classify};
use ta_protocol::{
    AllowedOrigins, ClientSecret, Config, OriginPolicy, Transport, TransportError,
    TransportErrorKind, async_trait, http,
};

/// The `Transport` over a `reqwest::Client`: no redirect followed, no proxy,
/// no header added, a body limit, failures sorted by
/// [`ta_protocol::classify`].
struct ReqwestTransport {
    client: reqwest::Client,
    max_body_bytes: usize,
}

impl ReqwestTransport {
    /// Trusts only the CA certificates in `roots_pem` (a real deployment
    /// would add the webpki roots), gives up on a call after `timeout`.
    fn new(
        roots_pem: &str,
        timeout: Duration,
        max_body_bytes: usize,
    ) -> Result<Self, Box<dyn Error>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // A preconfigured config keeps its own ALPN: offer both versions.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            max_body_bytes,
        })
    }
}

/// A reqwest failure as the retry policy reads it.
fn failure(error: reqwest::Error) -> TransportError {
    let tls = ErrorChain::new(&error).find::<rustls::Error>().is_some();
    let phase = if error.is_connect() {
        FailurePhase::Connecting
    } else {
        FailurePhase::Exchanging
    };
    if error.is_timeout() && !tls {
        // reqwest's message quotes the URL, which may carry a token.
        return TransportError::new(TransportErrorKind::Timeout, !error.is_connect())
            .with_source(error.without_url());
    }
    classify(&error, phase, tls)
}

fn too_large() -> TransportError {
    TransportError::new(TransportErrorKind::BodyTooLarge, true)
}

#[async_trait::async_trait]
impl Transport for ReqwestTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if request.uri().scheme().is_none() || request.uri().host().is_none() {
            return Err(TransportError::new(
                TransportErrorKind::InvalidRequest,
                false,
            ));
        }
        let request =
            reqwest::Request::try_from(request.map(reqwest::Body::from)).map_err(|e| {
                TransportError::new(TransportErrorKind::InvalidRequest, false)
                    .with_source(e.without_url())
            })?;
        let mut response = self.client.execute(request).await.map_err(failure)?;
        if response
            .content_length()
            .is_some_and(|length| length > self.max_body_bytes as u64)
        {
            return Err(too_large());
        }
        let mut answer = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = answer.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(failure)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        answer
            .body(body.freeze())
            .map_err(|e| TransportError::new(TransportErrorKind::Other, true).with_source(e))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // 1. The conformance kit, with a short timeout so that its `timeout`
    //    check is quick.
    let peer = Peer::start().await?;
    let limit = 64 * 1024;
    let under_test = ReqwestTransport::new(peer.ca_pem(), Duration::from_secs(2), limit)?;
    let report = peer
        .check(
            &under_test,
            &Expectations::new(limit, Duration::from_secs(2)),
        )
        .await;
    println!("{report}");
    if !report.passed() {
        return Err("the reqwest transport does not conform".into());
    }

    // 2. A widget token over it, against the emulator.
    let emulator = Emulator::start(ta_emulator::EmulatorConfig::default()).await?;
    let transport: Arc<dyn Transport> = Arc::new(ReqwestTransport::new(
        emulator.ca_pem().ok_or("the emulator has no CA")?,
        Duration::from_secs(30),
        1 << 20,
    )?);
    let tokens = Arc::new(
        ClientCredentialsProvider::builder(
            Arc::clone(&transport),
            TokenEndpoint::parse(&emulator.token_url(), false)?,
            ClientId::new(DEFAULT_CLIENT_ID)?,
            Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
        )
        .build(),
    );
    let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()?
        .into_shared();
    let bootstrapper = Bootstrapper::builder(
        config,
        transport,
        Arc::clone(&tokens) as Arc<dyn TokenProvider>,
    )
    .build();
    let origins = AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())?;
    let minted = bootstrapper.mint(origins).await?;
    let origins: Vec<&str> = minted
        .allowed_origins
        .as_slice()
        .iter()
        .map(|o| o.as_str())
        .collect();
    println!(
        "minted over reqwest: a widget token for {} expiring {} (discover link on {})",
        origins.join(", "),
        minted.expiry,
        minted.discover_url.host_str().unwrap_or_default()
    );
    Ok(())
}
