//! The pool's settings, valid by construction.

use std::time::Duration;

/// The settings of the pool of pre-minted widget tokens: off by default.
///
/// - `size`: the most tokens pooled per allowlisted origin (0: no pool).
/// - `max_age`: the most age a pooled token may have when it is handed
///   out (from when its mint started); a token is also never handed out
///   past half of the life it had when minted.
/// - `floor`: the tokens kept per origin with no demand at all (at most
///   `size`; 1 by default). The pool's target depth for an origin is the
///   number of widget-token requests from it over the last 10 seconds,
///   held between `floor` and `size`.
/// - `max_total`: the most tokens pooled and being minted for the pool,
///   across all origins.
/// - `refill_in_flight`: the most mints for the pool at once; the service
///   also holds them to half of its bound on mints in flight, so that
///   widgets always have the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    size: usize,
    max_age: Duration,
    floor: usize,
    max_total: usize,
    refill_in_flight: usize,
}

/// A change of the pool's settings that only a new service can make: turning
/// the pool on or off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token pool is turned on or off only by a new service (a restart)")]
pub struct PoolSwitchError;

/// A pool setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pool's {setting} {reason}")]
pub struct PoolConfigError {
    /// The setting (`size`, `max-age`, `floor`, `max-total`,
    /// `refill-in-flight`).
    pub setting: &'static str,
    /// What its value must be.
    pub reason: &'static str,
}

impl PoolConfig {
    /// The most tokens per origin.
    pub const MAX_SIZE: usize = 10_000;
    /// The default maximum age: five minutes.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
    /// The longest maximum age: one day.
    pub const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
    /// The default cap across origins.
    pub const DEFAULT_MAX_TOTAL: usize = 1_000;
    /// The default number of mints for the pool at once.
    pub const DEFAULT_REFILL_IN_FLIGHT: usize = 8;

    /// No pool: every widget gets a direct mint.
    pub fn off() -> Self {
        Self {
            size: 0,
            max_age: Self::DEFAULT_MAX_AGE,
            floor: 0,
            max_total: Self::DEFAULT_MAX_TOTAL,
            refill_in_flight: Self::DEFAULT_REFILL_IN_FLIGHT,
        }
    }

    /// A pool of at most `size` tokens per origin (0: off), each handed out
    /// before it is `max_age` old (1 s to a day), with the defaults for the
    /// rest: a floor of 1, at most 1000 tokens in all, 8 refills at once.
    pub fn new(size: usize, max_age: Duration) -> Result<Self, PoolConfigError> {
        if size > Self::MAX_SIZE {
            return Err(PoolConfigError {
                setting: "size",
                reason: "must be at most 10000 tokens per origin",
            });
        }
        if max_age < Duration::from_secs(1) || max_age > Self::MAX_MAX_AGE {
            return Err(PoolConfigError {
                setting: "max-age",
                reason: "must be between 1 second and 1 day",
            });
        }
        Ok(Self {
            size,
            max_age,
            floor: size.min(1),
            ..Self::off()
        })
    }

    /// The same with `floor` tokens kept per origin at zero demand (at most
    /// the size).
    pub fn with_floor(self, floor: usize) -> Result<Self, PoolConfigError> {
        if floor > self.size {
            return Err(PoolConfigError {
                setting: "floor",
                reason: "must not exceed the pool's size",
            });
        }
        Ok(Self { floor, ..self })
    }

    /// The same with at most `max_total` tokens pooled or being minted for
    /// the pool across all origins (at least 1).
    pub fn with_max_total(self, max_total: usize) -> Result<Self, PoolConfigError> {
        if max_total == 0 || max_total > Self::MAX_SIZE * 100 {
            return Err(PoolConfigError {
                setting: "max-total",
                reason: "must be between 1 and 1000000",
            });
        }
        Ok(Self { max_total, ..self })
    }

    /// The same with at most `refill_in_flight` mints for the pool at once
    /// (1 to 256).
    pub fn with_refill_in_flight(self, refill_in_flight: usize) -> Result<Self, PoolConfigError> {
        if !(1..=256).contains(&refill_in_flight) {
            return Err(PoolConfigError {
                setting: "refill-in-flight",
                reason: "must be between 1 and 256",
            });
        }
        Ok(Self {
            refill_in_flight,
            ..self
        })
    }

    /// Whether there is a pool at all.
    pub fn is_on(&self) -> bool {
        self.size > 0
    }

    /// The most tokens per origin.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The most age of a token handed out.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The tokens kept per origin at zero demand.
    pub fn floor(&self) -> usize {
        self.floor
    }

    /// The most tokens across all origins.
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// The most mints for the pool at once.
    pub fn refill_in_flight(&self) -> usize {
        self.refill_in_flight
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::off()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_out_of_range_are_named() {
        let s = |n| Duration::from_secs(n);
        assert!(!PoolConfig::default().is_on());
        let pool = PoolConfig::new(20, s(60)).unwrap();
        assert_eq!((pool.size(), pool.floor(), pool.max_age()), (20, 1, s(60)));
        assert_eq!(PoolConfig::new(0, s(60)).unwrap().floor(), 0);
        let error = PoolConfig::new(20, s(0)).unwrap_err();
        assert_eq!(error.setting, "max-age");
        assert!(error.to_string().contains("between 1 second"), "{error}");
        assert_eq!(PoolConfig::new(10_001, s(60)).unwrap_err().setting, "size");
        assert_eq!(pool.clone().with_floor(21).unwrap_err().setting, "floor");
        assert_eq!(pool.clone().with_floor(20).unwrap().floor(), 20);
        assert_eq!(
            pool.clone().with_max_total(0).unwrap_err().setting,
            "max-total"
        );
        assert_eq!(
            pool.clone().with_refill_in_flight(0).unwrap_err().setting,
            "refill-in-flight"
        );
        assert_eq!(pool.with_refill_in_flight(3).unwrap().refill_in_flight(), 3);
    }
}
