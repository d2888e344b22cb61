//! The hyper transport against the emulator, over real TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
    FaultKind, FaultRule, Route, Trigger,
};
use ta_hyper::{HyperTransport, Limits};
use ta_protocol::aad::{ClientCredential, ClientId, TokenEndpoint};
use ta_protocol::*;

async fn emulator(config: EmulatorConfig) -> (Emulator, HyperTransport) {
    let emu = Emulator::start(config).await.unwrap();
    let transport = HyperTransport::builder()
        .add_root_certificates_pem(emu.ca_pem().unwrap_or_default().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    (emu, transport)
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

#[tokio::test]
async fn https_with_the_emulator_ca_over_http2_and_one_pooled_connection() {
    let (emu, transport) = emulator(EmulatorConfig::default()).await;
    for _ in 0..10 {
        let response = transport.send(get(&emu.discover_url())).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let _: hal_model::Discover = hal_model::from_slice(response.body()).unwrap();
    }
    let stats = emu.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.tls_handshakes, 1);
}

#[tokio::test]
async fn http1_when_http2_is_not_offered() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = HyperTransport::builder()
        .add_root_certificates_pem(emu.ca_pem().unwrap().as_bytes())
        .unwrap()
        .http2(false)
        .build()
        .unwrap();
    let response = transport.send(get(&emu.discover_url())).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
}

#[tokio::test]
async fn an_unknown_ca_is_a_tls_error_and_nothing_was_sent() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = HyperTransport::builder().build().unwrap();
    let err = transport.send(get(&emu.discover_url())).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Tls, "{err}");
    assert!(!err.may_have_been_sent());
    assert_eq!(emu.stats().total_requests(), 0);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = HyperTransport::builder().build().unwrap();
    let err = transport
        .send(get(&format!(
            "https://127.0.0.1:{port}/platformservice/discover"
        )))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err}");
    assert!(!err.may_have_been_sent());
    assert!(err.kind().is_retryable());
}

#[tokio::test]
async fn timeouts() {
    let (emu, _) = emulator(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::Latency { millis: 2_000 },
        Trigger::Always,
    )))
    .await;
    let transport = HyperTransport::builder()
        .add_root_certificates_pem(emu.ca_pem().unwrap().as_bytes())
        .unwrap()
        .limits(Limits::default().with_request_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = transport.send(get(&emu.discover_url())).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Timeout);
    assert!(err.may_have_been_sent());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_body_limit_fails_cleanly() {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let transport = HyperTransport::builder()
        .add_root_certificates_pem(emu.ca_pem().unwrap().as_bytes())
        .unwrap()
        .limits(Limits::default().with_max_body_bytes(64))
        .build()
        .unwrap();
    let err = transport.send(get(&emu.discover_url())).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::BodyTooLarge, "{err}");
    assert!(err.to_string().contains("64 bytes"), "{err}");
}

#[tokio::test]
async fn broken_connections_are_io_errors_that_may_have_been_sent() {
    for fault in [FaultKind::CloseBeforeResponse, FaultKind::CloseMidBody] {
        let (emu, transport) = emulator(EmulatorConfig::default().with_fault(FaultRule::on(
            Route::Discovery,
            fault.clone(),
            Trigger::Once,
        )))
        .await;
        let err = transport.send(get(&emu.discover_url())).await.unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Io, "{fault:?}: {err}");
        assert!(err.may_have_been_sent());
        // The next request goes through.
        assert_eq!(
            transport
                .send(get(&emu.discover_url()))
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (emu, transport) = emulator(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::Redirect {
            host: "localhost".into(),
        },
        Trigger::Always,
    )))
    .await;
    let response = transport.send(get(&emu.discover_url())).await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(emu.stats().total_requests(), 1);
}

#[tokio::test]
async fn relative_uris_are_refused_before_sending() {
    let transport = HyperTransport::builder().build().unwrap();
    let err = transport
        .send(get("/platformservice/discover"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::InvalidRequest);
    assert!(!err.may_have_been_sent());
}

#[tokio::test]
async fn bad_root_pem_is_a_build_error() {
    let err = HyperTransport::builder()
        .add_root_certificates_pem(b"not a pem")
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    let err = HyperTransport::builder()
        .add_root_certificates_file(std::path::Path::new("/nonexistent/ca.pem"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

/// The whole SA flow through this transport.
#[tokio::test]
async fn the_protocol_flow_end_to_end() {
    let (emu, transport) = emulator(EmulatorConfig::default()).await;
    let config: Arc<Config> = Config::builder(&emu.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared();
    let request = MintRequest::new(
        ApplicationSessionId::new("hyper-e2e").unwrap(),
        AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default()).unwrap(),
    );
    let mut flow = Flow::bootstrap(config, request, None, Box::new(SeededEntropy::new(3)));
    let mut entropy = SeededEntropy::new(4);
    let done = loop {
        match flow.poll_output(Instant::now()) {
            Some(Output::Transmit(t)) => {
                let (id, request) = t.into_parts();
                match transport.send(request).await {
                    Ok(r) => flow.handle_response(id, r, Instant::now()).unwrap(),
                    Err(e) => flow.handle_transport_error(id, e, Instant::now()).unwrap(),
                }
            }
            Some(Output::NeedToken(need)) => {
                let request = aad::token_request(
                    &TokenEndpoint::parse(&emu.token_url(), false).unwrap(),
                    &ClientId::new(DEFAULT_CLIENT_ID).unwrap(),
                    &need.audience,
                    &ClientCredential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
                    &entropy.client_request_id(),
                );
                let response = transport.send(request).await.unwrap();
                flow.handle_token(
                    aad::parse_token_response(&response)
                        .map(|t| t.access_token)
                        .map_err(Into::into),
                    std::time::Instant::now(),
                )
                .unwrap();
            }
            Some(Output::Timeout(at)) => tokio::time::sleep_until(at.into()).await,
            Some(Output::Done(result)) => break result.unwrap(),
            _ => panic!("stuck"),
        }
    };
    assert!(done.token.token.expose().starts_with("psat="));
    // One pooled connection per host name: 127.0.0.1 (discovery, AAD) and
    // localhost (the API).
    assert_eq!(emu.stats().connections_accepted, 2);
}

#[test]
fn impossible_limits_are_build_errors() {
    for limits in [
        Limits::default().with_max_body_bytes(0),
        Limits::default().with_connect_timeout(Duration::ZERO),
        Limits::default().with_request_timeout(Duration::ZERO),
        Limits::default().with_request_timeout(Duration::from_secs(120)),
    ] {
        assert!(
            HyperTransport::builder().limits(limits).build().is_err(),
            "{limits:?}"
        );
    }
}
