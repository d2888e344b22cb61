//! The capabilities cache: what discovery, applications and application
//! brought, kept for a lifetime and renewed ahead of its end.
//!
//! Like the AAD token: fresh until its refresh-ahead time (80 % to 84 % of
//! its life, jittered so that replicas do not renew together), then still
//! served while one renewal runs, until it expires. A renewal that fails
//! while the entry is still valid keeps the entry and holds further
//! renewals back (5 s, doubling to 60 s); an expired entry is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ta_protocol::Capabilities;
use tracing::warn;

use crate::BootstrapError;
use crate::single_flight::{Entry, refresh_margin};

/// How long fetched capabilities are used, by default, before they are
/// fetched again (consent can change): 15 minutes. Renewed ahead of that,
/// at 80 % to 84 % of it.
pub const CAPABILITIES_TTL: Duration = Duration::from_secs(15 * 60);

/// The first hold after a failed renewal; it doubles up to
/// [`MAX_RENEWAL_HOLD`].
const FIRST_RENEWAL_HOLD: Duration = Duration::from_secs(5);
const MAX_RENEWAL_HOLD: Duration = Duration::from_secs(60);

/// One fetch's capabilities, with the lifetime and margin drawn for them.
pub(crate) struct Fetched {
    pub(crate) caps: Capabilities,
    pub(crate) lifetime: Duration,
    /// Drawn with jitter by the fetcher ([`refresh_margin`]).
    pub(crate) refresh_margin: Duration,
}

impl Fetched {
    /// `caps`, for `lifetime`, renewed `jitter` (in `[0, 1]`) into the
    /// refresh window.
    pub(crate) fn new(caps: Capabilities, lifetime: Duration, jitter: f64) -> Self {
        Self {
            caps,
            lifetime,
            refresh_margin: refresh_margin(lifetime, jitter),
        }
    }
}

#[derive(Debug)]
struct Cached {
    caps: Arc<Capabilities>,
    expires_at: Instant,
    refresh_at: Instant,
}

/// The cached capabilities and the hold on renewals after a failed one.
#[derive(Debug, Default)]
pub(crate) struct CapsEntry {
    cached: Option<Cached>,
    /// Failed renewals in a row (while the entry was valid).
    failures: u32,
    /// No renewal before this.
    hold_until: Option<Instant>,
}

/// What a look at the cache found.
#[derive(Debug)]
pub(crate) enum Look {
    /// Fresh: nothing to do.
    Fresh(Arc<Capabilities>),
    /// Still valid, but its renewal is due now: serve it, renew behind.
    Due(Arc<Capabilities>),
    /// Still valid, due, but renewals are held back after a failure.
    Held(Arc<Capabilities>),
    /// Nothing valid: the caller waits for a fetch.
    Missing,
}

impl CapsEntry {
    /// What the cache holds at `now`.
    pub(crate) fn look(&self, now: Instant) -> Look {
        let Some(cached) = self.cached.as_ref().filter(|c| now < c.expires_at) else {
            return Look::Missing;
        };
        let caps = Arc::clone(&cached.caps);
        if now < cached.refresh_at {
            Look::Fresh(caps)
        } else if self.hold_until.is_some_and(|until| now < until) {
            Look::Held(caps)
        } else {
            Look::Due(caps)
        }
    }

    /// When the next renewal is due: the refresh-ahead time, or the end of
    /// a hold after a failed renewal when that is later. `None` when
    /// nothing is cached.
    pub(crate) fn refresh_due(&self) -> Option<Instant> {
        let refresh_at = self.cached.as_ref()?.refresh_at;
        Some(
            self.hold_until
                .map_or(refresh_at, |until| until.max(refresh_at)),
        )
    }

    /// Whether anything valid is cached at `now`.
    pub(crate) fn is_valid(&self, now: Instant) -> bool {
        !matches!(self.look(now), Look::Missing)
    }

    /// Forgets the entry, if it is `stale` (another caller may have
    /// replaced it); forgets any entry when `stale` is `None`. Whether it
    /// did.
    pub(crate) fn forget(&mut self, stale: Option<&Arc<Capabilities>>) -> bool {
        let matches = match (self.cached.as_ref(), stale) {
            (Some(cached), Some(stale)) => Arc::ptr_eq(&cached.caps, stale),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if matches {
            self.cached = None;
            self.failures = 0;
            self.hold_until = None;
        }
        matches
    }

    fn valid(&self, now: Instant) -> Option<Arc<Capabilities>> {
        match self.look(now) {
            Look::Fresh(caps) | Look::Due(caps) | Look::Held(caps) => Some(caps),
            Look::Missing => None,
        }
    }
}

impl Entry for CapsEntry {
    type Value = Arc<Capabilities>;
    type Fetched = Fetched;
    type Error = BootstrapError;

    fn fresh(&mut self, now: Instant) -> Option<Arc<Capabilities>> {
        if self.cached.as_ref().is_some_and(|c| now >= c.expires_at) {
            self.forget(None);
        }
        match self.look(now) {
            Look::Fresh(caps) => Some(caps),
            _ => None,
        }
    }

    /// Renewing ahead: while one caller fetches, the valid entry is served.
    fn while_fetching(&self, now: Instant) -> Option<Arc<Capabilities>> {
        self.valid(now)
    }

    /// After a failed renewal, the valid entry is served without asking.
    fn held(
        &self,
        now: Instant,
        _last_error: Option<&BootstrapError>,
    ) -> Option<Result<Arc<Capabilities>, BootstrapError>> {
        match self.look(now) {
            Look::Held(caps) => Some(Ok(caps)),
            _ => None,
        }
    }

    fn store(
        &mut self,
        now: Instant,
        fetched: Result<Fetched, BootstrapError>,
    ) -> Result<Arc<Capabilities>, BootstrapError> {
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                // A failed renewal: the valid entry is kept, and renewals
                // are held back a while.
                let caps = self.valid(now).ok_or_else(|| error.clone())?;
                self.failures = self.failures.saturating_add(1);
                let hold = FIRST_RENEWAL_HOLD
                    .saturating_mul(1 << self.failures.clamp(1, 8).saturating_sub(1))
                    .min(MAX_RENEWAL_HOLD);
                self.hold_until = now.checked_add(hold);
                warn!(
                    error = %error.report_line(),
                    retry_in = ?hold,
                    "renewing the capabilities failed; the cached ones are still valid"
                );
                return Ok(caps);
            }
        };
        let caps = Arc::new(fetched.caps);
        let expires_at = now.checked_add(fetched.lifetime).unwrap_or(now);
        let refresh_at = expires_at
            .checked_sub(fetched.refresh_margin)
            .unwrap_or(now);
        self.cached = Some(Cached {
            caps: Arc::clone(&caps),
            expires_at,
            refresh_at,
        });
        self.failures = 0;
        self.hold_until = None;
        Ok(caps)
    }
}
