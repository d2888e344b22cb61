//! Shared set-up of the binary tests that run the chat: an emulator whose
//! agent answers quickly, a client trusting its CA, and one whole chat run
//! through a set of `serve` replicas behind a round-robin balancer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ta_emulator::{ChatConfig, EmulatorConfig};
use ta_protocol::Transport;
use ta_test_support::widget::{Widget, is_message};

use super::bin::{Deployment, Served, deployment};

/// How long a chat step may take.
pub const SECS: Duration = Duration::from_secs(15);

/// An emulator whose agent joins within 200 ms and whose polls are held 1 s.
pub async fn chat_deployment() -> Deployment {
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

/// The flags that check the platform's callbacks against the emulator's
/// (audience, issuer, keys).
pub fn callback_flags(d: &Deployment) -> Vec<String> {
    vec![
        "--callback-audience".to_owned(),
        ta_emulator::DEFAULT_APP_ID_URI.to_owned(),
        "--callback-issuer".to_owned(),
        d.emulator.callback_issuer(),
        "--callback-keys-url".to_owned(),
        d.emulator.callback_keys_url(),
    ]
}

/// A client trusting the emulator's CA.
pub fn client(d: &Deployment) -> Arc<dyn Transport> {
    Arc::new(
        ta_hyper::HyperTransport::builder()
            .add_root_certificates_pem(d.emulator.ca_pem().unwrap().as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    )
}

/// Free loopback addresses, known before the replicas start (so that each
/// can be told the others').
pub fn free_loopback_addresses(n: usize) -> Vec<SocketAddr> {
    // All held until all are known, so that no two are the same.
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// The widget signs in and starts a chat: the welcome, the visitor's
/// "Hello", and the agent's first answer.
pub async fn chat_until_the_agent_answers(widget: &mut Widget) {
    widget.open_chat(SECS).await;
    assert_eq!(widget.say("Hello").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
}

/// Runs one whole chat (the agent's welcome and two answers, then the
/// visitor stops) from a page on `origin` through `replicas`, listening on `backends`, behind a
/// round-robin balancer that the platform calls back; then checks that
/// every callback was accepted, that the balancer sent at least 3 requests
/// (the widget's and the callbacks) to each replica, that exactly one
/// replica opened the chat and that another sent callbacks on to it.
pub async fn one_chat_across(
    d: &Deployment,
    origin: &str,
    replicas: &[Served],
    backends: Vec<SocketAddr>,
) {
    let (balancer, lb) = ta_test_support::balancer::Balancer::start(backends).await;
    d.emulator
        .set_callback_url(&format!("http://{lb}/v1/callback"))
        .unwrap();
    let mut widget = Widget::try_from_service(client(d), &format!("http://{lb}"), origin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    chat_until_the_agent_answers(&mut widget).await;
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
    let opened: Vec<usize> = replicas
        .iter()
        .map(|r| r.log_count("a visitor's chat opened"))
        .collect();
    assert_eq!(opened.iter().sum::<usize>(), 1, "{opened:?}");
    let mut forwarded = 0;
    for replica in replicas {
        let metrics = replica.base() + "/metrics";
        let answer = client(d)
            .send(
                http::Request::get(metrics)
                    .body(bytes::Bytes::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        forwarded += String::from_utf8_lossy(answer.body())
            .lines()
            .filter_map(|l| l.strip_prefix("ta_chat_callbacks_total{outcome=\"forwarded\"} "))
            .map(|n| n.trim().parse::<f64>().unwrap())
            .sum::<f64>() as u64;
    }
    assert!(forwarded >= 1, "no callback was sent on to its replica");
}
