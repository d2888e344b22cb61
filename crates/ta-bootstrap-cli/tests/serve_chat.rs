//! `serve` with the chat on, against an emulator playing the platform: a
//! chat runs through it, and a shutdown mid-chat ends the chat upstream
//! (the visitor's messaging stopped, the meeting terminated) before the
//! process exits; a reload keeps an open chat going.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "common/bin.rs"]
mod bin;
#[path = "common/chat.rs"]
mod chat;

use bin::*;
use chat::*;
use ta_test_support::widget::{Widget, is_message};

/// `serve`'s arguments with the chat on, listening on `listen`.
fn chat_args(d: &Deployment, listen: &str) -> Vec<String> {
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(d));
    args.extend([
        "--allowed-origin".to_owned(),
        "https://contoso.com".to_owned(),
        "--listen".to_owned(),
        listen.to_owned(),
        "--agent".to_owned(),
        "sip:anna@contoso.com=Anna (Support)".to_owned(),
    ]);
    args.extend(callback_flags(d));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_through_serve_and_a_shutdown_that_ends_it_upstream() {
    let d = chat_deployment().await;
    let served = spawn_serve_with(chat_args(&d, "127.0.0.1:0"), 1).await;
    assert!(
        served.stdout[0].starts_with("taking the platform's callbacks on http://127.0.0.1:"),
        "{:?}",
        served.stdout
    );
    d.emulator
        .set_callback_url(&format!("{}/v1/callback", served.base()))
        .unwrap();
    let mut widget = Widget::from_service(client(&d), &served.base()).await;
    chat_until_the_agent_answers(&mut widget).await;
    served.wait_for_log("agent joined").await;
    // A reload keeps the chat going.
    served.signal("HUP");
    served.wait_for_log("configuration reloaded").await;
    assert_eq!(widget.say("One more thing").await, 201);
    widget
        .poll_until(SECS, |e| is_message(e, "Let me check that for you."))
        .await;

    // doctor checks the callback endpoint: reachable, and refusing what is
    // not signed; and finds a URL that is not one.
    let mut doctor = command();
    doctor
        .arg("doctor")
        .args(bin::args(&d))
        .args(["--callback-url", &format!("{}/v1/callback", served.base())]);
    let output = run(doctor).await;
    let report = text(&output.stdout);
    assert!(
        report.contains("[PASS] callback endpoint answers, and refuses unsigned callbacks — GET"),
        "{report}"
    );
    assert_eq!(output.status.code(), Some(0), "{report}");
    let mut doctor = command();
    doctor
        .arg("doctor")
        .args(bin::args(&d))
        .args(["--callback-url", &format!("{}/healthz", served.base())]);
    let output = run(doctor).await;
    let report = text(&output.stdout);
    assert!(
        report.contains("[FAIL] callback endpoint") && report.contains("not 401"),
        "{report}"
    );
    assert_ne!(output.status.code(), Some(0));

    // Stopped mid-chat: the chat is ended upstream first.
    let code = served.stop().await;
    assert_eq!(code, Some(0));
    let stats = d.emulator.stats();
    assert_eq!(stats.chat.conversations_open, 0, "{:?}", stats.chat);
    assert_eq!(
        stats.chat.ended,
        ["visitor:stopped_by_service", "meeting:terminated"]
    );
    let calls = &stats.chat.calls;
    assert_eq!(
        calls[calls.len() - 2..],
        ["stopMessaging", "terminateOnlineMeeting"],
        "{calls:?}"
    );
    widget
        .poll_until(SECS, |e| {
            e["link"]["rel"] == "conversation" && e["type"] == "deleted"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_balancer_run_one_chat() {
    let d = chat_deployment().await;
    let addresses = free_loopback_addresses(2);
    // One list for both, as one ConfigMap would give: each skips itself.
    let peers = format!("r0=http://{};r1=http://{}", addresses[0], addresses[1]);
    let mut replicas = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let name = format!("r{i}");
        let env = [
            ("TA_REPLICA_NAME", name.as_str()),
            ("TA_PEERS", peers.as_str()),
        ];
        replicas.push(spawn_serve_with_env(chat_args(&d, &address.to_string()), 1, &env).await);
    }
    one_chat_across(&d, ta_test_support::widget::ORIGIN, &replicas, addresses).await;
    for replica in replicas {
        assert_eq!(replica.stop().await, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_other_replicas_addresses_while_serving() {
    use ta_test_support::peer::{RecordingPeer, platform_token};
    let d = chat_deployment().await;
    let owner = RecordingPeer::start().await;
    // The peers in the file, which a reload reads again: none yet.
    let dir = std::env::temp_dir().join(format!("ta-peers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("serve.toml");
    std::fs::write(&file, "peers = []\n").unwrap();
    let mut args = chat_args(&d, "127.0.0.1:0");
    args.extend(["--config".to_owned(), file.display().to_string()]);
    let served = spawn_serve_with_env(args, 1, &[("TA_REPLICA_NAME", "r0")]).await;
    let token = platform_token(&d.emulator);
    let post = |context: &str| {
        let request = http::Request::post(format!(
            "{}/v1/callback?callbackContext={context}",
            served.base()
        ))
        .header("content-type", "application/json")
        .header("authorization", token.as_str())
        .body(bytes::Bytes::from_static(b"{\"sender\":[]}"))
        .unwrap();
        let client = client(&d);
        async move { client.send(request).await.unwrap().status() }
    };
    // r1 is unknown: its chat's callback is ignored.
    assert_eq!(post("r1_cAAAA").await, 200);
    assert!(owner.got().is_empty());
    // r1 is added to the file; a reload sends r1's callbacks to it.
    std::fs::write(&file, format!("peers = [\"r1=http://{}\"]\n", owner.addr)).unwrap();
    served.signal("HUP");
    served
        .wait_for_log("the other replicas' addresses changed")
        .await;
    assert_eq!(served.log_count("apply only after a restart"), 0);
    assert_eq!(post("r1_cAAAA").await, 409, "the owner's answer");
    let got = owner.got();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].headers[ta_widget_service::replicas::FORWARDED_BY],
        "r0"
    );
    assert_eq!(served.stop().await, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
