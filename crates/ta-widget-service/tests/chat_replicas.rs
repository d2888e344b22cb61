//! The chat across two replicas behind a round-robin balancer: the
//! platform's callbacks for one conversation reach both, and the replica
//! that does not hold the chat sends them on to the one that does, so the
//! whole chat runs as on one replica. Against peers that record what they
//! get: only authenticated callbacks are sent on, once, with the owner's
//! answer relayed; a peer that refuses or never answers is a 502.
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
use ta_test_support::peer::{ANSWER, RecordingPeer, platform_token};
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
            |endpoint| endpoint.with_replicas(peers).unwrap(),
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
    // At least one: which callbacks the round robin sends where depends on
    // the widget's own requests through the same balancer.
    assert!(forwarded >= 1, "{}", other.metrics.encode());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_callbacks_are_sent_on_once_and_a_dead_peer_is_a_502() {
    let setup = ta_test_support::setup(ta_emulator::EmulatorConfig::default()).await;
    let owner = RecordingPeer::start().await;
    // r2 refuses connections; r3 takes them and never answers.
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let name = |n: &str| ReplicaName::new(n).unwrap();
    let peers = Replicas::new(
        name("r0"),
        Arc::new(ta_hyper::HyperTransport::builder().build().unwrap()),
    )
    .with_peer(name("r1"), &format!("http://{}", owner.addr))
    .unwrap()
    .with_peer(name("r2"), &format!("http://{refused}"))
    .unwrap()
    .with_peer(
        name("r3"),
        &format!("http://{}", silent.local_addr().unwrap()),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let bootstrapper = setup.builder().observer(Arc::clone(&metrics) as _).build();
    let service = chat_service(
        &setup,
        bootstrapper,
        Arc::clone(&metrics),
        plan(),
        SwitchboardOptions::default().with_replica(name("r0")),
        |auth| auth,
        |endpoint| endpoint.with_replicas(peers).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::new(listener, service.router()).serve(std::future::pending()));
    let token = platform_token(&setup.emulator);
    let post = |context: &str, authorization: Option<&str>, forwarded_by: Option<&str>| {
        let mut request = http::Request::post(format!(
            "http://{addr}/v1/callback?callbackContext={context}"
        ))
        .header("content-type", "application/json")
        .header("x-ms-correlation-id", "corr-1");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(value) = forwarded_by {
            request = request.header(ta_widget_service::replicas::FORWARDED_BY, value);
        }
        let request = request
            .body(bytes::Bytes::from_static(b"{\"sender\":[]}"))
            .unwrap();
        let client = Arc::clone(&setup.transport);
        async move { client.send(request).await.unwrap() }
    };
    let outcome = |o: &str| {
        counter(
            &metrics,
            &format!("ta_chat_callbacks_total{{outcome=\"{o}\"}}"),
        )
    };

    // Unauthenticated, or signed by no one: refused here, never sent on.
    assert_eq!(post("r1_cAAAA", None, None).await.status(), 401);
    assert_eq!(
        post("r1_cAAAA", Some("Bearer e30.e30."), None)
            .await
            .status(),
        401
    );
    assert!(owner.got().is_empty(), "an unchecked callback was sent on");

    // Authenticated: sent on once, unchanged, marked; the owner's answer
    // and the headers the platform acts on come back.
    let answer = post("r1_cAAAA", Some(&token), None).await;
    assert_eq!(answer.status(), 409);
    assert_eq!(answer.body().as_ref(), ANSWER.as_bytes());
    assert_eq!(answer.headers()["retry-after"], "7");
    assert_eq!(answer.headers()["www-authenticate"], "Bearer");
    assert!(answer.headers().get("x-hop").is_none());
    let got = owner.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uri, "/v1/callback?callbackContext=r1_cAAAA");
    assert_eq!(got[0].headers["authorization"], token.as_str());
    assert_eq!(got[0].headers["x-ms-correlation-id"], "corr-1");
    assert_eq!(
        got[0].headers[ta_widget_service::replicas::FORWARDED_BY],
        "r0"
    );
    assert_eq!(got[0].body.as_ref(), b"{\"sender\":[]}");
    assert_eq!(outcome("forwarded"), 1);

    // Already sent on once (by r5): never again.
    let answer = post("r1_cAAAA", Some(&token), Some("r5")).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(owner.got().len(), 1);
    assert_eq!(outcome("ignored"), 1);

    // A replica no list names: ignored, as a chat that ended.
    assert_eq!(post("r9_cAAAA", Some(&token), None).await.status(), 200);
    assert_eq!(outcome("ignored"), 2);
    // Until the routes change, while the service runs: r9 is added.
    let live = service.replicas().unwrap();
    let owner_base = format!("http://{}", owner.addr);
    assert_eq!(
        live.set_routes(
            [
                (name("r1"), owner_base.as_str()),
                (name("r2"), &format!("http://{refused}")),
                (
                    name("r3"),
                    &format!("http://{}", silent.local_addr().unwrap())
                ),
                (name("r9"), owner_base.as_str()),
            ],
            None
        ),
        Ok(true)
    );
    assert_eq!(post("r9_cAAAA", Some(&token), None).await.status(), 409);
    assert_eq!(owner.got().len(), 2);
    assert_eq!(outcome("forwarded"), 2);

    // A peer that refuses the connection, and one that never answers (5 s).
    // The refused one at once, the silent one after the 5 s timeout.
    for (context, waited) in [("r2_cAAAA", 0..4), ("r3_cAAAA", 5..15)] {
        let started = std::time::Instant::now();
        let answer = post(context, Some(&token), None).await;
        assert_eq!(answer.status(), 502, "{context}");
        let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
        assert_eq!(body["error"], "replica_unreachable", "{context}");
        let secs = started.elapsed().as_secs();
        assert!(waited.contains(&secs), "{context}: {secs} s");
    }
    assert_eq!(outcome("forward_failed"), 2);
    assert_eq!(owner.got().len(), 2);
    drop(silent);
}

#[test]
fn the_switchboard_and_the_replicas_must_name_the_same_replica() {
    // Checked without a running world: only the names matter.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let setup = ta_test_support::setup(ta_emulator::EmulatorConfig::default()).await;
        let name = |n: &str| ReplicaName::new(n).unwrap();
        let client: Arc<dyn Transport> =
            Arc::new(ta_hyper::HyperTransport::builder().build().unwrap());
        for options in [
            SwitchboardOptions::default(),
            SwitchboardOptions::default().with_replica(name("r1")),
        ] {
            let mut refused = None;
            chat_service(
                &setup,
                setup.builder().build(),
                Arc::new(Metrics::new()),
                plan(),
                options,
                |auth| auth,
                |endpoint| {
                    let replicas = Replicas::new(name("r0"), Arc::clone(&client));
                    match endpoint.clone().with_replicas(replicas) {
                        Ok(_) => panic!("accepted"),
                        Err(e) => refused = Some(e.to_string()),
                    }
                    endpoint
                },
            );
            let refused = refused.unwrap();
            assert!(
                refused.contains("r0") && refused.contains("same name"),
                "{refused}"
            );
        }
    });
}
