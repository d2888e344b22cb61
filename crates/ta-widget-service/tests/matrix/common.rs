//! What the fault matrices share: logs captured as JSON lines, made
//! comparable from run to run, and the golden file's check.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use ta_emulator::FaultKind;

/// The faults both matrices inject on a route: none (a fault of no
/// effect), error statuses, a reset, an answer cut in half.
pub fn upstream_faults() -> Vec<(&'static str, FaultKind)> {
    let status = |status, retry_after_secs| FaultKind::Status {
        status,
        retry_after_secs,
    };
    vec![
        ("none", FaultKind::Latency { millis: 0 }),
        ("500", status(500, None)),
        ("503", status(503, None)),
        ("429, `Retry-After: 1`", status(429, Some(1))),
        ("reset before the answer", FaultKind::CloseBeforeResponse),
        ("the answer cut in half", FaultKind::TruncatedBody),
    ]
}

/// Log lines, captured in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

impl Captured {
    /// A subscriber writing JSON lines here (spans at `info`, so that a
    /// request's id is on its events).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(self.clone())
            .finish()
    }

    /// The events captured so far.
    pub fn events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The warnings and errors of the targets `wanted` selects, as lines,
    /// each once.
    pub fn warnings(&self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for event in self.events() {
            if is_warning(&event) && wanted(event["target"].as_str().unwrap_or_default()) {
                let line = line(&event);
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
        }
        lines
    }
}

/// Whether an event is a warning or an error.
pub fn is_warning(event: &Value) -> bool {
    matches!(event["level"].as_str(), Some("WARN" | "ERROR"))
}

/// An event as one comparable line: level, message, fields.
pub fn line(event: &Value) -> String {
    let fields = event["fields"].as_object().cloned().unwrap_or_default();
    let message = fields
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut line = format!("{} {message}", event["level"].as_str().unwrap_or_default());
    for (k, v) in &fields {
        if k != "message" {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let _ = write!(line, " {k}={v}");
        }
    }
    normalise(&line)
}

/// How the OS reports a connection that broke: which one a run sees
/// depends on timing (a write after the peer's reset is a broken pipe).
const CONNECTION_LOST: [&str; 4] = [
    "stream closed because of a broken pipe",
    "connection reset by peer",
    "connection reset",
    "broken pipe",
];

/// `text` with what differs from run to run (ports, ids, durations, the
/// OS's words for a broken connection) replaced.
pub fn normalise(text: &str) -> String {
    let mut text = text.to_owned();
    for words in CONNECTION_LOST {
        text = text.replace(words, "{connection lost}");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        let after_word = out.ends_with(|c: char| c.is_ascii_alphanumeric());
        if let Some(after) = rest.strip_prefix(':') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits >= 4 && after_word {
                out.push_str(":PORT");
                rest = &after[digits..];
                continue;
            }
        }
        if is_uuid(rest) {
            out.push_str("UUID");
            rest = &rest[36..];
            continue;
        }
        if let Some(len) = duration(rest).filter(|_| !after_word) {
            out.push_str("{duration}");
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of a duration (`1.25s`, `962.9ms`) at the start of `s`.
fn duration(s: &str) -> Option<usize> {
    let whole = s.bytes().take_while(u8::is_ascii_digit).count();
    let rest = s.get(whole..)?.strip_prefix('.')?;
    let fraction = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rest = rest.get(fraction..)?;
    let unit = ["ms", "µs", "ns", "s"]
        .into_iter()
        .find(|unit| rest.starts_with(unit))?;
    let word_goes_on = rest[unit.len()..].starts_with(|c: char| c.is_ascii_alphanumeric());
    (whole > 0 && fraction > 0 && !word_goes_on).then_some(whole + 1 + fraction + unit.len())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `text` fit for a Markdown table cell.
pub fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Writes `doc` to `golden` with `UPDATE_FAULT_MATRIX` set; else fails
/// where they differ.
pub fn compare_or_update(golden: &str, doc: &str) {
    if std::env::var_os("UPDATE_FAULT_MATRIX").is_some() {
        std::fs::write(golden, doc).unwrap();
        return;
    }
    let was = std::fs::read_to_string(golden).unwrap_or_default();
    if was != doc {
        let changed: Vec<String> = doc
            .lines()
            .zip(was.lines().chain(std::iter::repeat("")))
            .filter(|(now, was)| now != was)
            .take(10)
            .map(|(now, was)| format!("- {was}\n+ {now}"))
            .collect();
        panic!(
            "{golden} differs from what the code does (UPDATE_FAULT_MATRIX=1 rewrites it):\n{}",
            changed.join("\n")
        );
    }
}

#[test]
fn what_differs_from_run_to_run_is_replaced() {
    assert_eq!(
        normalise(
            "GET https://localhost:41175/x gave up in 1.245s (id 0000a791-0000-4000-8000-000000000007), 962.9ms, line 1, column 47, v1.2"
        ),
        "GET https://localhost:PORT/x gave up in {duration} (id UUID), {duration}, line 1, column 47, v1.2"
    );
    assert_eq!(
        normalise("connection error: stream closed because of a broken pipe"),
        normalise("connection error: connection reset")
    );
}
