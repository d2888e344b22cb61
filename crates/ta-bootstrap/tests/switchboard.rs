//! The switchboard alone: transport, token provider and router mocked
//! (mockall). Needs the `mock` feature.
#![cfg(feature = "mock")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use ta_bootstrap::chat::{Delivery, MockChatRouter, Routing, Switchboard, SwitchboardOptions};
use ta_bootstrap::*;
use ta_protocol::chat::{Agent, Plan, Timers};
use ta_protocol::{AccessToken, Config, MockTransport, Transport, TransportError};

const BASE: &str = "https://api.example";

fn respond(status: u16, body: &str) -> Result<http::Response<Bytes>, TransportError> {
    Ok(http::Response::builder()
        .status(status)
        .body(Bytes::from(body.to_owned()))
        .unwrap())
}

/// The bootstrap's answers, and 201 for every chat call, recording them.
fn platform(seen: Arc<Mutex<Vec<String>>>) -> MockTransport {
    let mut transport = MockTransport::new();
    transport.expect_send().returning(move |request| {
        let path = request.uri().path().to_owned();
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/platformservice/discover") => respond(200, r#"{"_links":{"service:applications":{"href":"https://api.example/platformservice/v1/applications"}}}"#),
            ("GET", "/platformservice/v1/applications") => respond(200, r#"{"_links":{"service:application":{"href":"/platformservice/v1/applications/1"}}}"#),
            ("GET", "/platformservice/v1/applications/1") => respond(200, r#"{"_links":{"service:anonApplicationTokens":{"href":"/platformservice/v1/applications/1/anonApplicationTokens"}}}"#),
            ("POST", _) => {
                assert_eq!(request.headers()["authorization"], "Bearer aad");
                seen.lock().unwrap().push(path.rsplit('/').next().unwrap().to_owned());
                respond(201, "")
            }
            _ => respond(404, "{}"),
        }
    });
    transport
}

fn switchboard(router: MockChatRouter, seen: Arc<Mutex<Vec<String>>>) -> Switchboard {
    let config = Config::builder(
        format!("{BASE}/platformservice/discover").as_str(),
        "sip:helpdesk@contoso.com",
    )
    .build()
    .unwrap()
    .into_shared();
    let mut tokens = MockTokenProvider::new();
    tokens
        .expect_token()
        .returning(|_| Ok(AccessToken::new("aad")));
    tokens.expect_invalidate().returning(|_, _| ());
    let bootstrapper = Bootstrapper::builder(
        config,
        Arc::new(platform(seen)) as Arc<dyn Transport>,
        Arc::new(tokens),
    )
    .build();
    let options =
        SwitchboardOptions::default().with_timers(Timers::uniform(Duration::from_millis(300)));
    Switchboard::new(bootstrapper, Arc::new(router), options)
}

fn invitation() -> Vec<u8> {
    let app = "/platformservice/v1/applications/1/communication";
    json!({"_links": {"self": {"href": "/events?ack=1"}}, "sender": [{"rel": "service:communication", "href": app, "events": [{
        "link": {"rel": "service:messagingInvitation", "href": format!("{app}/messagingInvitations/1")}, "type": "started",
        "_embedded": {"service:messagingInvitation": {"direction": "Incoming", "_links": {
            "service:conversation": {"href": format!("{app}/conversations/p2p")},
            "service:acceptAndBridge": {"href": format!("{app}/messagingInvitations/1/acceptAndBridge")},
            "service:startAdhocMeeting": {"href": format!("{app}/onlineMeetingInvitations/startAdhocMeeting")},
            "service:decline": {"href": format!("{app}/messagingInvitations/1/decline")}}}}}]}],
        "baseuri": BASE}).to_string().into_bytes()
}

async fn settle(seen: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn an_invitation_opens_a_chat_the_router_declines() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut router = MockChatRouter::new();
    router.expect_route().times(1).returning(|chat| {
        assert!(chat.accept_and_bridge.path().ends_with("/acceptAndBridge"));
        Routing::Decline
    });
    let board = switchboard(router, seen.clone());
    let Delivery::Opened { context } = board.deliver(None, &invitation()).unwrap() else {
        panic!()
    };
    assert!(context.starts_with('c') && context.len() <= 32, "{context}");
    // The same delivery again: nothing more is done, and the open chat's
    // context is answered again (the first answer may have been lost).
    assert_eq!(
        board.deliver(None, &invitation()).unwrap(),
        Delivery::Again {
            context: context.clone()
        }
    );
    assert_eq!(settle(&seen, 1).await, ["decline"]);
    for _ in 0..100 {
        if board.open_chats() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(board.open_chats(), 0);
    // A chat that ended, or another SA's, and a heartbeat: ignored.
    let late = br#"{"sender":[{"rel":"service:conversation","href":"/c","events":[{"link":{"rel":"service:conversation","href":"/c"},"type":"deleted"}]}],"baseuri":"https://api.example"}"#;
    assert_eq!(
        board.deliver(Some(&context), late).unwrap(),
        Delivery::Ignored
    );
    assert_eq!(
        board.deliver(None, br#"{"sender":[]}"#).unwrap(),
        Delivery::Ignored
    );
    assert!(board.deliver(None, b"{").is_err());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn shutting_down_ends_open_chats_and_refuses_new_ones() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut router = MockChatRouter::new();
    router.expect_route().returning(|_| {
        Routing::Accept(Plan::new(vec![Agent::new("sip:anna@contoso.com", "Anna")]))
    });
    let board = switchboard(router, seen.clone());
    assert!(matches!(
        board.deliver(None, &invitation()).unwrap(),
        Delivery::Opened { .. }
    ));
    assert_eq!(settle(&seen, 1).await, ["startAdhocMeeting"]);
    assert_eq!(board.open_chats(), 1);
    // The meeting's link never comes: the shutdown declines the visitor
    // and waits for the link no longer than the cleanup timer.
    let left = board.shut_down(Duration::from_secs(5)).await;
    assert_eq!(left, 0);
    assert_eq!(*seen.lock().unwrap(), ["startAdhocMeeting", "decline"]);
    let mut again = invitation();
    again.extend_from_slice(b" ");
    assert_eq!(board.deliver(None, &again).unwrap(), Delivery::Closing);
}
