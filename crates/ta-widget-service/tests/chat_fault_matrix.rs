//! The chat's fault matrix: each fault on the SA's chat calls to the
//! platform, once and always, and on the platform's callbacks to the SA,
//! during one scripted chat; what the widget saw, how the chat ended, what
//! the SA logged, and how many chat calls the SA sent. The table is
//! `docs/fault-matrix-chat.md`; this test regenerates it and fails on any
//! difference (`UPDATE_FAULT_MATRIX=1` rewrites it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "matrix/common.rs"]
mod common;
#[path = "chat/rig.rs"]
mod rig;

use std::fmt::Write as _;
use std::time::Duration;

use common::{Captured, compare_or_update, escape, upstream_faults};
use rig::{Rig, Widget, is_message, plan, quick_chat};
use ta_emulator::{ChatConfig, EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_test_support::widget::message_text;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/fault-matrix-chat.md"
);
const WAIT: Duration = Duration::from_secs(12);

const WELCOME: &str = "Welcome! An agent will be with you shortly.";
const ANSWER: &str = "Hi, I'm Anna. How can I help?";

fn call_faults() -> Vec<(&'static str, FaultKind)> {
    upstream_faults()
}

/// A change of the platform's callbacks.
type Tweak = fn(&mut ChatConfig);

/// A change made once the world runs.
type Then = fn(&Rig);

fn callback_faults() -> Vec<(&'static str, Tweak, Then)> {
    vec![
        (
            "every callback twice",
            |c| c.duplicate_callbacks = true,
            |_| {},
        ),
        (
            "callbacks in swapped pairs",
            |c| c.reorder_callbacks = true,
            |_| {},
        ),
        (
            "every callback 300 ms late",
            |c| c.callback_delay_ms = 300,
            |_| {},
        ),
        (
            "callbacks signed for another App ID URI (the SA refuses them)",
            |c| c.callback_audience = "https://other.example.com".to_owned(),
            |_| {},
        ),
        (
            "the SA's callback URL unreachable",
            |_| {},
            |rig| {
                // Port 9 (discard) on loopback: nothing listens there.
                rig.setup
                    .emulator
                    .set_callback_url("http://127.0.0.1:9/v1/callback")
                    .unwrap();
            },
        ),
    ]
}

/// What one scripted chat came to.
#[derive(Debug, Clone)]
struct Outcome {
    widget: String,
    ended: String,
    calls: u64,
    log: Vec<String>,
}

/// What the widget saw of the messages, in order, each once.
fn messages(widget: &Widget) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in widget.seen.iter().filter_map(message_text) {
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

fn conversation_deleted(event: &serde_json::Value) -> bool {
    event["link"]["rel"] == "conversation" && event["type"] == "deleted"
}

/// Polls until `wanted` or `limit`; whether it came.
async fn poll_for(
    widget: &mut Widget,
    limit: Duration,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> bool {
    let end = tokio::time::Instant::now() + limit;
    if widget.seen.iter().any(&wanted) {
        return true;
    }
    while tokio::time::Instant::now() < end {
        if widget.poll().await.iter().any(&wanted) {
            return true;
        }
    }
    false
}

async fn chat(config: EmulatorConfig, then: Then) -> (Outcome, Rig) {
    let rig = Rig::start_with(config, |a| a, plan()).await;
    then(&rig);
    let mut widget = rig.widget().await;
    let app = widget.sign_in().await;
    let mut steps = vec![format!("start {}", widget.start_chat(&app).await)];
    let settled = |e: &serde_json::Value| {
        is_message(e, WELCOME) || conversation_deleted(e) || is_message(e, ANSWER)
    };
    poll_for(&mut widget, WAIT, settled).await;
    let welcomed = widget.seen.iter().any(|e| is_message(e, WELCOME));
    let joined = rig
        .until(if welcomed { WAIT } else { Duration::ZERO }, |s| {
            s.chat.agents_joined >= 1
        })
        .await;
    let connected = widget.seen.iter().any(|e| {
        e["link"]["rel"] == "messaging" && e["_embedded"]["messaging"]["state"] == "Connected"
    });
    if joined.chat.agents_joined >= 1 && connected && !widget.seen.iter().any(conversation_deleted)
    {
        steps.push(format!("say {}", widget.say("Hello?").await));
        poll_for(&mut widget, WAIT, |e| {
            is_message(e, ANSWER) || conversation_deleted(e)
        })
        .await;
    }
    if connected && !widget.seen.iter().any(conversation_deleted) {
        steps.push(format!("stop {}", widget.post("stopMessaging").await));
    }
    rig.until(WAIT, |s| s.chat.conversations_open == 0).await;
    let sa_open = rig.open_chats_become(0, WAIT).await;
    // Callbacks and calls still on their way are counted once they land.
    let count = |s: &ta_emulator::StatsSnapshot| {
        (
            s.chat.callbacks_delivered + s.chat.callbacks_refused + s.chat.callbacks_failed,
            s.requests(Route::ChatCall),
        )
    };
    let mut stats = rig.stats();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rig.stats();
        if count(&now) == count(&stats) {
            break;
        }
        stats = now;
    }
    for text in messages(&widget) {
        steps.push(format!("“{text}”"));
    }
    if widget.seen.iter().any(conversation_deleted) {
        steps.push("conversation deleted".to_owned());
    }
    let mut ended = stats.chat.ended.clone();
    ended.sort();
    let by: Vec<String> = rig
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with("ta_chats_ended_total{"))
        .map(str::to_owned)
        .collect();
    let c = &stats.chat;
    let ended = format!(
        "{}; open: {} on the platform, {sa_open} in the SA; agents joined {}; callbacks {} taken, {} refused, {} unanswered{}",
        if ended.is_empty() {
            "not ended".to_owned()
        } else {
            ended.join(", ")
        },
        c.conversations_open,
        c.agents_joined,
        c.callbacks_delivered,
        c.callbacks_refused,
        c.callbacks_failed,
        if by.is_empty() {
            String::new()
        } else {
            format!("; `{}`", by.join("`, `"))
        }
    );
    let outcome = Outcome {
        widget: steps.join(", "),
        ended,
        calls: stats.requests(Route::ChatCall),
        log: Vec::new(),
    };
    (outcome, rig)
}

/// One chat on a runtime of its own thread, so that the logs it gathers
/// are that chat's alone.
fn cell(config: EmulatorConfig, then: Then) -> Outcome {
    std::thread::spawn(move || {
        let captured = Captured::default();
        let subscriber = captured.subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut outcome = runtime.block_on(async {
                let (outcome, rig) = chat(config, then).await;
                drop(rig);
                outcome
            });
            outcome.log = captured.warnings(|target| {
                target.starts_with("ta_bootstrap") || target.starts_with("ta_widget_service")
            });
            outcome
        })
    })
    .join()
    .unwrap()
}

/// A quick chat whose invitation waits long enough for every retry of a
/// failing call to end first (their order is then the same in every run).
fn chat_config() -> ChatConfig {
    ChatConfig {
        invitation_timeout_ms: 10_000,
        ..quick_chat()
    }
}

fn with_call_fault(fault: FaultKind, trigger: Trigger) -> EmulatorConfig {
    EmulatorConfig {
        chat: chat_config(),
        ..EmulatorConfig::default()
    }
    .with_fault(FaultRule::on(Route::ChatCall, fault, trigger))
}

fn with_callback_fault(tweak: Tweak) -> EmulatorConfig {
    let mut chat = chat_config();
    tweak(&mut chat);
    EmulatorConfig {
        chat,
        ..EmulatorConfig::default()
    }
}

fn log_cell(log: &[String]) -> String {
    if log.is_empty() {
        "nothing".to_owned()
    } else {
        log.iter()
            .map(|l| format!("`{}`", escape(l)))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

fn matrix() -> String {
    // Cells run four at a time, each on its own thread.
    let mut jobs: Vec<Box<dyn FnOnce() -> Outcome + Send>> = Vec::new();
    for (_, fault) in call_faults() {
        for trigger in [Trigger::Once, Trigger::Always] {
            let fault = fault.clone();
            jobs.push(Box::new(move || {
                cell(with_call_fault(fault, trigger), |_| {})
            }));
        }
    }
    for (_, tweak, then) in callback_faults() {
        jobs.push(Box::new(move || cell(with_callback_fault(tweak), then)));
    }
    let mut outcomes = Vec::new();
    let mut jobs = jobs.into_iter();
    loop {
        let batch: Vec<_> = jobs.by_ref().take(4).map(std::thread::spawn).collect();
        if batch.is_empty() {
            break;
        }
        outcomes.extend(batch.into_iter().map(|h| h.join().unwrap()));
    }
    let mut outcomes = outcomes.into_iter();
    let mut doc = String::from(HEADER);
    doc.push_str("\n## The SA's chat calls to the platform\n\n| Fault | Once: the widget | the chat | chat calls | Always: the widget | the chat | chat calls | Logged by the SA (always) |\n|---|---|---|---|---|---|---|---|\n");
    for (label, _) in call_faults() {
        let once = outcomes.next().unwrap();
        let always = outcomes.next().unwrap();
        let _ = writeln!(
            doc,
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            escape(&once.widget),
            escape(&once.ended),
            once.calls,
            escape(&always.widget),
            escape(&always.ended),
            always.calls,
            log_cell(&always.log),
        );
    }
    doc.push_str("\n## The platform's callbacks to the SA\n\n| Fault | The widget | The chat | Chat calls | Logged by the SA |\n|---|---|---|---|---|\n");
    for (label, _, _) in callback_faults() {
        let outcome = outcomes.next().unwrap();
        let _ = writeln!(
            doc,
            "| {label} | {} | {} | {} | {} |",
            escape(&outcome.widget),
            escape(&outcome.ended),
            outcome.calls,
            log_cell(&outcome.log),
        );
    }
    doc
}

const HEADER: &str = "# Fault matrix: the chat

One scripted chat per row against a warm service: the widget starts a chat,
waits for the welcome and for the agent, says “Hello?”, waits for the
answer, and stops. What the widget saw (the status of its calls and the
messages it got), how the chat ended (the emulator's records of each
conversation's end, and `ta_chats_ended_total`), how many chat calls the
SA sent to the platform (`startAdhocMeeting`, `addParticipant`, …, retries
included), and the SA's warnings and errors (ports, ids and the
OS's words for a broken connection replaced).
*Once* is a fault on the SA's first chat call only, *always* on every one.
The callbacks' rows include two the SA cannot answer: callbacks signed for
another App ID URI (refused: `--callback-audience` does not match the
registration) and a callback URL nothing listens on (the deployment
unreachable): either way the visitor's invitation times out on the
platform.
The widget's own UCWA calls go to the platform, not through the SA: a fault
there is the widget's to handle (`clients/js`, `ChatSession`).

Generated by `crates/ta-widget-service/tests/chat_fault_matrix.rs`, which fails
when this file differs from what the code does; `UPDATE_FAULT_MATRIX=1 cargo
test -p ta-widget-service --test chat_fault_matrix` rewrites it. The
widget-token steps are in [fault-matrix.md](fault-matrix.md).
";

#[test]
fn the_chat_fault_matrix_in_the_docs_is_what_the_code_does() {
    compare_or_update(GOLDEN, &matrix());
}
