//! The SA's side of a chat, driven by scripted callbacks on virtual time:
//! the calls it makes, in order, for the whole flow and for each way a
//! chat ends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use ta_protocol::ChatAnswer;
use ta_protocol::chat::{
    Agent, Bridge, CallFailure, Callback, ChatCallKind, ChatId, EndedBy, Fact, MessageFrom, Notice,
    Phase, Plan, Timers, read_callback,
};

const BASE: &str = "https://api.example.com";
const APP: &str = "/platformservice/tgt-1/v1/applications/1";
const EP: &str = "endpointId=sip:helpdesk@contoso.com";

fn p2p() -> String {
    format!("{APP}/communication/conversations/P2P?{EP}")
}
fn conf() -> String {
    format!("{APP}/communication/conversations/conf?{EP}")
}

fn event(rel: &str, href: &str, kind: &str, embedded: Option<Value>) -> Value {
    let mut e = json!({"link": {"rel": rel, "href": href}, "type": kind});
    if let Some(resource) = embedded {
        e["_embedded"] = json!({ rel: resource });
    }
    e
}

fn callback(sender_rel: &str, sender_href: &str, events: Vec<Value>) -> Callback {
    let body = json!({
        "sender": [{"rel": sender_rel, "href": sender_href, "events": events}],
        "baseuri": BASE,
    });
    read_callback(body.to_string().as_bytes()).unwrap()
}

/// The visitor's invitation (step 6), in namespace `ns`.
fn invitation(ns: &str) -> Callback {
    let inv = format!("{APP}/communication/messagingInvitations/inv1?{EP}");
    let resource = json!({
        "direction": "Incoming", "state": "Connecting", "operationId": "w-op", "subject": "Order",
        "to": "sip:helpdesk@contoso.com",
        "_links": {
            "self": {"href": inv},
            format!("{ns}conversation"): {"href": p2p()},
            format!("{ns}acceptAndBridge"): {"href": format!("{APP}/communication/messagingInvitations/inv1/acceptAndBridge?{EP}")},
            format!("{ns}startAdhocMeeting"): {"href": format!("{APP}/communication/onlineMeetingInvitations/startAdhocMeeting?{EP}")},
            format!("{ns}decline"): {"href": format!("{APP}/communication/messagingInvitations/inv1/decline?{EP}")}
        },
        "_embedded": {format!("{ns}from"): {"uri": "sip:77@anonymous.invalid", "name": "Jane"}}
    });
    callback(
        &format!("{ns}communication"),
        &format!("{APP}/communication?{EP}"),
        vec![event(
            &format!("{ns}messagingInvitation"),
            &inv,
            "started",
            Some(resource),
        )],
    )
}

/// The meeting's callbacks (step 8).
fn meeting_started(ns: &str, operation_id: &str) -> Vec<Callback> {
    let omi = format!("{APP}/communication/onlineMeetingInvitations/omi1?{EP}");
    vec![
        callback(
            &format!("{ns}communication"),
            &format!("{APP}/communication?{EP}"),
            vec![
                event(
                    &format!("{ns}onlineMeetingInvitation"),
                    &omi,
                    "started",
                    Some(json!({
                    "operationId": operation_id, "state": "Connecting",
                    "onlineMeetingUri": "sip:meet@contoso.com;gruu;opaque=app:conf:focus:id:X"})),
                ),
                event(
                    &format!("{ns}conversation"),
                    &conf(),
                    "updated",
                    Some(json!({
                    "state": "Conferenced",
                    "_links": {format!("{ns}addParticipant"): {"href": format!("{APP}/communication/participantInvitations?{EP}&conversationId=conf")}}})),
                ),
            ],
        ),
        callback(
            &format!("{ns}conversation"),
            &conf(),
            vec![
                event(
                    &format!("{ns}onlineMeeting"),
                    &format!("{APP}/communication/conversations/conf/onlineMeeting?{EP}"),
                    "added",
                    Some(json!({
                    "_links": {format!("{ns}terminateOnlineMeeting"): {"href": format!("{APP}/communication/conversations/conf/onlineMeeting/terminateOnlineMeeting?{EP}")}}})),
                ),
                event(
                    &format!("{ns}messaging"),
                    &format!("{APP}/communication/conversations/conf/messaging?{EP}"),
                    "updated",
                    Some(json!({
                    "state": "Disconnected",
                    "_links": {format!("{ns}addMessaging"): {"href": format!("{APP}/communication/messagingInvitations?conversationId=conf&{EP}")}}})),
                ),
            ],
        ),
    ]
}

/// The bridge (step 11) and the visitor's messaging, connected.
fn bridged(ns: &str) -> Callback {
    callback(
        &format!("{ns}conversation"),
        &p2p(),
        vec![
            event(
                &format!("{ns}conversationBridge"),
                &format!("{APP}/communication/conversations/P2P/conversationBridge?{EP}"),
                "added",
                Some(json!({
                "_links": {format!("{ns}bridgedParticipants"): {"href": format!("{APP}/communication/conversations/P2P/conversationBridge/bridgedParticipants?{EP}")}}})),
            ),
            event(
                &format!("{ns}messaging"),
                &format!("{APP}/communication/conversations/P2P/messaging?{EP}"),
                "updated",
                Some(json!({
                "state": "Connected",
                "_links": {
                    format!("{ns}sendMessage"): {"href": format!("{APP}/communication/conversations/P2P/messaging/messages?{EP}")},
                    format!("{ns}stopMessaging"): {"href": format!("{APP}/communication/conversations/P2P/messaging/terminate?{EP}")}}})),
            ),
        ],
    )
}

fn agent_event(ns: &str, kind: &str) -> Callback {
    callback(
        &format!("{ns}conversation"),
        &conf(),
        vec![event(
            &format!("{ns}participant"),
            &format!("{APP}/communication/conversations/conf/participants/anna?{EP}"),
            kind,
            (kind == "added").then(|| json!({"uri": "sip:anna@contoso.com", "name": "Anna"})),
        )],
    )
}

fn message(ns: &str, n: u32, sender: &str, kind: &str) -> Callback {
    callback(
        &format!("{ns}conversation"),
        &conf(),
        vec![event(
            &format!("{ns}message"),
            &format!("{APP}/communication/conversations/conf/messaging/messages/{n}?{EP}"),
            kind,
            Some(json!({
            "direction": "Incoming", "timeStamp": "/Date(1489524122496)/",
            "_links": {"plainMessage": {"href": "data:text/plain;charset=utf-8,Hello+there"}},
            "_embedded": {format!("{ns}senderParticipant"): [{"uri": sender, "name": "x"}]}})),
        )],
    )
}

fn visitor_left(ns: &str) -> Callback {
    callback(
        &format!("{ns}communication"),
        &format!("{APP}/communication?{EP}"),
        vec![event(&format!("{ns}conversation"), &p2p(), "deleted", None)],
    )
}

/// A chat and the virtual clock it runs on; every call answered 201.
struct Run {
    bridge: Bridge,
    now: Instant,
    calls: Vec<(ChatCallKind, String, Option<Bytes>, &'static str)>,
    notices: Vec<Notice>,
}

/// How a call is answered.
#[derive(Clone, Copy)]
enum Reply {
    Ok,
    /// An error handed to `handle_answer`: final.
    Final,
    /// Refused (a 4xx, a redirect not followed): may be lifted.
    Refused,
    /// What the call acts on is gone (a 404).
    Gone,
    /// A failure that may pass.
    Busy,
}

fn plan() -> Plan {
    Plan::new(vec![Agent::new("sip:anna@contoso.com", "Anna (Support)")])
        .with_join_timeout(Duration::from_secs(20))
}

fn chat_id() -> ChatId {
    ChatId::new("c1").unwrap()
}

impl Run {
    fn accept(ns: &str, plan: Plan) -> Self {
        let now = Instant::now();
        let cb = invitation(ns);
        let chat = cb.invitation().unwrap().clone();
        let bridge = Bridge::accept(chat_id(), chat, plan, Timers::default(), None, now);
        let mut run = Self {
            bridge,
            now,
            calls: Vec::new(),
            notices: Vec::new(),
        };
        run.settle();
        run
    }

    /// The same, the meeting's start answered as `reply` says.
    fn accept_starting(reply: Reply) -> Self {
        let now = Instant::now();
        let chat = invitation("service:").invitation().unwrap().clone();
        let bridge = Bridge::accept(chat_id(), chat, plan(), Timers::default(), None, now);
        let mut run = Self {
            bridge,
            now,
            calls: Vec::new(),
            notices: Vec::new(),
        };
        run.settle_replying(|kind| {
            if kind == ChatCallKind::StartAdhocMeeting {
                reply
            } else {
                Reply::Ok
            }
        });
        run
    }

    /// Sends every due call, each answered with `ok`.
    fn settle(&mut self) {
        self.settle_with(|_| true);
    }

    fn settle_with(&mut self, mut ok: impl FnMut(ChatCallKind) -> bool) {
        self.settle_replying(|kind| if ok(kind) { Reply::Ok } else { Reply::Final });
    }

    /// Sends every due call; those `fails` picks fail in a way that may
    /// pass (the platform busy), the others are answered with `ok`.
    fn settle_failing(&mut self, fails: impl FnMut(ChatCallKind) -> bool) {
        self.settle_failing_with(Reply::Busy, fails);
    }

    /// Sends every due call; those `fails` picks get `failure`, the others
    /// are answered with `ok`.
    fn settle_failing_with(&mut self, failure: Reply, mut fails: impl FnMut(ChatCallKind) -> bool) {
        self.settle_replying(|kind| if fails(kind) { failure } else { Reply::Ok });
    }

    /// Sends every due call, each answered as `reply` says.
    fn settle_replying(&mut self, mut reply: impl FnMut(ChatCallKind) -> Reply) {
        while let Some((id, call)) = self.bridge.poll_call() {
            let kind = call.kind();
            self.calls.push((
                kind,
                call.url().to_string(),
                call.body().cloned(),
                call.content_type(),
            ));
            match reply(kind) {
                Reply::Ok => self.bridge.handle_answer(
                    id,
                    Ok::<_, ta_protocol::Error>(answer(kind)),
                    self.now,
                ),
                Reply::Final => self.bridge.handle_answer(id, Err(refusal(kind)), self.now),
                Reply::Refused => self.bridge.handle_failure(
                    id,
                    "403: consent revoked",
                    CallFailure::Refused,
                    self.now,
                ),
                Reply::Gone => {
                    self.bridge
                        .handle_failure(id, "404: gone", CallFailure::Gone, self.now);
                }
                Reply::Busy => {
                    self.bridge
                        .handle_failure(id, "503: busy", CallFailure::Transient, self.now)
                }
            }
        }
        while let Some(n) = self.bridge.poll_notice() {
            self.notices.push(n);
        }
    }

    /// Moves virtual time to the next wake-up and acts on it.
    fn next_wake(&mut self) -> Duration {
        let at = self.bridge.poll_timeout().unwrap();
        let waited = at - self.now;
        self.now = at;
        self.bridge.handle_timeout(self.now);
        waited
    }

    fn count(&self, kind: ChatCallKind) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }

    fn deliver(&mut self, cb: &Callback) {
        self.bridge.handle_callback(cb, self.now);
        self.settle();
    }

    fn wait(&mut self, d: Duration) {
        self.now += d;
        if self.bridge.poll_timeout().is_some_and(|at| at <= self.now) {
            self.bridge.handle_timeout(self.now);
        }
        self.settle();
    }

    fn kinds(&self) -> Vec<ChatCallKind> {
        self.calls.iter().map(|c| c.0).collect()
    }

    fn ended(&self) -> Option<&EndedBy> {
        self.notices.iter().find_map(|n| match n {
            Notice::Ended { by, .. } => Some(by),
            _ => None,
        })
    }
}

fn answer(_kind: ChatCallKind) -> ChatAnswer {
    support::chat_answer()
}

fn refusal(_kind: ChatCallKind) -> ta_protocol::Error {
    ta_protocol::Error::Internal("refused by the test")
}

const WHOLE_FLOW: [ChatCallKind; 7] = [
    ChatCallKind::StartAdhocMeeting,
    ChatCallKind::AcceptAndBridge,
    ChatCallKind::AddMessaging,
    ChatCallKind::AddBridgedParticipant,
    ChatCallKind::SendMessage,
    ChatCallKind::AddParticipant,
    ChatCallKind::TerminateMeeting,
];

#[test]
fn a_whole_chat_in_both_namespaces() {
    for ns in ["service:", "ms:rtc:saas:"] {
        let mut run = Run::accept(ns, plan());
        assert_eq!(run.kinds(), [ChatCallKind::StartAdhocMeeting]);
        let body: Value = serde_json::from_slice(run.calls[0].2.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"subject": "Support chat", "operationId": "c1-m", "callbackContext": "c1"})
        );
        for cb in meeting_started(ns, "c1-m") {
            run.deliver(&cb);
        }
        assert_eq!(
            run.kinds()[1..],
            [ChatCallKind::AcceptAndBridge, ChatCallKind::AddMessaging]
        );
        let accept: Value = serde_json::from_slice(run.calls[1].2.as_ref().unwrap()).unwrap();
        assert_eq!(
            accept["onlineMeetingUri"],
            "sip:meet@contoso.com;gruu;opaque=app:conf:focus:id:X"
        );
        assert_eq!(accept["localUserDisplayName"], "Help Desk");
        assert_eq!(run.bridge.phase(), Phase::Starting);
        run.deliver(&bridged(ns));
        assert_eq!(run.bridge.phase(), Phase::Bridged);
        assert_eq!(run.kinds()[3..], WHOLE_FLOW[3..6]);
        let bridged_body: Value = serde_json::from_slice(run.calls[3].2.as_ref().unwrap()).unwrap();
        assert_eq!(
            bridged_body,
            json!({"displayName": "Anna (Support)", "participantUri": "sip:anna@contoso.com", "messageFilterState": "Disabled"})
        );
        let (_, url, body, content_type) = &run.calls[4];
        assert!(url.ends_with("&operationId=c1-w"), "{url}");
        assert_eq!(*content_type, "text/plain; charset=utf-8");
        assert_eq!(
            body.as_ref().unwrap(),
            "Welcome! An agent will be with you shortly."
        );
        let invite: Value = serde_json::from_slice(run.calls[5].2.as_ref().unwrap()).unwrap();
        assert_eq!(
            invite,
            json!({"to": "sip:anna@contoso.com", "operationId": "c1-a0"})
        );

        run.wait(Duration::from_secs(3));
        run.deliver(&agent_event(ns, "added"));
        assert_eq!(run.bridge.phase(), Phase::Active);
        assert!(run.notices.contains(&Notice::AgentJoined {
            uri: "sip:anna@contoso.com".into(),
            after: Duration::from_secs(3)
        }));
        // Each message counted once, whether started, completed or both.
        run.deliver(&message(ns, 1, "sip:anna@contoso.com", "started"));
        run.deliver(&message(ns, 1, "sip:anna@contoso.com", "completed"));
        run.deliver(&message(ns, 2, "sip:77@anonymous.invalid", "completed"));
        let froms: Vec<MessageFrom> = run
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::Message { from } => Some(*from),
                _ => None,
            })
            .collect();
        assert_eq!(
            froms,
            [
                MessageFrom::Service,
                MessageFrom::Agent,
                MessageFrom::Visitor
            ]
        );
        // Past the join timeout nothing happens: the agent is there.
        run.wait(Duration::from_secs(60));
        assert_eq!(run.calls.len(), 6);

        run.deliver(&visitor_left(ns));
        assert_eq!(
            run.kinds(),
            WHOLE_FLOW,
            "the visitor's messaging is not stopped: it is gone"
        );
        assert_eq!(run.ended(), Some(&EndedBy::Visitor));
        assert!(run.bridge.is_ended());
        assert_eq!(run.bridge.poll_timeout(), None);
    }
}

#[test]
fn duplicated_and_reordered_callbacks_make_each_call_once() {
    let mut run = Run::accept("service:", plan());
    let mut script = meeting_started("service:", "c1-m");
    script.push(bridged("service:"));
    script.reverse();
    for cb in script.iter().chain(script.iter()) {
        run.deliver(cb);
    }
    run.deliver(&invitation("service:"));
    run.deliver(&agent_event("service:", "added"));
    run.deliver(&agent_event("service:", "added"));
    let mut kinds = run.kinds();
    kinds.sort_by_key(|k| k.label());
    let mut expected = WHOLE_FLOW[..6].to_vec();
    expected.sort_by_key(|k| k.label());
    assert_eq!(kinds, expected);
    assert_eq!(
        run.notices
            .iter()
            .filter(|n| matches!(n, Notice::AgentJoined { .. }))
            .count(),
        1
    );
    // The welcome still waited for the bridge.
    let send = run
        .kinds()
        .iter()
        .position(|k| *k == ChatCallKind::SendMessage)
        .unwrap();
    let accept = run
        .kinds()
        .iter()
        .position(|k| *k == ChatCallKind::AcceptAndBridge)
        .unwrap();
    assert!(accept < send);
}

#[test]
fn no_agent_joins_in_time() {
    let mut run = Run::accept("service:", plan());
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    run.deliver(&bridged("service:"));
    run.wait(Duration::from_secs(19));
    assert!(run.ended().is_none());
    run.wait(Duration::from_secs(2));
    assert_eq!(
        run.kinds()[6..],
        [
            ChatCallKind::SendMessage,
            ChatCallKind::StopMessaging,
            ChatCallKind::TerminateMeeting
        ]
    );
    assert_eq!(
        run.calls[6].2.as_ref().unwrap(),
        "Sorry, no agent is available right now. Please try again later."
    );
    assert_eq!(run.ended(), Some(&EndedBy::NoAgent));
    // A late agent changes nothing.
    run.deliver(&agent_event("service:", "added"));
    assert_eq!(run.calls.len(), 9);
}

#[test]
fn an_empty_plan_says_so_and_ends() {
    let mut run = Run::accept("service:", Plan::new(Vec::new()).with_welcome(None));
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    run.deliver(&bridged("service:"));
    assert_eq!(
        run.kinds(),
        [
            ChatCallKind::StartAdhocMeeting,
            ChatCallKind::AcceptAndBridge,
            ChatCallKind::AddMessaging,
            ChatCallKind::SendMessage,
            ChatCallKind::StopMessaging,
            ChatCallKind::TerminateMeeting,
        ]
    );
    assert_eq!(run.ended(), Some(&EndedBy::NoAgent));
}

#[test]
fn the_meeting_never_starts() {
    let mut run = Run::accept("service:", plan());
    run.wait(Duration::from_secs(29));
    assert!(run.ended().is_none());
    run.wait(Duration::from_secs(2));
    // Not accepted: the invitation is declined. The meeting's link never
    // came: the ending waits for it, then gives up.
    assert_eq!(
        run.kinds(),
        [ChatCallKind::StartAdhocMeeting, ChatCallKind::Decline]
    );
    assert_eq!(run.bridge.phase(), Phase::Ending);
    // The link arrives late: the meeting is ended after all.
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    assert_eq!(run.kinds()[2..], [ChatCallKind::TerminateMeeting]);
    assert!(matches!(run.ended(), Some(EndedBy::Failure(why)) if why.contains("did not start")));
}

#[test]
fn the_ending_gives_up_on_a_terminate_link_that_never_comes() {
    let mut run = Run::accept("service:", plan());
    run.wait(Duration::from_secs(31));
    assert!(run.ended().is_none());
    run.wait(Duration::from_secs(31));
    assert!(matches!(run.ended(), Some(EndedBy::Failure(_))));
    assert!(run.bridge.is_ended());
}

#[test]
fn a_failed_call_ends_the_chat_cleanly() {
    // Refused, or failing in a way that may pass: a call that does not end
    // the chat is not sent again.
    for failure in [Reply::Final, Reply::Refused, Reply::Gone, Reply::Busy] {
        a_failed_acceptance_ends_the_chat(failure);
    }
}

fn a_failed_acceptance_ends_the_chat(failure: Reply) {
    let mut run = Run::accept("service:", plan());
    let mut script = meeting_started("service:", "c1-m");
    run.bridge.handle_callback(&script.remove(0), run.now);
    run.bridge.handle_callback(&script.remove(0), run.now);
    run.settle_replying(|kind| {
        if kind == ChatCallKind::AcceptAndBridge {
            failure
        } else {
            Reply::Ok
        }
    });
    // The visitor's invitation was never accepted: it is declined.
    assert_eq!(
        run.kinds(),
        [
            ChatCallKind::StartAdhocMeeting,
            ChatCallKind::AcceptAndBridge,
            ChatCallKind::Decline,
            ChatCallKind::TerminateMeeting
        ]
    );
    assert!(run.notices.iter().any(|n| matches!(
        n,
        Notice::CallFailed {
            kind: ChatCallKind::AcceptAndBridge,
            ..
        }
    )));
    assert!(matches!(run.ended(), Some(EndedBy::Failure(why)) if why.contains("acceptAndBridge")));
}

#[test]
fn the_agent_leaves_and_the_service_shuts_down() {
    let mut run = bridged_run();
    run.deliver(&agent_event("service:", "added"));
    run.deliver(&agent_event("service:", "deleted"));
    assert_eq!(
        run.kinds()[6..],
        [ChatCallKind::StopMessaging, ChatCallKind::TerminateMeeting]
    );
    assert_eq!(run.ended(), Some(&EndedBy::Agent));

    let mut run = bridged_run();
    run.bridge.shut_down(run.now);
    run.settle();
    assert_eq!(
        run.kinds()[6..],
        [ChatCallKind::StopMessaging, ChatCallKind::TerminateMeeting]
    );
    assert_eq!(run.ended(), Some(&EndedBy::Service));
    // Shutting down twice, or a late callback, sends nothing more.
    run.bridge.shut_down(run.now);
    run.deliver(&visitor_left("service:"));
    assert_eq!(run.calls.len(), 8);
}

#[test]
fn a_declined_chat() {
    let now = Instant::now();
    let chat = invitation("service:").invitation().unwrap().clone();
    let mut bridge = Bridge::decline(chat_id(), chat, now);
    let (id, call) = bridge.poll_call().unwrap();
    assert_eq!(call.kind(), ChatCallKind::Decline);
    assert!(call.url().path().ends_with("/decline"));
    bridge.handle_answer(
        id,
        Ok::<_, ta_protocol::Error>(answer(ChatCallKind::Decline)),
        now,
    );
    assert!(bridge.poll_call().is_none());
    assert!(matches!(
        bridge.poll_notice(),
        Some(Notice::Ended {
            by: EndedBy::Declined,
            ..
        })
    ));
}

#[test]
fn callbacks_that_cannot_be_used() {
    let no_base = br#"{"sender":[{"rel":"service:communication","href":"/c","events":[{"link":{"rel":"service:conversation","href":"/x"},"type":"deleted"}]}]}"#;
    assert!(matches!(
        read_callback(no_base),
        Err(ta_protocol::chat::CallbackError::BaseUri(_))
    ));
    let beat =
        read_callback(br#"{"_links":{"self":{"href":"/eventsservice"}},"sender":[]}"#).unwrap();
    assert!(beat.is_heartbeat());
    let partial = json!({"sender": [{"rel": "service:communication", "href": "/c", "events": [
        {"link": {"rel": "service:messagingInvitation", "href": "/inv"}, "type": "started",
         "_embedded": {"service:messagingInvitation": {"direction": "Incoming", "_links": {"service:conversation": {"href": "/p2p"}}}}}]}],
        "baseuri": BASE});
    let cb = read_callback(partial.to_string().as_bytes()).unwrap();
    assert!(cb.invitation().is_none());
    assert!(matches!(cb.facts[0], Fact::Other { .. }));
    assert!(
        cb.problems.iter().any(|p| p.contains("acceptAndBridge")),
        "{:?}",
        cb.problems
    );
    assert!(read_callback(b"not json").is_err());
    assert!(ChatId::new("c".repeat(33)).is_err());
    assert!(ChatId::new("a b").is_err());
}

#[test]
fn a_per_conversation_callback_url_carries_the_context_instead_of_the_body() {
    let now = Instant::now();
    let chat = invitation("service:").invitation().unwrap().clone();
    let url = url::Url::parse("https://sa.example/v1/callback?callbackContext=c1").unwrap();
    let mut bridge = Bridge::accept(chat_id(), chat, plan(), Timers::default(), Some(url), now);
    let (_, call) = bridge.poll_call().unwrap();
    let body: Value = serde_json::from_slice(call.body().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"subject": "Support chat", "operationId": "c1-m", "callbackUrl": "https://sa.example/v1/callback?callbackContext=c1"})
    );
}

#[test]
fn a_bridge_seen_before_its_acceptance_is_answered_sets_no_stale_deadline() {
    let now = Instant::now();
    let chat = invitation("service:").invitation().unwrap().clone();
    let mut bridge = Bridge::accept(chat_id(), chat, plan(), Timers::default(), None, now);
    let (id, _) = bridge.poll_call().unwrap();
    bridge.handle_answer(
        id,
        Ok::<_, ta_protocol::Error>(answer(ChatCallKind::StartAdhocMeeting)),
        now,
    );
    for cb in meeting_started("service:", "c1-m") {
        bridge.handle_callback(&cb, now);
    }
    // acceptAndBridge in flight; the bridge's callback comes first.
    let (accept, call) = bridge.poll_call().unwrap();
    assert_eq!(call.kind(), ChatCallKind::AcceptAndBridge);
    bridge.handle_callback(&bridged("service:"), now);
    bridge.handle_answer(
        accept,
        Ok::<_, ta_protocol::Error>(answer(ChatCallKind::AcceptAndBridge)),
        now,
    );
    assert_eq!(bridge.phase(), Phase::Bridged);
    let later = now + Duration::from_secs(31);
    bridge.handle_timeout(later);
    while let Some(notice) = bridge.poll_notice() {
        assert!(!matches!(notice, Notice::Ended { .. }), "{notice:?}");
    }
}

#[test]
fn a_meeting_that_failed_to_start_waits_for_no_link() {
    let now = Instant::now();
    let chat = invitation("service:").invitation().unwrap().clone();
    let mut bridge = Bridge::accept(chat_id(), chat, plan(), Timers::default(), None, now);
    let (id, _) = bridge.poll_call().unwrap();
    bridge.handle_answer(id, Err::<ChatAnswer, _>("503 after retries"), now);
    let (id, call) = bridge.poll_call().unwrap();
    assert_eq!(call.kind(), ChatCallKind::Decline);
    bridge.handle_answer(
        id,
        Ok::<_, ta_protocol::Error>(answer(ChatCallKind::Decline)),
        now,
    );
    assert!(
        bridge.is_ended(),
        "no meeting was started: nothing to wait for"
    );
}

#[test]
fn a_chat_whose_end_never_comes_ends_at_its_longest_life() {
    let now = Instant::now();
    let chat = invitation("service:").invitation().unwrap().clone();
    let timers = Timers::default().with_max_chat(Duration::from_secs(3600));
    let mut run = Run {
        bridge: Bridge::accept(chat_id(), chat, plan(), timers, None, now),
        now,
        calls: Vec::new(),
        notices: Vec::new(),
    };
    run.settle();
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    run.deliver(&bridged("service:"));
    run.deliver(&agent_event("service:", "added"));
    assert!(
        run.bridge
            .poll_timeout()
            .is_some_and(|at| at <= now + Duration::from_secs(3600))
    );
    run.wait(Duration::from_secs(3601));
    assert!(
        matches!(run.ended(), Some(EndedBy::Failure(why)) if why.contains("longest")),
        "{:?}",
        run.notices
    );
    assert_eq!(
        run.kinds()[6..],
        [ChatCallKind::StopMessaging, ChatCallKind::TerminateMeeting]
    );
    // A timeout that does not fit in an Instant is no deadline, not a panic.
    let chat = invitation("service:").invitation().unwrap().clone();
    let huge = Timers::uniform(Duration::MAX).with_max_chat(Duration::MAX);
    let mut bridge = Bridge::accept(
        chat_id(),
        chat,
        plan().with_join_timeout(Duration::MAX),
        huge,
        None,
        now,
    );
    assert_eq!(bridge.poll_timeout(), None);
    bridge.shut_down(now);
}

/// A chat whose meeting started and whose visitor is bridged into it.
fn bridged_run() -> Run {
    let mut run = Run::accept("service:", plan());
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    run.deliver(&bridged("service:"));
    run
}

/// A chat bridged, an agent in it, then shut down: its ending calls due.
fn shut_down_with_an_agent() -> Run {
    let mut run = bridged_run();
    run.deliver(&agent_event("service:", "added"));
    run.bridge.shut_down(run.now);
    run
}

#[test]
fn an_ending_call_that_fails_for_a_while_is_sent_again() {
    // Busy (it may pass) or refused (consent revoked, a redirect refused:
    // that may be lifted within the cleanup timeout).
    for (failure, error) in [
        (Reply::Busy, "503: busy"),
        (Reply::Refused, "403: consent revoked"),
    ] {
        an_ending_call_failing_twice_is_sent_again(failure, error);
    }
}

fn an_ending_call_failing_twice_is_sent_again(failure: Reply, error: &str) {
    let mut run = shut_down_with_an_agent();
    let mut failures = 0;
    let mut twice = move |kind| {
        kind == ChatCallKind::TerminateMeeting && {
            failures += 1;
            failures <= 2
        }
    };
    run.settle_failing_with(failure, &mut twice);
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 1);
    assert!(run.ended().is_none(), "the meeting is not left open");
    assert!(!run.bridge.is_ended());
    assert_eq!(run.next_wake(), Duration::from_secs(1));
    run.settle_failing_with(failure, &mut twice);
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 2);
    assert_eq!(run.next_wake(), Duration::from_secs(2));
    run.settle_failing_with(failure, &mut twice);
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 3);
    assert_eq!(run.count(ChatCallKind::StopMessaging), 1);
    assert_eq!(run.ended(), Some(&EndedBy::Service));
    let failed = run
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::CallFailed { kind: ChatCallKind::TerminateMeeting, error: e } if e == error))
        .count();
    assert_eq!(failed, 2);
    assert!(run.bridge.is_ended());
    assert_eq!(run.bridge.poll_timeout(), None);
}

#[test]
fn an_ending_call_whose_conversation_is_gone_or_that_failed_for_good_is_not_sent_again() {
    for failure in [Reply::Gone, Reply::Final] {
        let mut run = shut_down_with_an_agent();
        run.settle_failing_with(failure, |kind| kind == ChatCallKind::TerminateMeeting);
        assert_eq!(run.count(ChatCallKind::TerminateMeeting), 1);
        assert_eq!(run.ended(), Some(&EndedBy::Service));
        assert!(run.bridge.is_ended());
        assert_eq!(run.bridge.poll_timeout(), None);
    }
}

#[test]
fn an_ending_call_that_keeps_failing_is_given_up_at_the_cleanup_timeout() {
    let mut run = shut_down_with_an_agent();
    let started = run.now;
    let always = |kind| kind == ChatCallKind::TerminateMeeting;
    run.settle_failing(always);
    let mut waits = Vec::new();
    while !run.bridge.is_ended() {
        waits.push(run.next_wake().as_secs());
        run.settle_failing(always);
    }
    // 1, 2, 4, then every 8 s, none past the 30 s cleanup timeout.
    assert_eq!(waits, [1, 2, 4, 8, 8]);
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 6);
    assert!(run.now - started < Timers::default().cleanup_timeout);
    assert_eq!(run.ended(), Some(&EndedBy::Service));
}

#[test]
fn no_resend_once_the_platform_says_the_conversation_is_gone() {
    let mut run = bridged_run();
    run.bridge.shut_down(run.now);
    // stopMessaging is busy; the visitor leaves before it goes again.
    run.settle_failing(|kind| kind == ChatCallKind::StopMessaging);
    assert!(!run.bridge.is_ended());
    run.bridge
        .handle_callback(&visitor_left("service:"), run.now);
    run.next_wake();
    run.settle();
    assert_eq!(run.count(ChatCallKind::StopMessaging), 1);
    assert!(run.bridge.is_ended());
}

#[test]
fn a_meeting_whose_start_may_have_reached_the_platform_is_terminated_when_it_shows() {
    // The answer was lost (a broken connection): the chat ends, but the
    // meeting may exist, so the ending waits for its link.
    let mut run = Run::accept_starting(Reply::Busy);
    assert!(run.ended().is_none());
    assert!(!run.bridge.is_ended());
    assert_eq!(run.count(ChatCallKind::Decline), 1);
    for cb in meeting_started("service:", "c1-m") {
        run.deliver(&cb);
    }
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 1);
    assert!(
        matches!(run.ended(), Some(EndedBy::Failure(why)) if why.contains("startAdhocMeeting"))
    );
    assert!(run.bridge.is_ended());

    // It never shows: given up at the cleanup timeout.
    let mut run = Run::accept_starting(Reply::Busy);
    run.wait(Duration::from_secs(29));
    assert!(!run.bridge.is_ended());
    run.wait(Duration::from_secs(2));
    assert!(run.bridge.is_ended());
    assert_eq!(run.count(ChatCallKind::TerminateMeeting), 0);

    // Refused, or failed for good: the platform did not start it, nothing
    // to wait for.
    for failure in [Reply::Final, Reply::Refused, Reply::Gone] {
        let run = Run::accept_starting(failure);
        assert!(run.bridge.is_ended());
    }
}
