//! Retry as a pure decision: which answers are retried, how long to wait
//! (exponential backoff with jitter, or the server's `Retry-After`), and when
//! the budget is spent.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{DATE, RETRY_AFTER};

use crate::config::ConfigError;

/// How failed requests are retried.
///
/// Retried: 429, 502, 503 and 504 answers, and transport failures that say
/// retrying may help. Each retry waits `initial_backoff × 2^(n-1)` (capped at
/// `max_backoff`) scaled by a jitter factor in `[0.5, 1)`, or exactly what the
/// server's `Retry-After` asks. No retry starts once `max_attempts` requests
/// were sent or the wait would end after `budget` from the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Requests sent at most for one step, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The longest backoff (not applied to `Retry-After`, which the budget
    /// bounds instead).
    pub max_backoff: Duration,
    /// The longest time from a step's first attempt to its last retry.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A policy with the given limits.
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        budget: Duration,
    ) -> Result<Self, ConfigError> {
        let policy = Self {
            max_attempts,
            initial_backoff,
            max_backoff,
            budget,
        };
        policy.validate()?;
        Ok(policy)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=20).contains(&self.max_attempts) {
            return Err(ConfigError::Setting {
                setting: "retry max_attempts",
                reason: "must be between 1 and 20",
            });
        }
        if self.initial_backoff > self.max_backoff {
            return Err(ConfigError::Setting {
                setting: "retry initial_backoff",
                reason: "must not exceed max_backoff",
            });
        }
        Ok(())
    }

    /// The backoff before retry number `retry` (1 for the first retry),
    /// with `jitter` in `[0, 1)` mapped to a factor in `[0.5, 1)`.
    pub(crate) fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(0.5 + jitter / 2.0)
    }

    /// Decides whether to retry after `attempts` requests were sent, the
    /// first at `elapsed` ago, given the server's requested delay if any.
    pub(crate) fn decide(
        &self,
        attempts: u32,
        elapsed: Duration,
        server_delay: Option<Duration>,
        jitter: f64,
    ) -> RetryDecision {
        if attempts >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::Attempts);
        }
        let wait = server_delay.unwrap_or_else(|| self.backoff(attempts, jitter));
        if elapsed.saturating_add(wait) > self.budget {
            return RetryDecision::GiveUp(GiveUpReason::Budget { wait });
        }
        RetryDecision::Wait(wait)
    }
}

/// The outcome of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Retry after this wait.
    Wait(Duration),
    /// Do not retry.
    GiveUp(GiveUpReason),
}

/// Why no retry is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    /// `max_attempts` requests were sent.
    Attempts,
    /// The next wait would overrun the budget.
    Budget {
        /// The wait that was due.
        wait: Duration,
    },
}

/// Whether an HTTP status is retried: 429, 502, 503, 504.
pub(crate) fn is_retryable_status(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// A parsed `Retry-After` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Delay(Duration),
    /// `Retry-After: <HTTP-date>`.
    At(SystemTime),
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110
/// §10.2.3). Anything else is `None`.
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers saturate rather than fail.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(RetryAfter::Delay(Duration::from_secs(seconds)));
    }
    httpdate::parse_http_date(value).ok().map(RetryAfter::At)
}

/// The delay an answer's `Retry-After` asks for.
///
/// An HTTP-date is measured against the answer's own `Date` header (the
/// server's clock, which avoids clock skew); without a `Date` header an
/// HTTP-date cannot be turned into a delay without a wall clock, which this
/// crate does not read, so it is ignored and the backoff applies.
pub(crate) fn retry_after_delay(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    match parse_retry_after(value)? {
        RetryAfter::Delay(delay) => Some(delay),
        RetryAfter::At(at) => {
            let date = headers.get(DATE)?.to_str().ok()?;
            let now = httpdate::parse_http_date(date).ok()?;
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(250));
        assert_eq!(p.backoff(3, 0.999_999), p.backoff(3, 0.999_999));
        assert!(p.backoff(100, 0.99) < p.max_backoff);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after("3"),
            Some(RetryAfter::Delay(Duration::from_secs(3)))
        );
        assert!(matches!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(RetryAfter::At(_))
        ));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:10 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_delay(&h), None, "no Date header, no delay");
        h.insert(DATE, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after_delay(&h), Some(Duration::from_secs(10)));
    }

    #[test]
    fn decide_respects_attempts_and_budget() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(4, Duration::ZERO, None, 0.5),
            RetryDecision::GiveUp(GiveUpReason::Attempts)
        );
        assert_eq!(
            p.decide(
                1,
                Duration::from_secs(29),
                Some(Duration::from_secs(5)),
                0.5
            ),
            RetryDecision::GiveUp(GiveUpReason::Budget {
                wait: Duration::from_secs(5)
            })
        );
        assert_eq!(
            p.decide(1, Duration::ZERO, Some(Duration::from_secs(2)), 0.5),
            RetryDecision::Wait(Duration::from_secs(2))
        );
    }

    proptest! {
        #[test]
        fn retry_after_never_panics(s in ".*") {
            let _ = parse_retry_after(&s);
        }

        #[test]
        fn backoff_within_bounds(retry in 0u32..200, jitter in proptest::num::f64::ANY) {
            let p = RetryPolicy::default();
            let b = p.backoff(retry, jitter);
            prop_assert!(b <= p.max_backoff);
            prop_assert!(b >= p.initial_backoff / 2);
        }
    }
}
