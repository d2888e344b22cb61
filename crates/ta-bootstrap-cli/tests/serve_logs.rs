//! `serve` at `RUST_LOG=trace`: no secret, AAD token or psat token may reach
//! a log line, in either log format, on the success and the failure paths.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "common/bin.rs"]
mod bin;

use std::sync::Arc;

use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};

const SENTINEL_SECRET: &str = "SENTINEL-secret-7f3a9c";

/// The `serve` binary at `RUST_LOG=trace`, in both log formats, through
/// warm-up, widget tokens, refusals, a reload on SIGHUP (the secret read
/// from a file) and shutdown: no secret and no token in any line.
/// `serve` for the deployment at `RUST_LOG=trace`, its secret read from
/// `secret_file`, logging in `format`.
async fn serve_at_trace_level(
    d: &bin::Deployment,
    secret_file: &std::path::Path,
    format: &str,
) -> bin::Served {
    let mut args = vec![
        "serve".to_owned(),
        "--log-format".to_owned(),
        format.to_owned(),
    ];
    args.extend(bin::deployment_args(d));
    args.extend(
        [
            "--client-secret-file",
            &secret_file.display().to_string(),
            "--allowed-origin",
            "https://contoso.com",
            "--listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned),
    );
    // The spawn helpers clear RUST_LOG; set it again.
    bin::spawn_serve_with_env(args, 0, &[("RUST_LOG", "trace")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_at_trace_level_logs_no_secret_or_token() {
    let d = bin::deployment(
        EmulatorConfig::default()
            .with_app(|app| app.client_secret = Some(SENTINEL_SECRET.to_owned())),
    )
    .await;
    let secret_file = std::env::temp_dir().join(format!("ta-logs-{}.txt", uuid::Uuid::new_v4()));
    std::fs::write(&secret_file, SENTINEL_SECRET).unwrap();
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    for format in ["text", "json"] {
        let served = serve_at_trace_level(&d, &secret_file, format).await;
        let mut secrets = vec![SENTINEL_SECRET.to_owned()];
        for origin in [
            "https://contoso.com",
            "https://contoso.com",
            "https://evil.example",
        ] {
            let response = ta_protocol::Transport::send(
                &client,
                http::Request::post(&served.url)
                    .header("origin", origin)
                    .body(bytes::Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap();
            if response.status() == 200 {
                let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
                let token = body["token"].as_str().unwrap();
                secrets.push(token.to_owned());
                secrets.push(token.split('.').nth(1).unwrap().to_owned());
            }
        }
        assert_eq!(secrets.len(), 5);
        served.signal("HUP");
        served.wait_for_log("configuration reloaded").await;
        let stderr = std::sync::Arc::clone(&served.stderr);
        assert_eq!(served.stop().await, Some(0));
        let logs = stderr.lock().unwrap().join("\n");
        assert!(
            logs.contains("served a widget token"),
            "{format}: the flow was logged"
        );
        assert!(
            logs.lines().count() > 50,
            "{format}: {}",
            logs.lines().count()
        );
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "{format}: a secret or token reached the logs"
            );
        }
        assert!(
            !logs.contains("eyJ"),
            "{format}: no JWT-shaped text in the logs"
        );
        assert!(
            !logs.contains("SENTINEL"),
            "{format}: no sentinel in the logs"
        );
    }
    let _ = std::fs::remove_file(&secret_file);
}

/// A `POST /v1/widget-token` from the allowed origin: status and body.
async fn widget_token(client: &ta_hyper::HyperTransport, url: &str) -> (u16, serde_json::Value) {
    let response = ta_protocol::Transport::send(
        client,
        http::Request::post(url)
            .header("origin", "https://contoso.com")
            .body(bytes::Bytes::new())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = serde_json::from_slice(response.body()).unwrap();
    (response.status().as_u16(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_failures_at_trace_level_log_no_secret_or_token() {
    const WRONG_SECRET: &str = "SENTINEL-wrong-secret-51d2";
    let d = bin::deployment(
        EmulatorConfig::default()
            .with_app(|app| app.client_secret = Some(SENTINEL_SECRET.to_owned())),
    )
    .await;
    let secret_file = std::env::temp_dir().join(format!("ta-logs-{}.txt", uuid::Uuid::new_v4()));
    std::fs::write(&secret_file, WRONG_SECRET).unwrap();
    let served = serve_at_trace_level(&d, &secret_file, "text").await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();

    // AAD refuses the wrong secret: warm-up and a widget request fail.
    served.wait_for_log("warm-up failed").await;
    let (status, body) = widget_token(&client, &served.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "upstream_authentication");

    // The right secret, on SIGHUP.
    std::fs::write(&secret_file, SENTINEL_SECRET).unwrap();
    served.signal("HUP");
    served.wait_for_log("configuration reloaded").await;
    let readyz = format!("{}/readyz", served.base());
    for _ in 0..200 {
        let ready = ta_protocol::Transport::send(
            &client,
            http::Request::get(&readyz)
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
        if ready.status() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut tokens = Vec::new();
    // The API refuses the AAD token once (revoked): a new one is fetched.
    d.emulator.inject(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeAadTokens,
        Trigger::Once,
    ));
    let (status, body) = widget_token(&client, &served.url).await;
    assert_eq!(status, 200, "{body}");
    tokens.push(body["token"].as_str().unwrap().to_owned());
    // An answer cut in the middle of the psat token, and one that is not
    // JSON: errors whose details (with a body excerpt) go to the log.
    for fault in [FaultKind::TruncatedBody, FaultKind::MalformedBody] {
        d.emulator.clear_faults();
        d.emulator
            .inject(FaultRule::on(Route::Mint, fault, Trigger::Once));
        let (status, body) = widget_token(&client, &served.url).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"], "upstream_error");
    }
    d.emulator.clear_faults();
    let (status, body) = widget_token(&client, &served.url).await;
    assert_eq!(status, 200, "{body}");
    tokens.push(body["token"].as_str().unwrap().to_owned());
    assert!(d.emulator.stats().aad_tokens_issued >= 2);

    let stderr = Arc::clone(&served.stderr);
    assert_eq!(served.stop().await, Some(0));
    let logs = stderr.lock().unwrap().join("\n");
    for needle in ["warm-up failed", "minting failed", "AADSTS"] {
        assert!(logs.contains(needle), "the failures were logged: {needle}");
    }
    for token in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "a psat token reached the logs"
        );
        let payload = token.split('.').nth(1).unwrap();
        assert!(!logs.contains(payload), "a psat payload reached the logs");
    }
    assert!(!logs.contains("eyJ"), "no JWT-shaped text in the logs");
    assert!(!logs.contains("SENTINEL"), "no secret in the logs");
    let _ = std::fs::remove_file(&secret_file);
}
