//! `serve` with the chat on, against an emulator playing the platform: a
//! chat runs through it, and a shutdown mid-chat ends the chat upstream
//! (the visitor's messaging stopped, the meeting terminated) before the
//! process exits; a reload keeps an open chat going.
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
use std::time::Duration;

use bin::*;
use ta_emulator::{ChatConfig, DEFAULT_APP_ID_URI, EmulatorConfig};
use ta_protocol::Transport;
use ta_test_support::widget::{Widget, is_message};

const SECS: Duration = Duration::from_secs(15);

/// An emulator whose agent joins within 200 ms and whose polls are held 1 s.
async fn chat_deployment() -> Deployment {
    let mut chat = ChatConfig {
        long_poll_ms: 1_000,
        ..ChatConfig::default()
    };
    chat.agents[0].join_after_ms = 200;
    deployment(EmulatorConfig {
        chat,
        ..EmulatorConfig::default()
    })
    .await
}

/// `serve`'s arguments with the chat on, listening on `listen`.
fn chat_args(d: &Deployment, listen: &str) -> Vec<String> {
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(d));
    args.extend([
        "--allowed-origin".to_owned(),
        "https://contoso.com".to_owned(),
        "--listen".to_owned(),
        listen.to_owned(),
        "--callback-audience".to_owned(),
        DEFAULT_APP_ID_URI.to_owned(),
        "--callback-issuer".to_owned(),
        d.emulator.callback_issuer(),
        "--callback-keys-url".to_owned(),
        d.emulator.callback_keys_url(),
        "--agent".to_owned(),
        "sip:anna@contoso.com=Anna (Support)".to_owned(),
    ]);
    args
}

/// A client trusting the emulator's CA.
fn client(d: &Deployment) -> Arc<dyn Transport> {
    Arc::new(
        ta_hyper::HyperTransport::builder()
            .add_root_certificates_pem(d.emulator.ca_pem().unwrap().as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_through_serve_and_a_shutdown_that_ends_it_upstream() {
    let d = chat_deployment().await;
    let served = spawn_serve_with(chat_args(&d, "127.0.0.1:0"), 1).await;
    assert!(
        served.stdout[0].starts_with("taking the platform's callbacks on http://127.0.0.1:"),
        "{:?}",
        served.stdout
    );
    d.emulator
        .set_callback_url(&format!("{}/v1/callback", served.base()))
        .unwrap();
    let mut widget = Widget::from_service(client(&d), &served.base()).await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    widget
        .poll_until(SECS, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    assert_eq!(widget.say("Hello").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    served.wait_for_log("agent joined").await;
    // A reload keeps the chat going.
    served.signal("HUP");
    served.wait_for_log("configuration reloaded").await;
    assert_eq!(widget.say("One more thing").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Let me check that for you."))
        .await;

    // doctor checks the callback endpoint: reachable, and refusing what is
    // not signed; and finds a URL that is not one.
    let mut doctor = command();
    doctor
        .arg("doctor")
        .args(bin::args(&d))
        .args(["--callback-url", &format!("{}/v1/callback", served.base())]);
    let output = run(doctor).await;
    let report = text(&output.stdout);
    assert!(
        report.contains("[PASS] callback endpoint answers, and refuses unsigned callbacks — GET"),
        "{report}"
    );
    assert_eq!(output.status.code(), Some(0), "{report}");
    let mut doctor = command();
    doctor
        .arg("doctor")
        .args(bin::args(&d))
        .args(["--callback-url", &format!("{}/healthz", served.base())]);
    let output = run(doctor).await;
    let report = text(&output.stdout);
    assert!(
        report.contains("[FAIL] callback endpoint") && report.contains("not 401"),
        "{report}"
    );
    assert_ne!(output.status.code(), Some(0));

    // Stopped mid-chat: the chat is ended upstream first.
    let code = served.stop().await;
    assert_eq!(code, Some(0));
    let stats = d.emulator.stats();
    assert_eq!(stats.chat.conversations_open, 0, "{:?}", stats.chat);
    assert_eq!(
        stats.chat.ended,
        ["visitor:stopped_by_service", "meeting:terminated"]
    );
    let calls = &stats.chat.calls;
    assert_eq!(
        calls[calls.len() - 2..],
        ["stopMessaging", "terminateOnlineMeeting"],
        "{calls:?}"
    );
    widget
        .poll_until(SECS, |e| {
            e["link"]["rel"] == "conversation" && e["type"] == "deleted"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_balancer_run_one_chat() {
    let d = chat_deployment().await;
    // Two free loopback ports, known before start: each replica's peers.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    // One list for both, as one ConfigMap would give: each skips itself.
    let peers = format!(
        "r0=http://127.0.0.1:{};r1=http://127.0.0.1:{}",
        ports[0], ports[1]
    );
    let mut replicas = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("r{i}");
        let listen = format!("127.0.0.1:{port}");
        let env = [
            ("TA_REPLICA_NAME", name.as_str()),
            ("TA_PEERS", peers.as_str()),
        ];
        replicas.push(spawn_serve_with_env(chat_args(&d, &listen), 1, &env).await);
    }
    let backends = ports
        .iter()
        .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let (balancer, lb) = ta_test_support::balancer::Balancer::start(backends).await;
    d.emulator
        .set_callback_url(&format!("http://{lb}/v1/callback"))
        .unwrap();
    let mut widget = Widget::from_service(client(&d), &format!("http://{lb}")).await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    widget
        .poll_until(SECS, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    assert_eq!(widget.say("Hello").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(widget.say("One more thing").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Let me check that for you."))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let started = std::time::Instant::now();
    while d.emulator.stats().chat.conversations_open > 0 {
        assert!(started.elapsed() < SECS, "{:?}", d.emulator.stats().chat);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = d.emulator.stats();
    assert_eq!(
        stats.chat.callbacks_refused + stats.chat.callbacks_failed,
        0
    );
    assert!(
        balancer.sent().iter().all(|&n| n >= 3),
        "{:?}",
        balancer.sent()
    );
    // One replica opened the chat; the other sent the callbacks it got on.
    let opened: Vec<usize> = replicas
        .iter()
        .map(|r| r.log_count("a visitor's chat opened"))
        .collect();
    assert_eq!(opened.iter().sum::<usize>(), 1, "{opened:?}");
    let other = &replicas[1 - opened.iter().position(|&n| n == 1).unwrap()];
    let metrics = other.base() + "/metrics";
    let text = client(&d)
        .send(
            http::Request::get(metrics)
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(text.body()).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ta_chat_callbacks_total{outcome=\"forwarded\"}")),
        "{text}"
    );
    for replica in replicas {
        assert_eq!(replica.stop().await, Some(0));
    }
}
