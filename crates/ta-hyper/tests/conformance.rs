//! `HyperTransport` against the transport conformance kit: HTTP/1.1 and
//! HTTP/2, redirects returned, the body limit, TLS and connect failures,
//! timeouts, resets, and no header added.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::time::Duration;

use ta_emulator::conformance::{Expectations, Peer};
use ta_hyper::{HyperTransport, Limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_transport_conforms() {
    let peer = Peer::start().await.unwrap();
    let limits = Limits::default()
        .with_max_body_bytes(64 * 1024)
        .with_call_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(2));
    let transport = HyperTransport::builder()
        .webpki_roots(false)
        .add_root_certificates_pem(peer.ca_pem().as_bytes())
        .unwrap()
        .limits(limits)
        .build()
        .unwrap();
    let report = peer
        .check(
            &transport,
            &Expectations::new(64 * 1024, Duration::from_secs(2)),
        )
        .await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 12);
}

/// A transport that adds a `User-Agent` and follows one redirect: the kit
/// names exactly those two faults.
struct Sloppy(HyperTransport);

#[async_trait::async_trait]
impl ta_protocol::Transport for Sloppy {
    async fn send(
        &self,
        mut request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, ta_protocol::TransportError> {
        request
            .headers_mut()
            .insert("user-agent", http::HeaderValue::from_static("sloppy/1.0"));
        let uri = request.uri().clone();
        let response = self.0.send(request).await?;
        match response.headers().get("location") {
            Some(location) if response.status() == 307 => {
                let target = format!(
                    "{}://{}{}",
                    uri.scheme_str().unwrap(),
                    uri.authority().unwrap(),
                    location.to_str().unwrap()
                );
                let mut again = http::Request::new(bytes::Bytes::new());
                *again.uri_mut() = target.parse().unwrap();
                self.0.send(again).await
            }
            _ => Ok(response),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_names_what_a_transport_gets_wrong() {
    let peer = Peer::start().await.unwrap();
    let inner = HyperTransport::builder()
        .webpki_roots(false)
        .add_root_certificates_pem(peer.ca_pem().as_bytes())
        .unwrap()
        .limits(
            Limits::default()
                .with_call_timeout(Duration::from_secs(2))
                .with_request_timeout(Duration::from_secs(2)),
        )
        .build()
        .unwrap();
    let expect = Expectations::new(ta_hyper::DEFAULT_MAX_BODY_BYTES, Duration::from_secs(2));
    let report = peer.check(&Sloppy(inner), &expect).await;
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    assert_eq!(
        failed,
        ["no_added_headers", "redirect_returned"],
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("user-agent: sloppy/1.0"), "{text}");
}
