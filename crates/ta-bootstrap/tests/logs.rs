//! The library's flows at `trace` level: no secret, AAD token or psat token
//! may reach a log line. (`serve`'s logs: the CLI crate's `serve_logs.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use ta_bootstrap::*;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_protocol::{Flow, Origin, OriginPolicy, SeededEntropy};
use ta_test_support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SENTINEL_SECRET: &str = "SENTINEL-secret-7f3a9c";

#[tokio::test(flavor = "current_thread")]
async fn no_secret_or_token_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = EmulatorConfig::default()
        .with_app(|app| app.client_secret = Some(SENTINEL_SECRET.to_owned()))
        .with_fault(FaultRule::on(
            Route::Mint,
            FaultKind::RevokeAadTokens,
            Trigger::EveryNth(3),
        ))
        .with_fault(FaultRule::on(
            Route::Application,
            FaultKind::Status {
                status: 503,
                retry_after_secs: Some(0),
            },
            Trigger::Once,
        ));
    let s = setup_with(
        config,
        Credential::Secret(ta_protocol::ClientSecret::new(SENTINEL_SECRET)),
    )
    .await;
    let mut secrets = vec![SENTINEL_SECRET.to_owned()];
    for _ in 0..6 {
        let minted = s
            .bootstrapper
            .mint(origins("https://contoso.com"))
            .await
            .unwrap();
        secrets.push(minted.token.expose().to_owned());
        secrets.push(
            minted
                .token
                .jwt()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap()
                .to_owned(),
        );
        // The chat client's step, whose URL carries the token.
        let flow = Flow::anonymous_discovery(
            Arc::clone(s.bootstrapper.config()),
            minted.discover_url.clone(),
            Origin::parse("https://contoso.com", OriginPolicy::default()).unwrap(),
            Box::new(SeededEntropy::new(1)),
        );
        let found = s.bootstrapper.drive(flow).await.unwrap();
        assert!(found.cors_allows_origin());
    }
    let aad_token = s.tokens.cached(s.bootstrapper.config().audience()).unwrap();
    secrets.push(aad_token.expose().to_owned());

    // A failing AAD request with another sentinel.
    let wrong = setup_with(
        EmulatorConfig::default(),
        Credential::Secret(ta_protocol::ClientSecret::new("SENTINEL-wrong-41b2")),
    )
    .await;
    assert!(
        wrong
            .bootstrapper
            .mint(origins("https://contoso.com"))
            .await
            .is_err()
    );
    secrets.push("SENTINEL-wrong-41b2".to_owned());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("minted a widget token"),
        "the flows were logged"
    );
    assert!(logs.contains("AAD refused"), "the AAD failure was logged");
    assert!(
        logs.contains("client_request_id"),
        "requests were logged with their ids"
    );
    assert!(logs.lines().count() > 50, "{}", logs.lines().count());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret or token reached the logs"
        );
    }
    assert!(!logs.contains("eyJ"), "no JWT-shaped text in the logs");
    assert!(!logs.contains("SENTINEL"), "no sentinel in the logs");
}
