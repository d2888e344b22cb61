//! What a soak did, and whether it passed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::sample::{Sample, flat, median};

/// A soak's figures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SoakReport {
    /// How long the load ran.
    pub duration: Duration,
    /// Widgets asking at once.
    pub widgets: usize,
    /// Tokens received, each verified.
    pub tokens: u64,
    /// Answers by `status` or `status error` (the answer's `error` code).
    pub answers: BTreeMap<String, u64>,
    /// Requests that got no HTTP answer.
    pub no_answer: u64,
    /// Tokens that failed a check: must be 0.
    pub wrong_tokens: u64,
    /// The first reasons of those.
    pub wrong_reasons: Vec<String>,
    /// Fault windows by kind.
    pub windows: BTreeMap<String, u64>,
    /// Faults the emulator fired, by name.
    pub faults_fired: BTreeMap<String, u64>,
    /// Requests to AAD's token endpoint, and the AAD token lifetime.
    pub aad_requests: u64,
    /// The emulator's AAD token lifetime.
    pub aad_lifetime: Duration,
    /// Upstream requests of the token's path (discovery, applications,
    /// application, mint), all answers.
    pub api_requests: u64,
    /// What each chat came to (`completed`, or the step that failed and
    /// how).
    pub chats: BTreeMap<String, u64>,
    /// The visitors' lines accepted, and the agents' answers received.
    pub chat_lines_said: u64,
    /// The agents' answers the visitors received.
    pub chat_answers: u64,
    /// Messages a visitor saw that its own chat could not have brought:
    /// must be 0.
    pub wrong_messages: u64,
    /// The first reasons of those.
    pub wrong_message_reasons: Vec<String>,
    /// Conversations still open when the soak gave up waiting for them to
    /// end: on the platform, in `serve` (must be 0 and 0).
    pub chats_open_at_end: (u64, u64),
    /// The platform's conversations left open, described (the first 20).
    pub left_open: Vec<String>,
    /// How long the chats left at the end took to end.
    pub settle_time: Duration,
    /// The platform's conversations (visitors' and meetings) started and
    /// ended.
    pub conversations: (u64, u64),
    /// The SA's chat calls to the platform, all answers.
    pub chat_calls: u64,
    /// Callbacks `serve` took (2xx), refused, and left unanswered.
    pub callbacks: u64,
    /// Callbacks `serve` refused.
    pub callbacks_refused: u64,
    /// Callback deliveries that got no answer.
    pub callbacks_unanswered: u64,
    /// `serve`'s lines that tell of a panic: must be 0.
    pub panics: u64,
    /// `serve`'s memory and descriptors over time.
    pub samples: Vec<Sample>,
}

impl SoakReport {
    /// Whether memory stayed flat (the last quarter's median within 25 %
    /// and 8 MiB of the second quarter's).
    pub fn memory_flat(&self) -> bool {
        let rss: Vec<u64> = self.samples.iter().map(|s| s.rss_kib).collect();
        flat(&rss, 1.25, 8 * 1024)
    }

    /// Whether open descriptors stayed flat (within 32 of the second
    /// quarter's median).
    pub fn fds_flat(&self) -> bool {
        let fds: Vec<u64> = self.samples.iter().map(|s| s.fds).collect();
        flat(&fds, 1.0, 32)
    }

    /// No wrong token, no wrong message, every chat ended on both sides, no
    /// panic, memory and descriptors flat.
    pub fn passed(&self) -> bool {
        self.wrong_tokens == 0
            && self.wrong_messages == 0
            && self.chats_open_at_end == (0, 0)
            && self.panics == 0
            && self.memory_flat()
            && self.fds_flat()
    }
}

fn mib(kib: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mib = kib as f64 / 1024.0;
    format!("{mib:.1} MiB")
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64();
        writeln!(f, "soak: {:.0} s, {} widgets", secs, self.widgets)?;
        #[allow(clippy::cast_precision_loss)]
        let rate = self.tokens as f64 / secs.max(1.0);
        writeln!(
            f,
            "tokens served and verified: {} ({rate:.1}/s)",
            self.tokens
        )?;
        writeln!(f, "wrong tokens: {}", self.wrong_tokens)?;
        for reason in &self.wrong_reasons {
            writeln!(f, "  {reason}")?;
        }
        writeln!(f, "answers:")?;
        for (answer, n) in &self.answers {
            writeln!(f, "  {answer}: {n}")?;
        }
        writeln!(f, "  no answer: {}", self.no_answer)?;
        let chats: u64 = self.chats.values().sum();
        writeln!(
            f,
            "chats: {chats}, {} of the visitors' lines said, {} answers",
            self.chat_lines_said, self.chat_answers
        )?;
        for (outcome, n) in &self.chats {
            writeln!(f, "  {outcome}: {n}")?;
        }
        writeln!(f, "wrong messages: {}", self.wrong_messages)?;
        for reason in &self.wrong_message_reasons {
            writeln!(f, "  {reason}")?;
        }
        let (platform, serve) = self.chats_open_at_end;
        writeln!(
            f,
            "chats open at the end: {platform} on the platform, {serve} in serve (after {:.1} s)",
            self.settle_time.as_secs_f64()
        )?;
        for conversation in self.left_open.iter().take(20) {
            writeln!(f, "  {conversation}")?;
        }
        writeln!(
            f,
            "the platform's conversations (visitors' and meetings): {} started, {} ended",
            self.conversations.0, self.conversations.1
        )?;
        writeln!(
            f,
            "chat calls: {}; callbacks: {} taken, {} refused, {} unanswered",
            self.chat_calls, self.callbacks, self.callbacks_refused, self.callbacks_unanswered
        )?;
        writeln!(f, "fault windows:")?;
        for (kind, n) in &self.windows {
            writeln!(f, "  {kind}: {n}")?;
        }
        writeln!(f, "faults fired by the emulator:")?;
        for (kind, n) in &self.faults_fired {
            writeln!(f, "  {kind}: {n}")?;
        }
        let lifetimes = secs / self.aad_lifetime.as_secs_f64().max(1.0);
        writeln!(
            f,
            "AAD token requests: {} over {lifetimes:.1} token lifetimes of {} s",
            self.aad_requests,
            self.aad_lifetime.as_secs()
        )?;
        writeln!(f, "API requests on the token's path: {}", self.api_requests)?;
        writeln!(f, "panics in serve's log: {}", self.panics)?;
        let rss: Vec<u64> = self.samples.iter().map(|s| s.rss_kib).collect();
        let fds: Vec<u64> = self.samples.iter().map(|s| s.fds).collect();
        if let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) {
            writeln!(
                f,
                "serve's memory: {} at first, median {}, at most {}, {} at the end ({})",
                mib(first.rss_kib),
                mib(median(rss.clone())),
                mib(rss.iter().copied().max().unwrap_or(0)),
                mib(last.rss_kib),
                if self.memory_flat() {
                    "flat"
                } else {
                    "GROWING"
                }
            )?;
            writeln!(
                f,
                "serve's descriptors: {} at first, at most {}, {} at the end ({})",
                first.fds,
                fds.iter().copied().max().unwrap_or(0),
                last.fds,
                if self.fds_flat() { "flat" } else { "GROWING" }
            )?;
        }
        write!(
            f,
            "result: {}",
            if self.passed() { "passed" } else { "FAILED" }
        )
    }
}
