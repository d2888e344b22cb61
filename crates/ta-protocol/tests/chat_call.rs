//! One chat call through `Flow::chat_call`: the AAD token, the 401, the
//! trusted hosts, retries that never repeat a message, the body's type.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::sync::Arc;

use support::*;
use ta_protocol::chat::{ChatCall, ChatCallKind};
use ta_protocol::*;
use url::Url;

const MESSAGES: &str = "https://api.example.com/platformservice/v1/applications/1/communication/conversations/p2p/messaging/messages?endpointId=sip:helpdesk@contoso.com";

fn trusted() -> Arc<TrustedHosts> {
    Arc::new(config().trusted_hosts().clone())
}

fn with_token(call: ChatCall) -> Flow<ChatAnswer> {
    Flow::chat_call(
        config(),
        trusted(),
        call,
        Some(AccessToken::new("t")),
        entropy(),
    )
}

/// A server that answers `first` once, then `rest`.
fn first_then(first: Reply, rest: Reply) -> impl FnMut(&Seen, usize) -> Reply {
    let mut first = Some(first);
    move |_: &Seen, _| first.take().unwrap_or_else(|| rest.clone())
}

fn send() -> ChatCall {
    ChatCall::send_message(&Url::parse(MESSAGES).unwrap(), "c1-w", "Hello there")
}

#[test]
fn a_message_goes_as_plain_text_with_the_token() {
    let mut h = Harness::new(|_: &Seen, _| {
        Ok(http::Response::builder()
            .status(201)
            .header("location", "/platformservice/v1/applications/1/communication/conversations/p2p/messaging/messages/3")
            .body(bytes::Bytes::new())
            .unwrap())
    });
    let flow = Flow::chat_call(config(), trusted(), send(), None, entropy());
    let answer = h.run(flow).unwrap();
    assert_eq!(answer.kind, ChatCallKind::SendMessage);
    assert_eq!(answer.status, 201);
    assert!(answer.location.unwrap().as_str().ends_with("/messages/3"));
    assert_eq!(
        h.token_needs.len(),
        1,
        "no token given: one is asked for first"
    );
    let seen = &h.seen[0];
    assert_eq!(seen.method, "POST");
    assert!(seen.url.ends_with("&operationId=c1-w"), "{}", seen.url);
    assert_eq!(seen.authorization.as_deref(), Some("Bearer tok-0"));
    assert_eq!(
        seen.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(seen.body, "Hello there");
}

#[test]
fn a_refused_token_is_replaced_once() {
    let mut h = Harness::new(|_: &Seen, i| if i == 0 { challenge() } else { json(204, "") });
    let call = ChatCall::terminate_meeting(Url::parse(MESSAGES).unwrap());
    let flow = Flow::chat_call(
        config(),
        trusted(),
        call,
        Some(AccessToken::new("old")),
        entropy(),
    );
    h.run(flow).unwrap();
    assert_eq!(h.seen[0].authorization.as_deref(), Some("Bearer old"));
    assert_eq!(h.seen[1].authorization.as_deref(), Some("Bearer tok-0"));
    assert_eq!(
        h.token_needs[0].rejected.as_ref().map(AccessToken::expose),
        Some("old")
    );
    assert!(h.seen[1].content_type.is_none(), "no body, no content type");
}

#[test]
fn the_token_never_goes_to_a_host_discovery_did_not_trust() {
    let mut h = Harness::new(|_: &Seen, _| json(201, ""));
    let url = Url::parse("https://elsewhere.example/platformservice/x").unwrap();
    let call = ChatCall::stop_messaging(url);
    let flow = with_token(call);
    let error = h.run(flow).unwrap_err();
    assert!(matches!(error, Error::Untrusted(_)), "{error:?}");
    assert!(h.seen.is_empty());
}

#[test]
fn a_message_that_may_have_been_sent_is_not_sent_again() {
    let mut h = Harness::new(|_: &Seen, _| Err(TransportError::new(TransportErrorKind::Io, true)));
    let flow = with_token(send());
    assert!(matches!(h.run(flow), Err(Error::Transport { .. })));
    assert_eq!(h.seen.len(), 1);

    // Not sent at all (the connection failed): retried.
    let mut h = Harness::new(first_then(
        Err(TransportError::new(TransportErrorKind::Connect, false)),
        json(201, ""),
    ));
    let flow = with_token(send());
    h.run(flow).unwrap();
    assert_eq!(h.seen.len(), 2);

    // Ending is safe to repeat: retried even when it may have arrived.
    let mut h = Harness::new(first_then(
        Err(TransportError::new(TransportErrorKind::Io, true)),
        json(204, ""),
    ));
    let call = ChatCall::terminate_meeting(Url::parse(MESSAGES).unwrap());
    let flow = with_token(call);
    h.run(flow).unwrap();
    assert_eq!(h.seen.len(), 2);
}

#[test]
fn a_busy_platform_is_retried_and_a_refusal_is_not() {
    let mut h = Harness::new(first_then(
        status_with(503, &[("retry-after", "2")]),
        json(201, ""),
    ));
    let flow = with_token(send());
    h.run(flow).unwrap();
    assert_eq!(h.seen.len(), 2);
    assert!(h.seen[1].at >= std::time::Duration::from_secs(2));

    let mut h =
        Harness::new(|_: &Seen, _| json(409, r#"{"code":"Conflict","subcode":"AlreadyExists"}"#));
    let flow = with_token(send());
    match h.run(flow) {
        Err(Error::Rejected(api)) => {
            assert_eq!(api.step, Step::Chat(ChatCallKind::SendMessage));
            assert_eq!(api.body.unwrap().subcode.as_deref(), Some("AlreadyExists"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Step::Chat(ChatCallKind::SendMessage).label(),
        "chat_send_message"
    );
    assert_eq!(
        Step::Chat(ChatCallKind::SendMessage).to_string(),
        "chat: sendMessage"
    );
}

#[test]
fn a_gateway_error_is_not_retried_for_a_message_but_is_for_an_ending() {
    for status in [502, 504] {
        let mut h = Harness::new(|_: &Seen, _| status_with(status, &[]));
        assert!(matches!(h.run(with_token(send())), Err(Error::Rejected(_))));
        assert_eq!(h.seen.len(), 1, "{status}: a message is sent once");
        let call = ChatCall::terminate_meeting(Url::parse(MESSAGES).unwrap());
        let mut h = Harness::new(first_then(status_with(status, &[]), json(204, "")));
        h.run(with_token(call)).unwrap();
        assert_eq!(h.seen.len(), 2, "{status}: an ending is retried");
    }
}
