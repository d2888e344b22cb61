//! The time source, injected so that tests control it.

use std::fmt::Debug;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where the orchestrator reads the time.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time, for the protocol, backoffs and cache expiry.
    fn now(&self) -> Instant;
    /// Wall-clock seconds since the Unix epoch, for client assertions.
    fn unix_seconds(&self) -> u64;
}

/// The real clock. Its monotonic time is Tokio's, so that tests with a
/// paused Tokio clock move it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
