//! Whatever a callback holds, reading it and handing it to a chat never
//! panics, and a chat given any facts in any order stays within its calls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};
use ta_protocol::chat::{
    Agent, Bridge, CallFailure, ChatCallKind, ChatId, Plan, Timers, read_callback,
};

fn rel() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("service:messagingInvitation".to_owned()),
        Just("service:onlineMeetingInvitation".to_owned()),
        Just("service:participantInvitation".to_owned()),
        Just("ms:rtc:saas:conversation".to_owned()),
        Just("service:conversationBridge".to_owned()),
        Just("service:messaging".to_owned()),
        Just("service:onlineMeeting".to_owned()),
        Just("service:participant".to_owned()),
        Just("service:message".to_owned()),
        "[a-z:]{0,12}",
    ]
}

fn href() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/c/p2p".to_owned()),
        Just("/c/conf".to_owned()),
        Just("https://api.example/c/conf/x".to_owned()),
        Just("data:text/plain,%ff+%2".to_owned()),
        ".{0,16}",
    ]
}

fn resource() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(prop_oneof![Just("Incoming"), Just("Outgoing"), Just("x")]),
        proptest::option::of(prop_oneof![
            Just("Connected"),
            Just("Conferenced"),
            Just("Disconnected"),
            Just("Failed")
        ]),
        proptest::option::of(prop_oneof![Just("c1-m".to_owned()), ".{0,8}"]),
        proptest::collection::vec((rel(), href()), 0..4),
    )
        .prop_map(|(direction, state, op, links)| {
            let mut r = json!({});
            if let Some(d) = direction {
                r["direction"] = json!(d);
            }
            if let Some(s) = state {
                r["state"] = json!(s);
            }
            if let Some(o) = op {
                r["operationId"] = json!(o);
                r["onlineMeetingUri"] = json!("sip:m@x");
            }
            let mut l = serde_json::Map::new();
            for (rel, href) in links {
                l.insert(rel, json!({"href": href}));
            }
            r["_links"] = Value::Object(l);
            r
        })
}

fn event() -> impl Strategy<Value = Value> {
    (
        rel(),
        href(),
        prop_oneof![
            Just("added"),
            Just("updated"),
            Just("deleted"),
            Just("started"),
            Just("completed"),
            Just("?")
        ],
        proptest::option::of(resource()),
        proptest::bool::ANY,
    )
        .prop_map(|(rel, href, kind, embedded, failed)| {
            let mut e = json!({"link": {"rel": rel, "href": href}, "type": kind});
            if let Some(r) = embedded {
                e["_embedded"] = json!({ rel: r });
            }
            if failed {
                e["status"] = json!("Failure");
            }
            e
        })
}

fn callback() -> impl Strategy<Value = Value> {
    (rel(), href(), proptest::collection::vec(event(), 0..6), prop_oneof![Just("https://api.example".to_owned()), ".{0,12}"])
        .prop_map(|(rel, href, events, base)| json!({"sender": [{"rel": rel, "href": href, "events": events}], "baseuri": base}))
}

fn incoming() -> ta_protocol::chat::IncomingChat {
    let body = json!({"sender": [{"rel": "service:communication", "href": "/c", "events": [{
        "link": {"rel": "service:messagingInvitation", "href": "/inv"}, "type": "started",
        "_embedded": {"service:messagingInvitation": {"direction": "Incoming", "_links": {
            "service:conversation": {"href": "/c/p2p"},
            "service:acceptAndBridge": {"href": "/inv/accept"},
            "service:startAdhocMeeting": {"href": "/meet"},
            "service:decline": {"href": "/inv/decline"}}}}}]}],
        "baseuri": "https://api.example"});
    read_callback(body.to_string().as_bytes())
        .unwrap()
        .invitation()
        .unwrap()
        .clone()
}

proptest! {
    #[test]
    fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = read_callback(&bytes);
    }

    #[test]
    fn any_callbacks_in_any_order_keep_a_chat_sound(callbacks in proptest::collection::vec(callback(), 0..8), answers in proptest::collection::vec(0u8..5, 0..32), waits in proptest::collection::vec(0u64..40, 0..8)) {
        let start = Instant::now();
        let mut now = start;
        let plan = Plan::new(vec![Agent::new("sip:a@x", "A")]).with_join_timeout(Duration::from_secs(20));
        let mut bridge = Bridge::accept(ChatId::new("c1").unwrap(), incoming(), plan, Timers::default(), None, now);
        let mut answers = answers.into_iter().cycle();
        let mut made = Vec::new();
        for (i, cb) in callbacks.iter().enumerate() {
            if let Ok(cb) = read_callback(cb.to_string().as_bytes()) {
                bridge.handle_callback(&cb, now);
            }
            while let Some((id, call)) = bridge.poll_call() {
                made.push(call.kind());
                // 0: answered, 1: failed for good, 2: a failure that may pass,
                // 3: refused, 4: gone.
                match answers.next().unwrap_or(0) {
                    0 => bridge.handle_answer(id, Ok::<_, &str>(support::chat_answer()), now),
                    1 => bridge.handle_answer(id, Err::<ta_protocol::ChatAnswer, _>("down"), now),
                    2 => bridge.handle_failure(id, "busy", CallFailure::Transient, now),
                    3 => bridge.handle_failure(id, "refused", CallFailure::Refused, now),
                    _ => bridge.handle_failure(id, "gone", CallFailure::Gone, now),
                }
            }
            now += Duration::from_secs(waits.get(i).copied().unwrap_or(0));
            if bridge.poll_timeout().is_some_and(|at| at <= now) {
                bridge.handle_timeout(now);
            }
            while bridge.poll_notice().is_some() {}
        }
        // Shutting down always ends it, after at most the cleanup wait.
        bridge.shut_down(now);
        // Every call fails from now on, for good or for a while.
        for round in 0..8 {
            while let Some((id, call)) = bridge.poll_call() {
                made.push(call.kind());
                match round % 3 {
                    0 => bridge.handle_failure(id, "busy", CallFailure::Transient, now),
                    1 => bridge.handle_failure(id, "refused", CallFailure::Refused, now),
                    _ => bridge.handle_answer(id, Err::<ta_protocol::ChatAnswer, _>("down"), now),
                }
            }
            now += Duration::from_secs(if round < 4 { 1 } else { 31 });
            bridge.handle_timeout(now);
        }
        prop_assert!(bridge.is_ended(), "{:?} {made:?}", bridge.phase());
        prop_assert_eq!(bridge.poll_timeout(), None);
        let count = |kind| made.iter().filter(|k| **k == kind).count();
        // Each call at most once, agents and messages aside; an ending call
        // at most 6 times (sent again 1, 3, 7, 15 and 23 s into the
        // ending's 30 s).
        for kind in [ChatCallKind::StartAdhocMeeting, ChatCallKind::AcceptAndBridge, ChatCallKind::AddMessaging] {
            prop_assert!(count(kind) <= 1, "{kind:?} twice: {made:?}");
        }
        for kind in [ChatCallKind::TerminateMeeting, ChatCallKind::StopMessaging, ChatCallKind::Decline] {
            prop_assert!(count(kind) <= 6, "{kind:?} {} times: {made:?}", count(kind));
        }
    }
}
