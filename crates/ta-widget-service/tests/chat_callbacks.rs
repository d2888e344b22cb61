//! The callback endpoint's refusals, each before any work: a missing,
//! unsigned, wrongly signed, wrong-audience, wrong-issuer or expired token
//! gets 401 and changes nothing upstream; a genuine delivery twice is
//! answered 200 twice and acted on once; a key rotation goes through; an
//! emulator of another tenant and audience is met by settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "chat/rig.rs"]
mod rig;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rig::*;
use serde_json::{Value, json};
use ta_emulator::signing::dev_callback_keys;
use ta_emulator::{DEFAULT_APP_ID_URI, EmulatorConfig};
use ta_protocol::Transport;

const SECS: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(issuer: &str) -> Value {
    let t = now();
    json!({"aud": DEFAULT_APP_ID_URI, "iss": issuer, "tid": ta_emulator::DEFAULT_TENANT_ID,
           "appid": "00000004-0000-0ff1-ce00-000000000000", "iat": t, "nbf": t, "exp": t + 3900})
}

/// An incoming invitation, as the platform writes it (links to nowhere the
/// emulator knows: the SA's calls would fail, but none may be made).
fn invitation(rig: &Rig) -> Bytes {
    let base = "/platformservice/v1/applications/1627259584/communication";
    let ep = "endpointId=sip:helpdesk@contoso.com";
    Bytes::from(json!({"_links": {"self": {"href": "/events?ack=77"}}, "sender": [{"rel": "service:communication", "href": base, "events": [{
        "link": {"rel": "service:messagingInvitation", "href": format!("{base}/messagingInvitations/i0?{ep}")}, "type": "started",
        "_embedded": {"service:messagingInvitation": {"direction": "Incoming", "_links": {
            "service:conversation": {"href": format!("{base}/conversations/c0?{ep}")},
            "service:acceptAndBridge": {"href": format!("{base}/messagingInvitations/i0/acceptAndBridge?{ep}")},
            "service:startAdhocMeeting": {"href": format!("{base}/onlineMeetingInvitations/startAdhocMeeting?{ep}")},
            "service:decline": {"href": format!("{base}/messagingInvitations/i0/decline?{ep}")}}}}}]}],
        "baseuri": format!("https://localhost:{}", rig.setup.emulator.addr().port())}).to_string())
}

async fn post_callback(rig: &Rig, authorization: Option<String>, body: Bytes) -> (u16, Value) {
    let mut request = http::Request::post(format!("http://{}/v1/callback", rig.addr))
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = rig.client.send(request.body(body).unwrap()).await.unwrap();
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body()).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_callbacks_change_nothing_and_a_genuine_one_twice_is_acted_on_once() {
    let rig = Rig::start(quick_chat()).await;
    let issuer = rig.setup.emulator.callback_issuer();
    let keys = dev_callback_keys().unwrap();
    let signed = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&issuer);
        f(&mut c);
        format!("Bearer {}", keys[0].sign_jwt(&c).unwrap())
    };
    let unsigned = format!(
        "Bearer {}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(&issuer).to_string())
    );
    // Signed with the rotation key, which the provider does not publish yet.
    let unpublished = format!("Bearer {}", keys[1].sign_jwt(&claims(&issuer)).unwrap());
    let cases = [
        ("missing", None),
        ("unsigned", Some(unsigned)),
        ("unknown_key", Some(unpublished)),
        (
            "wrong_audience",
            Some(signed(&|c| c["aud"] = json!("https://another-sa.example"))),
        ),
        (
            "wrong_issuer",
            Some(signed(&|c| {
                c["iss"] = json!("https://sts.windows.net/another-tenant/")
            })),
        ),
        ("expired", Some(signed(&|c| c["exp"] = json!(now() - 600)))),
    ];
    for (reason, authorization) in cases {
        let (status, answer) = post_callback(&rig, authorization, invitation(&rig)).await;
        assert_eq!(status, 401, "{reason}: {answer}");
        assert_eq!(answer["error"], "unauthorized", "{reason}");
        let line = format!("ta_chat_callbacks_refused_total{{reason=\"{reason}\"}} 1");
        assert!(rig.metrics_text().contains(&line), "{line}");
    }
    // A signature that does not check: the claims changed after signing.
    let good = signed(&|_| {});
    let mut parts: Vec<String> = good
        .trim_start_matches("Bearer ")
        .split('.')
        .map(str::to_owned)
        .collect();
    let mut forged = claims(&issuer);
    forged["tid"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let (status, _) = post_callback(
        &rig,
        Some(format!("Bearer {}", parts.join("."))),
        invitation(&rig),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        rig.metrics_text()
            .contains("ta_chat_callbacks_refused_total{reason=\"bad_signature\"} 1")
    );
    assert_eq!(rig.service.switchboard().unwrap().open_chats(), 0);
    // The callback route has its own label in the request counts.
    assert!(
        rig.metrics_text()
            .contains("ta_requests_total{route=\"callback\",status=\"401\"} 7"),
        "{}",
        rig.metrics_text()
    );
    assert!(
        rig.stats().chat.calls.is_empty(),
        "a refused callback made a call: {:?}",
        rig.stats().chat.calls
    );

    // Genuine, twice.
    let (status, first) = post_callback(&rig, Some(good.clone()), invitation(&rig)).await;
    assert_eq!(status, 200);
    assert!(
        first["callbackContext"]
            .as_str()
            .is_some_and(|c| c.starts_with('c')),
        "{first}"
    );
    let (status, second) = post_callback(&rig, Some(signed(&|_| {})), invitation(&rig)).await;
    assert_eq!(status, 200);
    assert_eq!(
        second, first,
        "the repeat opens nothing, and gets the same context"
    );
    // The chat's meeting starts once; its bridge is refused (the
    // invitation is not the emulator's), and the meeting is ended.
    let stats = rig
        .until(SECS, |s| {
            s.chat.calls.contains(&"terminateOnlineMeeting".to_owned())
        })
        .await;
    assert_eq!(
        stats.chat.calls,
        ["startAdhocMeeting", "terminateOnlineMeeting"]
    );
    assert!(
        rig.metrics_text()
            .contains("ta_chat_calls_failed_total{call=\"chat_accept_and_bridge\"} 1")
    );
    assert!(
        rig.metrics_text()
            .contains("ta_chat_callbacks_total{outcome=\"duplicate\"} 1")
    );
    assert_eq!(rig.open_chats_become(0, SECS).await, 0);
    assert!(
        rig.metrics_text()
            .contains("ta_chats_ended_total{by=\"failure\"} 1")
    );

    // The connectivity check.
    let response = rig
        .client
        .send(
            http::Request::get(format!("http://{}/v1/callback", rig.addr))
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_and_audience_by_settings_and_a_key_rotation_mid_chat() {
    let mut config = EmulatorConfig {
        chat: quick_chat(),
        tenant_id: "0b0e0000-1111-4222-8333-444455556666".to_owned(),
        ..EmulatorConfig::default()
    };
    config.chat.callback_audience = "api://litware-support".to_owned();
    let rig = Rig::start_with(
        config,
        |mut auth| {
            auth.audience = "api://litware-support".to_owned();
            auth
        },
        plan(),
    )
    .await;
    assert!(
        rig.setup
            .emulator
            .callback_issuer()
            .contains("0b0e0000-1111-4222-8333-444455556666")
    );
    let mut widget = rig.widget().await;
    widget.open_chat(SECS).await;
    // The provider rotates its key; the service fetches the keys again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    rig.setup.emulator.rotate_callback_key();
    let keys_url = rig.setup.emulator.callback_keys_url();
    let response = rig
        .client
        .send(http::Request::get(keys_url).body(Bytes::new()).unwrap())
        .await
        .unwrap();
    let published: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(
        published["keys"].as_array().unwrap().len(),
        2,
        "{published}"
    );
    rig.until(SECS, |s| s.chat.agents_joined == 1).await;
    assert_eq!(widget.say("Still there?").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(SECS, |s| s.chat.conversations_open == 0).await;
    // Both came by callbacks signed with the new key: the visitor's
    // message in the meeting, and the visitor's leaving (which the SA
    // answered by ending the meeting).
    assert!(
        rig.metrics_text()
            .contains("ta_chat_messages_total{from=\"visitor\"} 1")
    );
    assert_eq!(stats.chat.callbacks_refused, 0, "{:?}", stats.chat);
    assert_eq!(stats.chat.ended, ["visitor:stopped", "meeting:terminated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_expecting_another_audience_refuses_every_callback() {
    let config = EmulatorConfig {
        chat: quick_chat(),
        ..EmulatorConfig::default()
    };
    let rig = Rig::start_with(
        config,
        |mut auth| {
            auth.audience = "https://not-this-sa.example".to_owned();
            auth
        },
        plan(),
    )
    .await;
    let mut widget = rig.widget().await;
    let app = widget.sign_in().await;
    assert_eq!(widget.start_chat(&app).await, 201);
    // Nobody accepts: the visitor's invitation fails after its timeout.
    let failed = widget
        .poll_until(SECS, |e| {
            e["link"]["rel"] == "messagingInvitation" && e["status"] == "Failure"
        })
        .await;
    assert_eq!(failed["reason"]["subcode"], "Timeout");
    let stats = rig.stats();
    assert!(stats.chat.callbacks_refused >= 1);
    assert!(stats.chat.calls.is_empty());
    assert!(rig.metrics_text().contains("reason=\"wrong_audience\""));
}
