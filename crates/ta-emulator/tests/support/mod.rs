//! A raw HTTPS client that trusts the emulator's CA, and a minimal
//! `ta_protocol::Transport` over it.
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

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn client(emulator: &Emulator) -> HttpClient {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = emulator.ca_pem() {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Without TCP_NODELAY, small HTTP/2 writes wait for delayed ACKs (~40 ms
    // a request).
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        let body = self
            .body
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&self.body);
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Answer {
    send(client, "GET", url, headers, "").await
}

pub async fn start(config: EmulatorConfig) -> (Emulator, HttpClient) {
    let emulator = Emulator::start(config).await.unwrap();
    let client = client(&emulator);
    (emulator, client)
}

/// An AAD v2 token for the default application.
pub async fn aad_token(emulator: &Emulator, client: &HttpClient) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", DEFAULT_CLIENT_ID)
        .append_pair("client_secret", DEFAULT_CLIENT_SECRET)
        .append_pair("scope", &format!("{}/.default", emulator.audience()))
        .finish();
    let answer = send(
        client,
        "POST",
        &emulator.token_url(),
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["access_token"].as_str().unwrap().to_owned()
}

pub fn api(emulator: &Emulator, path_and_query: &str) -> String {
    format!(
        "https://localhost:{}{path_and_query}",
        emulator.addr().port()
    )
}

pub fn disco(emulator: &Emulator, path_and_query: &str) -> String {
    format!(
        "https://127.0.0.1:{}{path_and_query}",
        emulator.addr().port()
    )
}

pub const ENDPOINT_Q: &str = "endpointId=sip:helpdesk@contoso.com";

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Mints with the default application; returns the answer.
pub async fn mint(
    emulator: &Emulator,
    client: &HttpClient,
    token: &str,
    session: &str,
    origins: &str,
) -> Answer {
    let body =
        serde_json::json!({"applicationSessionId": session, "allowedOrigins": origins}).to_string();
    send(
        client,
        "POST",
        &api(
            emulator,
            &format!(
                "/platformservice/v1/applications/1627259584/anonApplicationTokens?{ENDPOINT_Q}"
            ),
        ),
        &[
            ("authorization", &bearer(token)),
            ("content-type", "application/json; charset=utf-8"),
        ],
        &body,
    )
    .await
}

/// A `ta_protocol::Transport` over the test client (the real one is
/// `ta-hyper`'s).
pub struct TestTransport(pub HttpClient);

#[async_trait::async_trait]
impl ta_protocol::Transport for TestTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, ta_protocol::TransportError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = self.0.request(request).await.map_err(|e| {
            ta_protocol::TransportError::new(ta_protocol::TransportErrorKind::Other, true)
                .with_source(e)
        })?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| {
            ta_protocol::TransportError::new(ta_protocol::TransportErrorKind::Io, true)
                .with_source(e)
        })?;
        Ok(http::Response::from_parts(parts, body.to_bytes()))
    }
}
