//! The chat across two replicas behind a round-robin balancer: the
//! platform's callbacks for one conversation reach both, and the replica
//! that does not hold the chat sends them on to the one that does, so the
//! whole chat runs as on one replica.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "chat/rig.rs"]
mod rig;

use std::sync::Arc;
use std::time::Duration;

use rig::*;
use ta_bootstrap::chat::{ReplicaName, SwitchboardOptions};
use ta_protocol::Transport;
use ta_protocol::chat::Timers;
use ta_test_support::balancer::Balancer;
use ta_widget_service::Metrics;
use ta_widget_service::replicas::Replicas;
use ta_widget_service::server::Server;

struct Replica {
    metrics: Arc<Metrics>,
    service: ta_widget_service::WidgetService,
}

fn counter(metrics: &Metrics, line_start: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The emulator's counters once `done` holds of them (or after `limit`).
async fn until(
    emulator: &ta_emulator::Emulator,
    limit: Duration,
    done: impl Fn(&ta_emulator::StatsSnapshot) -> bool,
) -> ta_emulator::StatsSnapshot {
    let end = tokio::time::Instant::now() + limit;
    loop {
        let stats = emulator.stats();
        if done(&stats) || tokio::time::Instant::now() >= end {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_runs_whole_when_its_callbacks_reach_both_replicas() {
    let config = ta_emulator::EmulatorConfig {
        chat: quick_chat(),
        ..ta_emulator::EmulatorConfig::default()
    };
    let setup = ta_test_support::setup(config).await;
    let listeners = [
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    ];
    let addrs = listeners.each_ref().map(|l| l.local_addr().unwrap());
    let names = ["r0", "r1"].map(|n| ReplicaName::new(n).unwrap());
    let peer_client: Arc<dyn Transport> =
        Arc::new(ta_hyper::HyperTransport::builder().build().unwrap());
    let mut replicas = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let other = 1 - i;
        let metrics = Arc::new(Metrics::new());
        // Each replica has its own bootstrapper: its own AAD token and
        // caches, as separate processes would.
        let bootstrapper = setup.builder().observer(Arc::clone(&metrics) as _).build();
        let peers = Replicas::new(names[i].clone(), Arc::clone(&peer_client))
            .with_peer(names[other].clone(), &format!("http://{}", addrs[other]))
            .unwrap();
        let service = chat_service(
            &setup,
            bootstrapper,
            Arc::clone(&metrics),
            plan(),
            SwitchboardOptions::default()
                .with_timers(Timers::uniform(Duration::from_secs(5)))
                .with_replica(names[i].clone()),
            |auth| auth,
            |endpoint| endpoint.with_replicas(peers),
        );
        tokio::spawn(
            Server::new(listener, service.router())
                .metrics(Arc::clone(&metrics))
                .serve(std::future::pending()),
        );
        replicas.push(Replica { metrics, service });
    }
    // The platform calls the balancer; so does the widget.
    let (balancer, lb_addr) = Balancer::start(addrs.to_vec()).await;
    setup
        .emulator
        .set_callback_url(&format!("http://{lb_addr}/v1/callback"))
        .unwrap();

    let mut widget =
        Widget::from_service(Arc::clone(&setup.transport), &format!("http://{lb_addr}")).await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    let secs = Duration::from_secs(10);
    widget
        .poll_until(secs, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    let stats = until(&setup.emulator, secs, |s| s.chat.agents_joined == 1).await;
    assert_eq!(stats.chat.agents_joined, 1, "{stats:?}");
    assert_eq!(widget.say("hello, anyone?").await, 201);
    // The agent's answer reaches the visitor: the bridge works across the
    // replicas.
    widget
        .poll_until(secs, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = until(&setup.emulator, secs, |s| {
        s.chat.conversations_open == 0 && s.chat.conversations_ended >= 1
    })
    .await;
    assert_eq!(stats.chat.conversations_open, 0, "{stats:?}");
    assert_eq!(stats.chat.callbacks_refused, 0);
    assert_eq!(stats.chat.callbacks_failed, 0);
    // The meeting was ended by the SA, as on one replica.
    assert!(
        stats
            .chat
            .calls
            .iter()
            .any(|c| c.as_str() == "terminateOnlineMeeting"),
        "{:?}",
        stats.chat.calls
    );
    // Both replicas got callbacks; one chat was opened, on one of them; the
    // other sent its share on.
    let sent = balancer.sent();
    assert!(sent.iter().all(|&n| n >= 3), "{sent:?}");
    let started: Vec<u64> = replicas
        .iter()
        .map(|r| counter(&r.metrics, "ta_chats_started_total"))
        .collect();
    assert_eq!(started.iter().sum::<u64>(), 1, "{started:?}");
    let holder = started.iter().position(|&n| n == 1).unwrap();
    let other = &replicas[1 - holder];
    let forwarded = counter(
        &other.metrics,
        "ta_chat_callbacks_total{outcome=\"forwarded\"}",
    );
    assert!(forwarded >= 2, "{}", other.metrics.encode());
    assert_eq!(
        counter(
            &replicas[holder].metrics,
            "ta_chat_callbacks_total{outcome=\"forwarded\"}"
        ),
        0
    );
    assert_eq!(
        counter(
            &other.metrics,
            "ta_chat_callbacks_total{outcome=\"ignored\"}"
        ),
        0,
        "no callback was lost"
    );
    assert_eq!(other.service.switchboard().unwrap().open_chats(), 0);
}
