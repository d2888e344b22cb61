//! The soak's chat widgets: each runs chats through `serve` one after the
//! other, as a visitor would, while the faults are on: a token, the
//! anonymous application, an invitation to the help desk, two messages and
//! their answers, a stop. Faults end chats early; what each chat came to is
//! counted. A message the visitor sees that its own chat could not have
//! brought (an agent's answer to a message not yet sent, or one message
//! delivered twice) is a wrong message, and there must be none. When the
//! load ends, every chat must end on both sides.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use ta_protocol::Transport;
use ta_test_support::widget::{StepFailed, Widget, message_text};

/// How long a step of a chat may take before the visitor gives up on it.
const STEP: Duration = Duration::from_secs(15);

/// A step cut short by the soak's end.
const SOAK_ENDED: &str = "the soak ended";

/// Consecutive failed polls before the visitor gives up on the chat.
const POLL_FAILURES: u32 = 5;

/// What the chat widgets saw, shared by all of them.
#[derive(Debug, Default)]
pub(crate) struct ChatTally {
    /// What each chat came to: `completed`, or the step that failed.
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// Messages the visitors sent that were accepted.
    pub(crate) said: u64,
    /// Agents' answers the visitors received.
    pub(crate) answers: u64,
    /// Messages no chat of the visitor's own could have brought.
    pub(crate) wrong: u64,
    pub(crate) wrong_reasons: Vec<String>,
}

impl ChatTally {
    fn wrong(&mut self, reason: String) {
        self.wrong += 1;
        if self.wrong_reasons.len() < 10 {
            self.wrong_reasons.push(reason);
        }
    }
}

/// The texts a chat may bring, and from whom.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// The agent's answers, in order.
    pub(crate) answers: Vec<String>,
    /// What the visitor says, in order (as many as there are answers
    /// awaited).
    pub(crate) lines: Vec<&'static str>,
}

/// One chat widget on `origin`, chatting through `service` until `until`.
pub(crate) async fn chat_widget(
    client: Arc<dyn Transport>,
    service: String,
    origin: String,
    script: Script,
    until: tokio::time::Instant,
    tally: Arc<Mutex<ChatTally>>,
) {
    while tokio::time::Instant::now() < until {
        let mut chat = Chat {
            until,
            script: &script,
            said: 0,
            messages: HashMap::new(),
            tally: &tally,
        };
        let outcome = match chat.run(&client, &service, &origin).await {
            Ok(outcome) => outcome.to_owned(),
            Err(failed) => match failed.status {
                // A 2xx that could not be used: say why.
                Some(status) if (200..300).contains(&status) => {
                    format!("{}: {status}, {}", failed.step, brief(&failed.detail))
                }
                Some(status) => format!("{}: {status}", failed.step),
                None => format!("{}: {}", failed.step, brief(&failed.detail)),
            },
        };
        if let Ok(mut t) = tally.lock() {
            *t.outcomes.entry(outcome).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A failure's detail, short enough to be a key of the report.
fn brief(detail: &str) -> String {
    let detail = detail.split(':').next().unwrap_or(detail).trim();
    detail.chars().take(48).collect()
}

/// One chat in progress.
struct Chat<'a> {
    /// When the soak ends: the visitor stops the chat then.
    until: tokio::time::Instant,
    script: &'a Script,
    /// The visitor's lines accepted so far.
    said: usize,
    /// The messages seen: each text, and its event's link.
    messages: HashMap<String, String>,
    tally: &'a Mutex<ChatTally>,
}

/// The value at a JSON pointer, `Null` when there is none.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn deleted(event: &Value) -> bool {
    at(event, "/link/rel") == "conversation" && at(event, "/type") == "deleted"
}

fn connected(event: &Value) -> bool {
    at(event, "/link/rel") == "messaging" && at(event, "/_embedded/messaging/state") == "Connected"
}

fn failed(step: &'static str, status: Option<u16>, detail: &str) -> StepFailed {
    StepFailed {
        step,
        status,
        detail: detail.to_owned(),
    }
}

impl Chat<'_> {
    async fn run(
        &mut self,
        client: &Arc<dyn Transport>,
        service: &str,
        origin: &str,
    ) -> Result<&'static str, StepFailed> {
        let mut widget = Widget::try_from_service(Arc::clone(client), service, origin).await?;
        let result = self.converse(&mut widget).await;
        if result.as_ref().is_err_and(|e| e.detail == SOAK_ENDED) {
            // The visitor ends the chat, if it is connected; otherwise
            // leaves it to the platform's timers.
            return Ok(match widget.try_post("stopMessaging").await {
                Ok(204) => "stopped when the soak ended",
                _ => "left when the soak ended",
            });
        }
        result
    }

    async fn converse(&mut self, widget: &mut Widget) -> Result<&'static str, StepFailed> {
        let app = widget.try_sign_in().await?;
        let status = widget.try_start_chat(&app).await?;
        if status != 201 {
            return Err(failed("start", Some(status), ""));
        }
        if !self.wait(widget, "connect", connected).await? {
            return Ok("ended before it connected");
        }
        let lines = self.script.lines.clone();
        for (i, line) in lines.iter().enumerate() {
            let status = widget.try_say(line).await?;
            if status != 201 {
                return Err(failed("say", Some(status), ""));
            }
            self.said = i + 1;
            if let Ok(mut t) = self.tally.lock() {
                t.said += 1;
            }
            let answer = self.script.answers.get(i).cloned().unwrap_or_default();
            let answered = |e: &Value| message_text(e).is_some_and(|t| t == answer);
            if !self.wait(widget, "answer", answered).await? {
                return Ok("ended before the agent answered");
            }
        }
        let status = widget.try_post("stopMessaging").await?;
        if status != 204 {
            return Err(failed("stop", Some(status), ""));
        }
        if !self.wait(widget, "end", deleted).await? {
            return Ok("ended");
        }
        Ok("completed")
    }

    /// Polls until `wanted` (true), the conversation is deleted (false), or
    /// [`STEP`] passes or polls keep failing (a failure of `step`). Checks
    /// every message it brings.
    async fn wait(
        &mut self,
        widget: &mut Widget,
        step: &'static str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<bool, StepFailed> {
        let end = tokio::time::Instant::now() + STEP;
        let mut failures = 0;
        let mut events: Vec<Value> = widget.seen.clone();
        loop {
            for event in &events {
                self.check(event);
            }
            if widget.seen.iter().any(&wanted) {
                return Ok(true);
            }
            if widget.seen.iter().any(deleted) {
                return Ok(false);
            }
            if tokio::time::Instant::now() >= self.until {
                return Err(failed(step, None, SOAK_ENDED));
            }
            if tokio::time::Instant::now() >= end {
                return Err(failed(step, None, "timed out"));
            }
            match widget.try_poll().await {
                Ok(brought) => {
                    failures = 0;
                    events = brought;
                }
                Err(e) => {
                    failures += 1;
                    if failures >= POLL_FAILURES {
                        return Err(e);
                    }
                    events = Vec::new();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Counts an incoming message, and whether this chat could have brought
    /// it.
    fn check(&mut self, event: &Value) {
        let Some(text) = message_text(event) else {
            return;
        };
        let href = at(event, "/link/href")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if self.messages.get(&text).is_some_and(|h| *h == href) {
            return;
        }
        let Ok(mut t) = self.tally.lock() else { return };
        if self.messages.insert(text.clone(), href).is_some() {
            t.wrong(format!("the message {text:?} delivered twice"));
            return;
        }
        if let Some(i) = self.script.answers.iter().position(|a| *a == text) {
            t.answers += 1;
            if i >= self.said {
                t.wrong(format!(
                    "the agent's answer {} ({text:?}) after {} of the visitor's lines",
                    i + 1,
                    self.said
                ));
            }
        }
    }
}
