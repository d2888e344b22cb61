//! `serve --mint-ticket-key-file`: each widget-token request must carry a
//! ticket the site's backend signed for the page's origin; without one it
//! is refused before anything goes upstream. A key file that cannot be
//! used stops `serve` at start with an error naming the file, not the key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "common/bin.rs"]
mod bin;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ta_emulator::EmulatorConfig;
use ta_protocol::Transport as _;
use ta_widget_service::mint_check::sign_ticket;

const KEY: &str = "the site's widget ticket key: 32+ bytes";
const ORIGIN: &str = "https://contoso.com";

fn key_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ta-{name}-{}.key", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

fn serve_args(d: &bin::Deployment, key: &std::path::Path) -> Vec<String> {
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(d));
    args.extend(
        [
            "--allowed-origin",
            ORIGIN,
            "--listen",
            "127.0.0.1:0",
            "--mint-ticket-key-file",
            &key.display().to_string(),
        ]
        .map(str::to_owned),
    );
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widget_token_needs_the_sites_ticket() {
    let d = bin::deployment(EmulatorConfig::default()).await;
    // The key as an operator writes it: a line, with its newline.
    let key = key_file("ticket", &format!("{KEY}\n"));
    let served = bin::spawn_serve_with(serve_args(&d, &key), 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let post = |body: String| {
        let request = http::Request::post(&served.url)
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(Bytes::from(body))
            .unwrap();
        client.send(request)
    };
    let refused = post("{}".to_owned()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let answer: serde_json::Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(answer["error"], "ticket_required", "{answer}");
    assert_eq!(d.emulator.stats().psat_tokens_minted, 0);
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let ticket = sign_ticket(KEY.as_bytes(), ORIGIN, expires, "page-view-42").unwrap();
    let minted = post(serde_json::json!({ "ticket": ticket }).to_string())
        .await
        .unwrap();
    assert_eq!(minted.status(), 200, "{:?}", minted.body());
    assert_eq!(d.emulator.stats().psat_tokens_minted, 1);
    drop(served);
    std::fs::remove_file(&key).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_that_cannot_be_used_stops_serve_at_start() {
    let d = bin::deployment(EmulatorConfig::default()).await;
    let short = key_file("ticket-short", "SENTINEL-short\n");
    let missing = std::env::temp_dir().join("ta-no-such-ticket.key");
    for (path, says) in [
        (&short, "at least 32 bytes"),
        (&missing, "ta-no-such-ticket.key"),
    ] {
        let output = bin::run({
            let mut command = bin::command();
            command.args(serve_args(&d, path));
            command
        })
        .await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = bin::text(&output.stderr);
        assert!(stderr.contains("--mint-ticket-key-file"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("SENTINEL"), "the key was shown: {stderr}");
    }
    std::fs::remove_file(&short).unwrap();
}
