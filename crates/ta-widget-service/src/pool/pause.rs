//! When the pool's refills pause after failed mints: pure, time passed in.
//!
//! A failure while no pause is running starts one for the longer of the
//! `Retry-After` the API asked for (at most [`MAX_ASKED`]) and the backoff,
//! and doubles the backoff (1 s to [`MAX_BACKOFF`]); the other refills of
//! that round failing meanwhile can lengthen the pause to what they were
//! asked, never shorten it, and do not double the backoff again. A mint
//! that succeeds resets the backoff. A reload lifts the backoff's pause (a
//! new credential or configuration is tried at once), but not what the API
//! asked for: its `Retry-After` is kept.

use std::time::{Duration, Instant};

/// The first backoff.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest `Retry-After` the pool honours: an API asking for longer is
/// asked again after this.
pub(crate) const MAX_ASKED: Duration = Duration::from_secs(300);

/// The refills' pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pause {
    backoff: Duration,
    /// The end of the pause: the backoff's or the API's, the later.
    until: Option<Instant>,
    /// The end of what the API asked for (never after `until`).
    asked_until: Option<Instant>,
}

impl Default for Pause {
    fn default() -> Self {
        Self {
            backoff: FIRST_BACKOFF,
            until: None,
            asked_until: None,
        }
    }
}

impl Pause {
    /// Whether refills pause at `now` (a pause that ran out is over).
    pub(crate) fn active(&mut self, now: Instant) -> bool {
        if self.until.is_some_and(|until| now >= until) {
            self.until = None;
        }
        if self.asked_until.is_some_and(|until| now >= until) {
            self.asked_until = None;
        }
        self.until.is_some()
    }

    /// How long until the pause ends (`None`: no pause).
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until.map(|until| until.saturating_duration_since(now))
    }

    /// A refill's mint failed at `now`, the API asking for `asked` (its
    /// `Retry-After`, if any): the pause from now on.
    pub(crate) fn failed(&mut self, now: Instant, asked: Option<Duration>) -> Duration {
        let asked = asked.unwrap_or_default().min(MAX_ASKED);
        let pause = if self.active(now) {
            asked
        } else {
            let pause = asked.max(self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            pause
        };
        // `MAX_ASKED` and `MAX_BACKOFF` keep this far from overflowing.
        let later = |at: Option<Instant>, by: Duration| {
            let until = now.checked_add(by).unwrap_or(now);
            Some(at.map_or(until, |u| u.max(until)))
        };
        self.until = later(self.until, pause);
        if !asked.is_zero() {
            self.asked_until = later(self.asked_until, asked);
        }
        self.until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }

    /// A refill's mint succeeded: the next failure backs off from 1 s.
    pub(crate) fn succeeded(&mut self) {
        self.backoff = FIRST_BACKOFF;
    }

    /// A reload: the backoff starts over and its pause is lifted; what
    /// the API asked for still holds.
    pub(crate) fn lift(&mut self) {
        self.backoff = FIRST_BACKOFF;
        self.until = self.asked_until;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_later_failure_never_shortens_the_api_s_retry_after() {
        let t0 = Instant::now();
        let mut pause = Pause::default();
        assert_eq!(pause.failed(t0, Some(120 * S)), 120 * S);
        // A timeout (no Retry-After) in the same round: still 120 s.
        assert_eq!(pause.failed(t0 + S, None), 119 * S);
        assert!(pause.active(t0 + 100 * S));
        assert!(!pause.active(t0 + 120 * S));
        // A longer ask lengthens it.
        let mut pause = Pause::default();
        pause.failed(t0, Some(10 * S));
        assert_eq!(pause.failed(t0, Some(30 * S)), 30 * S);
    }

    #[test]
    fn the_backoff_doubles_once_per_round_of_failures() {
        let t0 = Instant::now();
        let mut pause = Pause::default();
        // Eight refills of one round fail together: a pause of 1 s.
        for _ in 0..8 {
            assert_eq!(pause.failed(t0, None), S);
        }
        // The next round: 2 s, then 4 s.
        assert!(!pause.active(t0 + S));
        assert_eq!(pause.failed(t0 + S, None), 2 * S);
        assert_eq!(pause.failed(t0 + S, None), 2 * S);
        assert_eq!(pause.failed(t0 + 3 * S, None), 4 * S);
        // Capped at 60 s.
        let mut at = t0 + 7 * S;
        for _ in 0..20 {
            let p = pause.failed(at, None);
            assert!(p <= MAX_BACKOFF);
            at += p;
        }
        assert_eq!(pause.failed(at, None), MAX_BACKOFF);
        // A success starts the backoff over.
        pause.succeeded();
        at += MAX_BACKOFF;
        assert_eq!(pause.failed(at, None), S);
    }

    #[test]
    fn an_absurd_retry_after_is_capped_and_a_reload_keeps_it() {
        let t0 = Instant::now();
        let mut pause = Pause::default();
        assert_eq!(pause.failed(t0, Some(Duration::MAX)), MAX_ASKED);
        assert_eq!(pause.remaining(t0 + S), Some(MAX_ASKED - S));
        pause.lift();
        assert!(pause.active(t0 + S), "the API asked for it");
        assert_eq!(pause.remaining(t0 + S), Some(MAX_ASKED - S));
        assert!(!pause.active(t0 + MAX_ASKED));
        // The backoff started over.
        assert_eq!(pause.failed(t0 + MAX_ASKED, None), S);
    }

    #[test]
    fn a_reload_lifts_the_backoff_but_not_a_shorter_retry_after_s_remainder() {
        let t0 = Instant::now();
        let mut pause = Pause::default();
        // Backed off to 16 s, with no Retry-After: a reload lifts it all.
        let mut at = t0;
        for _ in 0..4 {
            at += pause.failed(at, None);
        }
        assert_eq!(pause.failed(at, None), 16 * S);
        pause.lift();
        assert!(!pause.active(at));
        assert_eq!(pause.failed(at, None), S, "the backoff started over");
        // A 16 s backoff and a 5 s Retry-After: a reload leaves the 5 s.
        let mut pause = Pause::default();
        let mut at = t0;
        for _ in 0..4 {
            at += pause.failed(at, None);
        }
        assert_eq!(pause.failed(at, Some(5 * S)), 16 * S);
        pause.lift();
        assert_eq!(pause.remaining(at + S), Some(4 * S));
        assert!(!pause.active(at + 5 * S));
    }
}
