//! The chat end to end over real HTTP: the widget (played here) against the
//! emulator's UCWA, the platform calling the service back, the service's
//! switchboard bridging the chat to a simulated agent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "chat/rig.rs"]
mod rig;

use std::time::Duration;

use rig::*;
use ta_emulator::Route;

const WHOLE_FLOW: [&str; 7] = [
    "startAdhocMeeting",
    "acceptAndBridge",
    "addMessaging",
    "bridgedParticipants",
    "sendMessage",
    "addParticipant",
    "terminateOnlineMeeting",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_chat_with_a_scripted_agent() {
    let rig = Rig::start(quick_chat()).await;
    let mut widget = rig.widget().await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    let secs = Duration::from_secs(10);
    widget
        .poll_until(secs, |e| {
            e["link"]["rel"] == "messagingInvitation" && e["status"] == "Success"
        })
        .await;
    let welcome = widget
        .poll_until(secs, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    assert_eq!(
        welcome["_embedded"]["message"]["_links"]["participant"]["title"],
        "Help Desk"
    );
    // The agent joins; the visitor writes; the agent types, then answers.
    rig.until(secs, |s| s.chat.agents_joined == 1).await;
    let scraped = rig.scrape().await;
    assert!(scraped.contains("\nta_chats_open 1\n"), "{scraped}");
    assert_eq!(widget.say("Where is my order?").await, 201);
    assert_eq!(widget.post("setIsTyping").await, 204);
    let typing = widget
        .poll_until(secs, |e| {
            e["in"]["rel"] == "typingParticipants" && e["type"] == "added"
        })
        .await;
    assert_eq!(typing["link"]["title"], "Anna (Support)");
    let answer = widget
        .poll_until(secs, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(
        answer["_embedded"]["message"]["_links"]["participant"]["title"],
        "Anna (Support)"
    );
    // The visitor ends the chat.
    assert_eq!(widget.post("stopMessaging").await, 204);
    widget
        .poll_until(secs, |e| {
            e["link"]["rel"] == "conversation" && e["type"] == "deleted"
        })
        .await;

    let stats = rig.until(secs, |s| s.chat.conversations_open == 0).await;
    assert_eq!(
        stats.chat.calls, WHOLE_FLOW,
        "the SA's requests upstream, in order"
    );
    assert_eq!(stats.chat.conversations_open, 0, "{:?}", stats.chat);
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
    assert_eq!(stats.chat.callbacks_refused, 0);
    assert_eq!(rig.open_chats_become(0, secs).await, 0);
    let scraped = rig.scrape().await;
    assert!(scraped.contains("\nta_chats_open 0\n"), "{scraped}");
    let metrics = rig.metrics_text();
    for line in [
        "ta_chats_started_total 1",
        "ta_chats_bridged_total 1",
        "ta_chats_ended_total{by=\"visitor\"} 1",
        "ta_chat_messages_total{from=\"service\"} 1",
        "ta_chat_messages_total{from=\"visitor\"} 1",
        "ta_chat_messages_total{from=\"agent\"} 1",
        "ta_chat_agent_join_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meetings_callbacks_at_a_per_conversation_url() {
    let config = ta_emulator::EmulatorConfig {
        chat: quick_chat(),
        ..ta_emulator::EmulatorConfig::default()
    };
    // The meeting's callbacks go to this URL (the chat's id appended), not
    // to the registered one with a context from the body: the chat only
    // bridges if they arrive and are routed.
    let rig = Rig::start_full(
        config,
        |a| a,
        plan(),
        |mut options, addr| {
            options.meeting_callback = Some(
                url::Url::parse(&format!(
                    "http://localhost:{}/v1/callback?leg=meeting",
                    addr.port()
                ))
                .unwrap(),
            );
            options
        },
    )
    .await;
    let mut widget = rig.widget().await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    let secs = Duration::from_secs(10);
    widget
        .poll_until(secs, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    rig.until(secs, |s| s.chat.agents_joined == 1).await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(secs, |s| s.chat.conversations_open == 0).await;
    assert_eq!(stats.chat.calls, WHOLE_FLOW);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_s_callbacks_cross_the_network_distance_too() {
    let config = ta_emulator::EmulatorConfig {
        chat: quick_chat(),
        network: ta_emulator::NetworkDistance::new(20, 0),
        ..ta_emulator::EmulatorConfig::default()
    };
    let rig = Rig::start_with(config, |auth| auth, plan()).await;
    let within = Duration::from_secs(20);
    let mut widget = rig.widget().await;
    widget.open_chat(within).await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    rig.until(within, |s| s.chat.conversations_open == 0).await;
    assert_eq!(rig.open_chats_become(0, within).await, 0);
    // Every round trip is accounted for: one per request answered, one per
    // new connection and one more for its TLS, and one per callback sent (once
    // the last requests in flight are answered).
    let accounted = |stats: &ta_emulator::StatsSnapshot| {
        let requests: u64 = stats
            .requests
            .iter()
            .filter(|c| !matches!(c.route, Route::Stats | Route::Control))
            .map(|c| c.count)
            .sum();
        requests + stats.connections_accepted + stats.tls_handshakes + stats.chat.callback_attempts
    };
    let stats = rig
        .until(within, |s| s.network_round_trips == accounted(s))
        .await;
    assert!(stats.chat.callbacks_delivered >= 3, "{:?}", stats.chat);
    assert_eq!(stats.network_round_trips, accounted(&stats), "{stats:?}");
}
