//! The loop that keeps a [`Bootstrapper`]'s caches warm, so that no caller
//! waits for Azure AD, discovery or the capabilities: only for its mint.

use std::time::{Duration, Instant};

use tracing::warn;

use crate::{BootstrapError, Bootstrapper};

/// How often the loop looks at warm caches when nothing is due sooner.
pub const WARM_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest wait between two looks at warm caches: a renewal due now
/// or in the past is under way in another caller, or its entry expired and
/// the next look fetches anew.
const MIN_WARM_WAIT: Duration = Duration::from_secs(1);
/// The first wait after a failed warm-up; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long the loop waits after a warm-up that succeeded at `now`, with
/// the next renewal `due` (on the same clock).
fn wait_when_warm(now: Instant, due: Option<Instant>) -> Duration {
    due.map_or(WARM_CHECK_INTERVAL, |due| {
        WARM_CHECK_INTERVAL.min(due.saturating_duration_since(now).max(MIN_WARM_WAIT))
    })
}

impl Bootstrapper {
    /// Keeps the caches warm: warms up at once
    /// ([`warm_up`](Self::warm_up)), retries with backoff (1 s doubling to
    /// 60 s) while that fails, then looks again every 30 s and at the AAD
    /// token's or the capabilities' refresh-ahead time when that comes
    /// sooner ([`refresh_due`](Self::refresh_due)), so that no
    /// [`mint`](Self::mint) waits for AAD, discovery or capabilities. Runs
    /// until dropped; spawn it beside whatever mints:
    ///
    /// ```no_run
    /// # async fn example(bootstrapper: ta_bootstrap::Bootstrapper) {
    /// let warm = bootstrapper.clone();
    /// tokio::spawn(async move { warm.keep_warm().await });
    /// # }
    /// ```
    ///
    /// The refresh-ahead times are on the bootstrapper's clock; the waits
    /// are tokio's.
    pub async fn keep_warm(&self) {
        let wake = tokio::sync::Notify::new();
        self.keep_warm_with(&wake, |_| {}).await;
    }

    /// The same, told each warm-up's outcome (`after`, for readiness, say)
    /// and looking again at once when `wake` is notified (after a
    /// credential was replaced, say) rather than after its wait. A failure
    /// is logged at `warn`, without secrets.
    pub async fn keep_warm_with(
        &self,
        wake: &tokio::sync::Notify,
        mut after: impl FnMut(&Result<(), BootstrapError>),
    ) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let outcome = self.warm_up().await;
            after(&outcome);
            let wait = match &outcome {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    wait_when_warm(self.clock().now(), self.refresh_due())
                }
                Err(failure) => {
                    warn!(error = %failure.report_line(), retry_in = ?backoff, "warm-up failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            // Woken early or not, the next round looks again.
            let _ = tokio::time::timeout(wait, wake.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_caches_are_looked_at_when_due_between_one_and_thirty_seconds() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(wait_when_warm(now, None), s(30));
        assert_eq!(wait_when_warm(now, Some(now + s(600))), s(30));
        assert_eq!(wait_when_warm(now, Some(now + s(7))), s(7));
        assert_eq!(wait_when_warm(now, Some(now)), s(1));
        assert_eq!(wait_when_warm(now + s(5), Some(now)), s(1), "past due");
    }
}
