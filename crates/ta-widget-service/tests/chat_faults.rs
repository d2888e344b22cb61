//! The chat under faults, each ending in a clear state on both sides: no
//! conversation left open, no agent left in a dead meeting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "chat/rig.rs"]
mod rig;

use std::time::{Duration, Instant};

use rig::*;
use serde_json::json;
use ta_emulator::{
    CallbackFaults, EmulatorConfig, FaultKind, FaultRule, Route, StatsSnapshot, Trigger,
};

const SECS: Duration = Duration::from_secs(10);

async fn bridged_chat(rig: &Rig) -> Widget {
    let mut widget = rig.widget().await;
    widget.open_chat(SECS).await;
    widget
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_twice_out_of_order_and_late() {
    let mut chat = quick_chat();
    chat.duplicate_callbacks = true;
    chat.reorder_callbacks = true;
    chat.callback_delay_ms = 30;
    let rig = Rig::start(chat).await;
    let mut widget = rig.widget().await;
    widget.open_chat(SECS).await;
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    assert_eq!(widget.say("Hello?").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    let mut calls = stats.chat.calls.clone();
    calls.sort();
    let mut expected = vec![
        "acceptAndBridge",
        "addMessaging",
        "addParticipant",
        "bridgedParticipants",
        "sendMessage",
        "startAdhocMeeting",
        "terminateOnlineMeeting",
    ];
    expected.sort_unstable();
    assert_eq!(
        calls, expected,
        "each call once, whatever the order of the callbacks"
    );
    assert!(
        stats
            .faults_fired
            .get("callback_duplicated")
            .is_some_and(|n| *n > 5),
        "{:?}",
        stats.faults_fired
    );
    assert!(
        stats.faults_fired.contains_key("callback_reordered"),
        "{:?}",
        stats.faults_fired
    );
    assert!(
        rig.metrics_text()
            .contains("ta_chat_callbacks_total{outcome=\"duplicate\"}")
    );
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_faults_switched_on_and_off_mid_chat() {
    let rig = Rig::start(quick_chat()).await;
    let emulator = &rig.setup.emulator;
    assert_eq!(emulator.callback_faults(), CallbackFaults::NONE);
    let mut widget = bridged_chat(&rig).await;
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    let fired = |name: &str| rig.stats().faults_fired.get(name).copied().unwrap_or(0);
    assert_eq!(fired("callback_duplicated"), 0);
    let mut faults = CallbackFaults::NONE;
    faults.duplicate = true;
    faults.delay_ms = 20;
    emulator.set_callback_faults(faults);
    assert_eq!(emulator.callback_faults(), faults);
    assert_eq!(widget.say("Hello?").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    emulator.set_callback_faults(CallbackFaults::NONE);
    // Copies already on their way are counted once they land.
    let mut duplicated = fired("callback_duplicated");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = fired("callback_duplicated");
        if now == duplicated {
            break;
        }
        duplicated = now;
    }
    assert!(duplicated > 0, "{:?}", rig.stats().faults_fired);
    assert!(fired("callback_delayed") > 0);
    assert_eq!(widget.say("One more thing").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Let me check that for you."))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    assert_eq!(
        fired("callback_duplicated"),
        duplicated,
        "no duplicate once the fault is off"
    );
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
}

/// A bridged chat with an agent in; the visitor stops while the SA's next
/// two chat calls (its terminateOnlineMeeting) meet `fault`: the meeting
/// must still be terminated, with one call more. The emulator's counters
/// at the end.
async fn terminate_meets_twice(fault: impl FnOnce(&Rig) -> FaultKind) -> (Rig, StatsSnapshot) {
    let rig = Rig::start(quick_chat()).await;
    let mut widget = bridged_chat(&rig).await;
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    let calls_before = rig.stats().requests(Route::ChatCall);
    let fault = fault(&rig);
    rig.setup
        .emulator
        .inject(FaultRule::on(Route::ChatCall, fault, Trigger::FirstN(2)));
    assert_eq!(widget.post("stopMessaging").await, 204);
    widget
        .poll_until(SECS, |e| {
            e["link"]["rel"] == "conversation" && e["type"] == "deleted"
        })
        .await;
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    assert_eq!(stats.chat.conversations_open, 0, "{:?}", stats.chat);
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
    assert_eq!(stats.requests(Route::ChatCall) - calls_before, 3);
    assert_eq!(rig.open_chats_become(0, SECS).await, 0);
    (rig, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_whose_terminate_fails_for_a_while_is_still_terminated() {
    // Two 500s: past the call's own retries, the chat sends it again.
    let (rig, _) = terminate_meets_twice(|_| FaultKind::Status {
        status: 500,
        retry_after_secs: None,
    })
    .await;
    assert!(
        rig.metrics_text()
            .contains("ta_chats_ended_total{by=\"visitor\"} 1"),
        "{}",
        rig.metrics_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_whose_terminate_is_refused_for_a_while_is_still_terminated() {
    // Redirected twice to a host the SA does not trust: it refuses to
    // follow (no retry within the call), and the chat sends the call again
    // until the redirect is gone.
    let (_, stats) = terminate_meets_twice(|rig| FaultKind::Redirect {
        host: format!("127.0.0.2:{}", rig.setup.emulator.addr().port()),
    })
    .await;
    assert_eq!(stats.requests_with_status(Route::ChatCall, 307), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_never_joins() {
    let mut chat = quick_chat();
    chat.agents[0].never_joins = true;
    let rig = Rig::start(chat).await;
    let mut widget = bridged_chat(&rig).await;
    widget
        .poll_until(SECS, |e| {
            is_message(
                e,
                "Sorry, no agent is available right now. Please try again later.",
            )
        })
        .await;
    widget
        .poll_until(SECS, |e| {
            e["link"]["rel"] == "conversation" && e["type"] == "deleted"
        })
        .await;
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    assert_eq!(
        stats.chat.ended,
        ["visitor:stopped_by_service", "meeting:terminated"]
    );
    assert_eq!(stats.chat.agents_joined, 0);
    assert_eq!(rig.open_chats_become(0, SECS).await, 0);
    assert!(
        rig.metrics_text()
            .contains("ta_chats_ended_total{by=\"no_agent\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_vanishes_mid_chat() {
    let rig = Rig::start(quick_chat()).await;
    let widget = bridged_chat(&rig).await;
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    assert_eq!(widget.say("brb").await, 201);
    // No more polls: the agent's answer is never fetched, and the
    // application expires.
    drop(widget);
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    assert_eq!(
        stats.chat.ended,
        ["visitor:expired", "meeting:terminated"],
        "{:?}",
        stats.chat
    );
    assert_eq!(stats.chat.applications, 0);
    assert_eq!(rig.open_chats_become(0, SECS).await, 0);
    assert!(
        rig.metrics_text()
            .contains("ta_chats_ended_total{by=\"visitor\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_poll_that_times_out_loses_nothing() {
    let rig = Rig::start(quick_chat()).await;
    let mut widget = rig.widget().await;
    let app = widget.sign_in().await;
    let before = widget.events.clone();
    let started = Instant::now();
    assert!(widget.poll().await.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "held for the long-poll time"
    );
    assert_eq!(
        widget.events, before,
        "an empty answer acknowledges nothing"
    );
    // Asked twice at once, the first poll is released with PGetReplaced.
    let client = std::sync::Arc::clone(&widget.client);
    let (url, token) = (widget.events.clone(), widget.token.clone());
    let first = tokio::spawn(async move { send(&*client, "GET", &url, Some(&token), None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = std::sync::Arc::clone(&widget.client);
    let (url, token) = (widget.events.clone(), widget.token.clone());
    let second = tokio::spawn(async move { send(&*client, "GET", &url, Some(&token), None).await });
    let (status, answer, _) = first.await.unwrap();
    assert_eq!(
        (status, answer["subcode"].as_str()),
        (409, Some("PGetReplaced")),
        "{answer}"
    );
    assert_eq!(widget.start_chat(&app).await, 201);
    let (status, answer, _) = second.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        answer["sender"].as_array().is_some_and(|s| !s.is_empty()),
        "{answer}"
    );
    // The batch the second poll took is served again at the same ack:
    // nothing is lost, nothing doubled.
    widget
        .poll_until(SECS, |e| {
            is_message(e, "Welcome! An agent will be with you shortly.")
        })
        .await;
    let welcomes = widget
        .seen
        .iter()
        .filter(|e| is_message(e, "Welcome! An agent will be with you shortly."))
        .count();
    assert_eq!(welcomes, 1);
    let mut wrong = widget.events.clone();
    wrong = wrong.replace("ack=", "ack=9");
    let (status, answer, _) = send(&*widget.client, "GET", &wrong, Some(&widget.token), None).await;
    assert_eq!(status, 200);
    assert!(
        answer["_links"]["resync"]["href"].as_str().is_some(),
        "{answer}"
    );
    assert_eq!(widget.post("stopMessaging").await, 204);
    rig.until(SECS, |s| s.chat.conversations_open == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_outlives_its_token() {
    let config = EmulatorConfig {
        chat: quick_chat(),
        psat_lifetime_secs: 2,
        ..EmulatorConfig::default()
    };
    let rig = Rig::start_with(config, |a| a, plan()).await;
    let mut widget = bridged_chat(&rig).await;
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    // Past twice the token's life, polling all along.
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        widget.poll().await;
    }
    assert_eq!(widget.say("Still works?").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    // A browser's preflight on the application's resources still admits its
    // origin, with no live token minted for it; not another origin, and not
    // a new application.
    let anon = widget.absolute("/ucwa/psanon/v1/applications");
    let client = &*widget.client;
    admits_only_the_page(client, "GET", &widget.events).await;
    admits_only_the_page(client, "POST", &widget.messaging_link("sendMessage")).await;
    assert_eq!(preflight(client, "POST", &anon, ORIGIN).await, None);
    // The expired token opens no new application.
    let body = json!({"culture": "en-US", "userAgent": "chat-test/1.0"});
    let (status, answer, _) = send(
        &*widget.client,
        "POST",
        &anon,
        Some(&widget.token),
        Some(body),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
    // Signed out, the application is gone: its page may still read the
    // 404 its next poll gets (its origin, and no other, is still admitted).
    let (status, _, _) = send(client, "DELETE", &widget.base, Some(&widget.token), None).await;
    assert_eq!(status, 204);
    let (status, answer, headers) =
        send(client, "GET", &widget.events, Some(&widget.token), None).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    admits_only_the_page(client, "GET", &widget.events).await;
}

/// A browser's preflight of `method` on `url` admits the page's origin and
/// no other.
async fn admits_only_the_page(client: &dyn ta_protocol::Transport, method: &str, url: &str) {
    assert_eq!(
        preflight(client, method, url, ORIGIN).await.as_deref(),
        Some(ORIGIN),
        "{method} {url}"
    );
    assert_eq!(
        preflight(client, method, url, "https://evil.example").await,
        None,
        "{method} {url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widget_cannot_end_another_visitors_chat() {
    let rig = Rig::start(quick_chat()).await;
    let first = bridged_chat(&rig).await;
    let mut second = rig.widget().await;
    let app = second.sign_in().await;
    let own = app["id"].as_str().unwrap().to_owned();
    // The first visitor's stop link, under the second's application, with
    // the second's token.
    let stop = first.messaging_link("stopMessaging");
    let first_app = first.base.rsplit('/').next().unwrap().to_owned();
    let forged = stop.replace(
        &format!("/applications/{first_app}/"),
        &format!("/applications/{own}/"),
    );
    assert_ne!(forged, stop);
    let (status, answer, _) =
        send(&*second.client, "POST", &forged, Some(&second.token), None).await;
    assert_eq!(
        (status, answer["subcode"].as_str()),
        (404, Some("ConversationNotFound")),
        "{answer}"
    );
    // And the second's token on the first's application is refused.
    let (status, _, _) = send(&*second.client, "POST", &stop, Some(&second.token), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        rig.stats().chat.conversations_open,
        2,
        "the first chat and its meeting are still open"
    );
    assert_eq!(first.post("stopMessaging").await, 204);
    rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    let _ = second.poll().await;
}
