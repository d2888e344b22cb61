//! The demo page's chat with the help desk in a real browser: `ta-bootstrap
//! serve --emulator` (the emulator playing the platform and its agent, the
//! widget-token service taking the platform's callbacks, and the demo
//! sites), driven in headless Chromium over WebDriver, with the browser's
//! normal certificate checks.
//!
//! - A whole conversation: the visitor starts a chat, types (the help desk
//!   is told), sends a message, sees the agent typing and then the answer;
//!   the page's token is renewed meanwhile and the chat goes on with its
//!   own; the visitor ends the chat. The SA's log and metrics show the chat
//!   bridged and ended by the visitor, and the emulator's counters agree.
//! - A page frozen mid-chat past the emulator's long poll (3 s here),
//!   while the agent answers: resumed, the page shows each message once,
//!   none lost, and the chat goes on, past its token's expiry with no token
//!   renewed (Chromium leaves a resumed page hidden, and a hidden page
//!   renews nothing): a chat outlives its token.
//!
//! Same requirements as `browser.rs` (Chromium and chromedriver; never
//! skipped in CI). Screenshots go to `target/browser/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

#[path = "common/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use browser::*;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// The emulator's widget-token lifetime here: the page renews after 15 s,
/// while the chat is open.
const TOKEN_LIFETIME_S: u64 = 20;
/// The scripted agent's answers, in order (`AgentConfig::default`).
const ANSWERS: [&str; 3] = [
    "Hi, I'm Anna. How can I help?",
    "Let me check that for you.",
    "Is there anything else I can do?",
];
/// The agent, as the visitor sees them.
const AGENT: &str = "Anna (Support)";
/// The SA's welcome (`Plan::new`'s default).
const WELCOME: &str = "Welcome! An agent will be with you shortly.";

/// One line of the transcript, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    from: String,
    who: String,
    text: String,
    state: String,
}

async fn transcript(client: &Client) -> Vec<Line> {
    let lines = client
        .execute(
            "return Array.from(document.querySelectorAll('#transcript li')).map((li) => ({
               from: li.dataset.from || '', state: li.dataset.state || '',
               who: (li.querySelector('.who') || {}).textContent || '',
               text: (li.querySelector('.text') || {}).textContent || '' }));",
            vec![],
        )
        .await
        .unwrap();
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| Line {
            from: l["from"].as_str().unwrap().to_owned(),
            who: l["who"].as_str().unwrap().to_owned(),
            text: l["text"].as_str().unwrap().to_owned(),
            state: l["state"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// The texts of the lines from `from` (`agent`, `visitor`, `system`).
async fn texts(client: &Client, from: &str) -> Vec<String> {
    transcript(client)
        .await
        .into_iter()
        .filter(|l| l.from == from)
        .map(|l| l.text)
        .collect()
}

async fn chat_state(client: &Client) -> String {
    client
        .execute(
            "return document.getElementById('chat').dataset.chat;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until `done` holds of the transcript, failing on an ended chat
/// (unless `done` wants one) or after `timeout`.
async fn wait_for_transcript<F>(client: &Client, what: &str, timeout: Duration, done: F)
where
    F: Fn(&[Line], &str) -> bool,
{
    let start = Instant::now();
    loop {
        let lines = transcript(client).await;
        let state = chat_state(client).await;
        if done(&lines, &state) {
            return;
        }
        assert!(
            state != "ended" && state != "unavailable",
            "waiting for {what}, the chat is {state}: {lines:#?}\n{}",
            text(client, "chat-status").await
        );
        assert!(
            start.elapsed() < timeout,
            "no {what} within {timeout:?}; the chat is {state}: {lines:#?}\n{}",
            text(client, "chat-status").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records every text the typing indicator shows (it may show for less
/// time than a poll of the page takes), and when each transcript line
/// appeared on the page's monotonic clock (`performance.now()`).
async fn watch_page(client: &Client) {
    client
        .execute(
            "const t = document.getElementById('typing');
             window.typingSeen = [];
             new MutationObserver(() => { if (!t.hidden) window.typingSeen.push(t.textContent); })
               .observe(t, { attributes: true, childList: true, characterData: true, subtree: true });
             window.linesShown = [];
             new MutationObserver((changes) => {
               for (const change of changes) for (const node of change.addedNodes) {
                 const text = node.querySelector && node.querySelector('.text');
                 window.linesShown.push({ text: text ? text.textContent : '', at: performance.now() });
               }
             }).observe(document.getElementById('transcript'), { childList: true });",
            vec![],
        )
        .await
        .unwrap();
}

/// When the page showed the line `text` (ms on its monotonic clock).
async fn shown_at(client: &Client, text: &str) -> f64 {
    client
        .execute(
            "const line = window.linesShown.find((l) => l.text === arguments[0]);
             return line ? line.at : null;",
            vec![json!(text)],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or_else(|| panic!("{text:?} was never shown"))
}

async fn page_now(client: &Client) -> f64 {
    client
        .execute("return performance.now();", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap()
}

async fn typing_seen(client: &Client) -> Vec<String> {
    let seen = client
        .execute("return window.typingSeen || [];", vec![])
        .await
        .unwrap();
    serde_json::from_value(seen).unwrap()
}

/// The page connected, its chat ready; then the chat started and connected
/// (the help desk accepted and bridged it, and said its welcome).
async fn start_chat(client: &Client, urls: &Urls) {
    client.goto(&urls.allowed).await.unwrap();
    wait_for_state(
        client,
        "connected",
        &["refused", "error", "expired"],
        || async { true },
    )
    .await;
    wait_for_transcript(client, "the chat ready", STATE_TIMEOUT, |_, state| {
        state == "idle"
    })
    .await;
    watch_page(client).await;
    client
        .find(Locator::Id("start-chat"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_transcript(client, "the welcome", STATE_TIMEOUT, |lines, state| {
        state == "connected" && lines.iter().any(|l| l.text == WELCOME)
    })
    .await;
}

/// Types `message` into the composer (key by key: the page tells the help
/// desk the visitor is typing) and presses Enter.
async fn say(client: &Client, message: &str) {
    let input = client.find(Locator::Id("message")).await.unwrap();
    input.send_keys(message).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap();
}

/// A plain GET of `url`: its body, after a 200.
async fn get_text(url: String) -> String {
    let (head, body) = tokio::task::spawn_blocking(move || http_request("GET", &url, &[], ""))
        .await
        .unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}\n{body}");
    body
}

/// The emulator's counters, from its widget side (the page's
/// anonApplications link names it).
async fn emulator_stats(client: &Client) -> Value {
    let anon = text(client, "anon-applications").await;
    let base = anon
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("anonApplications {anon:?}"));
    serde_json::from_str(&get_text(format!("http://{base}/_emulator/stats")).await).unwrap()
}

/// The service's metrics (Prometheus text).
async fn metrics(urls: &Urls) -> String {
    get_text(urls.token.replace("/v1/widget-token", "/metrics")).await
}

/// The log events whose message is `message`.
fn logged(urls: &Urls, message: &str) -> Vec<Value> {
    urls.log
        .events()
        .into_iter()
        .filter(|e| e["fields"]["message"] == message)
        .collect()
}

async fn whole_conversation(client: Client, urls: Urls, _driver: String) {
    start_chat(&client, &urls).await;
    let opened_on = text(&client, "chat-session").await;
    assert_eq!(opened_on, text(&client, "session-id").await);

    // The visitor types and sends; the message is delivered.
    say(&client, "Where is my order?").await;
    wait_for_transcript(
        &client,
        "the message delivered",
        STATE_TIMEOUT,
        |lines, _| {
            lines.iter().any(|l| {
                l.from == "visitor" && l.text == "Where is my order?" && l.state == "delivered"
            })
        },
    )
    .await;
    // The agent types, then answers.
    wait_for_transcript(&client, "the agent's answer", STATE_TIMEOUT, |lines, _| {
        lines
            .iter()
            .any(|l| l.from == "agent" && l.text == ANSWERS[0])
    })
    .await;
    let typing = typing_seen(&client).await;
    assert!(
        typing.iter().any(|t| t == &format!("{AGENT} is typing…")),
        "the agent's typing was never shown: {typing:?}"
    );
    assert!(
        !client
            .find(Locator::Id("typing"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "typing still shown after the answer"
    );
    let answer = transcript(&client)
        .await
        .into_iter()
        .find(|l| l.text == ANSWERS[0])
        .unwrap();
    assert_eq!(answer.who, AGENT);
    let stats = emulator_stats(&client).await;
    assert!(
        stats["chat"]["visitor_typing"].as_u64().unwrap() >= 1,
        "the help desk was never told the visitor types: {}",
        stats["chat"]
    );

    // The page's token is renewed (after 15 s): the chat goes on, on the
    // token it opened with.
    let renewed_at = Instant::now();
    while text(&client, "renewals").await == "0" {
        assert!(
            renewed_at.elapsed() < Duration::from_secs(TOKEN_LIFETIME_S + 15),
            "no renewal: {}",
            describe(&client).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_ne!(text(&client, "session-id").await, opened_on);
    assert_eq!(text(&client, "chat-session").await, opened_on);
    say(&client, "Order 1234, please").await;
    wait_for_transcript(
        &client,
        "the answer after the renewal",
        STATE_TIMEOUT,
        |lines, _| {
            lines
                .iter()
                .any(|l| l.from == "agent" && l.text == ANSWERS[1])
        },
    )
    .await;
    assert_eq!(
        texts(&client, "agent").await,
        [WELCOME, ANSWERS[0], ANSWERS[1]],
        "each message once, in order"
    );
    assert_no_token(&client.source().await.unwrap());
    save_element_screenshot(&client, "chat", "demo-chat.png").await;

    // The visitor ends the chat.
    client
        .find(Locator::Id("end-chat"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_transcript(&client, "the end", STATE_TIMEOUT, |_, state| {
        state == "ended"
    })
    .await;
    assert_eq!(text(&client, "chat-ending").await, "by you: ended");
    assert!(
        client
            .find(Locator::Id("message"))
            .await
            .unwrap()
            .attr("disabled")
            .await
            .unwrap()
            .is_some(),
        "the composer is still open"
    );

    // The SA's side: bridged, then ended by the visitor, in its log and
    // its metrics; the platform's conversation is closed.
    let deadline = Instant::now() + STATE_TIMEOUT;
    while logged(&urls, "chat ended").is_empty() {
        assert!(Instant::now() < deadline, "no `chat ended` in the log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged(&urls, "chat bridged").len(), 1);
    let ended = logged(&urls, "chat ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["fields"]["by"], "visitor", "{}", ended[0]);
    let metrics = metrics(&urls).await;
    for line in [
        "ta_chats_started_total 1",
        "ta_chats_bridged_total 1",
        "ta_chats_ended_total{by=\"visitor\"} 1",
        "ta_chat_messages_total{from=\"visitor\"} 2",
        "ta_chat_messages_total{from=\"agent\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in the metrics:\n{metrics}"
        );
    }
    let stats = emulator_stats(&client).await;
    assert_eq!(
        stats["chat"]["messages_from_visitor"], 2,
        "{}",
        stats["chat"]
    );
    assert_eq!(
        stats["chat"]["undelivered_messages"], 0,
        "{}",
        stats["chat"]
    );
    let deadline = Instant::now() + STATE_TIMEOUT;
    while emulator_stats(&client).await["chat"]["conversations_open"] != 0 {
        assert!(Instant::now() < deadline, "conversations still open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    save_element_screenshot(&client, "chat", "demo-chat-ended.png").await;
    println!(
        "chat: bridged, {} agent messages, ended by the visitor; the page renewed its token mid-chat",
        texts(&client, "agent").await.len()
    );
}

/// How long the emulator holds an event poll here.
const LONG_POLL_S: u64 = 3;
/// The token's life in the frozen page: its renewal (after 15 s) falls
/// in the freeze, and it expires soon after.
const FROZEN_TOKEN_LIFETIME_S: u64 = 20;
/// How long the agent thinks before typing, in the frozen page's run: the
/// freeze begins well within it, however slow the machine.
const SLOW_AGENT_THINK_MS: u64 = 3000;
/// How long the page stays frozen: past several long polls.
const FROZEN: Duration = Duration::from_secs(10);

async fn frozen_mid_chat(client: Client, urls: Urls, driver: String) {
    start_chat(&client, &urls).await;
    say(&client, "First question").await;
    wait_for_transcript(&client, "the first answer", STATE_TIMEOUT, |lines, _| {
        lines.iter().any(|l| l.text == ANSWERS[0])
    })
    .await;
    // The second message delivered, the page frozen at once: the agent
    // answers while nothing on the page runs.
    say(&client, "Second question").await;
    wait_for_transcript(
        &client,
        "the second delivered",
        STATE_TIMEOUT,
        |lines, _| {
            lines
                .iter()
                .any(|l| l.text == "Second question" && l.state == "delivered")
        },
    )
    .await;
    let page_frozen_at = page_now(&client).await;
    cdp(
        &client,
        &driver,
        "Page.setWebLifecycleState",
        json!({ "state": "frozen" }),
    )
    .await;
    tokio::time::sleep(FROZEN).await;
    let stats = emulator_stats(&client).await;
    assert_eq!(
        stats["chat"]["messages_to_visitor"], 3,
        "the agent did not answer during the freeze: {}",
        stats["chat"]
    );
    cdp(
        &client,
        &driver,
        "Page.setWebLifecycleState",
        json!({ "state": "active" }),
    )
    .await;
    // Chromium freezes hidden pages, and leaves them hidden once resumed
    // (browser_clock.rs relies on it too): a hidden page renews nothing.
    let visibility = client
        .execute("return document.visibilityState;", vec![])
        .await
        .unwrap();
    assert_eq!(visibility, "hidden", "the resumed page is shown");
    wait_for_transcript(
        &client,
        "the answer given during the freeze",
        STATE_TIMEOUT,
        |lines, _| lines.iter().any(|l| l.text == ANSWERS[1]),
    )
    .await;
    // Shown only once the page ran again: it was frozen past the long
    // poll while the answer waited for it.
    let shown_after_ms = shown_at(&client, ANSWERS[1]).await - page_frozen_at;
    assert!(
        shown_after_ms >= (FROZEN.as_millis() as f64) - 500.0,
        "the answer was shown {shown_after_ms} ms into a {FROZEN:?} freeze: the page was not frozen"
    );
    println!(
        "frozen {:.1} s (the long poll is {LONG_POLL_S} s): the answer, sent by the agent during the \
         freeze, shown {:.1} s after it began",
        FROZEN.as_secs_f32(),
        shown_after_ms / 1000.0
    );
    // The token expires, and the hidden page renews nothing: the chat goes
    // on with no live token.
    let deadline = Instant::now() + Duration::from_secs(FROZEN_TOKEN_LIFETIME_S + 10);
    while text(&client, "countdown").await != "expired" {
        assert!(
            Instant::now() < deadline,
            "the token did not expire: {}",
            describe(&client).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    say(&client, "Third question").await;
    wait_for_transcript(&client, "the third answer", STATE_TIMEOUT, |lines, _| {
        lines.iter().any(|l| l.text == ANSWERS[2])
    })
    .await;
    // Nothing lost, nothing doubled, on either side.
    tokio::time::sleep(Duration::from_secs(LONG_POLL_S + 1)).await;
    assert_eq!(
        texts(&client, "agent").await,
        [WELCOME, ANSWERS[0], ANSWERS[1], ANSWERS[2]]
    );
    let mine = transcript(&client)
        .await
        .into_iter()
        .filter(|l| l.from == "visitor")
        .map(|l| (l.text, l.state))
        .collect::<Vec<_>>();
    let delivered = |t: &str| (t.to_owned(), "delivered".to_owned());
    assert_eq!(
        mine,
        [
            delivered("First question"),
            delivered("Second question"),
            delivered("Third question")
        ]
    );
    let stats = emulator_stats(&client).await;
    assert_eq!(
        stats["psat_tokens_minted"], 1,
        "the page renewed its token: the chat was not shown to outlive it"
    );
    assert_eq!(text(&client, "renewals").await, "0");
    assert_eq!(
        stats["chat"]["messages_from_visitor"], 3,
        "{}",
        stats["chat"]
    );
    assert_eq!(stats["chat"]["messages_to_visitor"], 4, "{}", stats["chat"]);
    assert_eq!(
        stats["chat"]["undelivered_messages"], 0,
        "{}",
        stats["chat"]
    );
    assert_eq!(chat_state(&client).await, "connected");
    save_element_screenshot(&client, "chat", "demo-chat-resumed.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_chat_with_the_help_desk_in_headless_chromium() {
    let Some(browser) = Browser::start("browser-chat", TOKEN_LIFETIME_S).await else {
        return;
    };
    browser
        .run(Duration::from_secs(180), whole_conversation)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_frozen_mid_chat_past_the_long_poll_loses_and_doubles_nothing() {
    // The emulator's own configuration: the agent, slower.
    let config = std::env::temp_dir().join(format!(
        "ta-browser-chat-{}-{}.toml",
        std::process::id(),
        LONG_POLL_S
    ));
    std::fs::write(
        &config,
        format!(
            "[[chat.agents]]\nuri = \"sip:anna@contoso.com\"\nname = \"Anna\"\nthink_ms = {SLOW_AGENT_THINK_MS}\n"
        ),
    )
    .unwrap();
    let long_poll = LONG_POLL_S.to_string();
    let path = config.display().to_string();
    let browser = Browser::start_with(
        "browser-chat-frozen",
        FROZEN_TOKEN_LIFETIME_S,
        &[
            "--emulator-long-poll",
            &long_poll,
            "--emulator-config",
            &path,
        ],
    )
    .await;
    let _ = std::fs::remove_file(&config);
    let Some(browser) = browser else {
        return;
    };
    browser.run(Duration::from_secs(180), frozen_mid_chat).await;
}
