//! The API at a network distance: a round-trip time, with jitter, that
//! every request and every new connection pays, as they would between a
//! data centre and the Trusted Application API. Not a fault: it is always
//! in force (zero by default) and fires nothing, so that benchmarks and
//! tests can put the API 50 to 100 ms away. The round trips begun are
//! counted ([`StatsSnapshot::network_round_trips`]).
//!
//! [`StatsSnapshot::network_round_trips`]: crate::StatsSnapshot::network_round_trips
//!
//! A new connection costs one round trip for the TCP handshake, and one
//! more for the TLS handshake when the listener serves HTTPS (TLS 1.3);
//! each request then costs one round trip before its answer. The
//! emulator's own control and counter routes (`/_emulator/…`) are not
//! delayed. The other way, each chat callback the emulated platform sends
//! to the SA (each attempt) costs one round trip (its connection's set-up
//! is not added).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::next_unit;

/// The largest round-trip time accepted, in milliseconds.
pub const MAX_RTT_MS: u64 = 10_000;

/// The API's distance from its clients ([`EmulatorConfig::network`]).
///
/// [`EmulatorConfig::network`]: crate::EmulatorConfig::network
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkDistance {
    /// The round-trip time, in milliseconds (0: none, the default).
    pub rtt_ms: u64,
    /// Each round trip is drawn uniformly from `rtt_ms - jitter_ms` to
    /// `rtt_ms + jitter_ms`, in milliseconds; at most `rtt_ms`.
    pub jitter_ms: u64,
}

impl NetworkDistance {
    /// A round trip of `rtt_ms`, give or take `jitter_ms`.
    pub fn new(rtt_ms: u64, jitter_ms: u64) -> Self {
        Self { rtt_ms, jitter_ms }
    }

    /// Checks the values: a round trip of at most [`MAX_RTT_MS`], a jitter
    /// of at most the round trip.
    pub fn validate(&self) -> Result<(), String> {
        if self.rtt_ms > MAX_RTT_MS {
            return Err(format!(
                "network.rtt_ms {} is more than {MAX_RTT_MS} ms",
                self.rtt_ms
            ));
        }
        if self.jitter_ms > self.rtt_ms {
            return Err(format!(
                "network.jitter_ms {} is more than network.rtt_ms {}",
                self.jitter_ms, self.rtt_ms
            ));
        }
        Ok(())
    }
}

/// The distance in force, and the seeded source of its jitter.
#[derive(Debug)]
pub(crate) struct Network {
    distance: Mutex<(NetworkDistance, u64)>,
    /// Round trips begun at a distance above zero.
    crossed: AtomicU64,
}

impl Network {
    pub(crate) fn new(distance: NetworkDistance, seed: u64) -> Self {
        Self {
            distance: Mutex::new((distance, seed ^ 0x6E65_7477_6F72_6B21)),
            crossed: AtomicU64::new(0),
        }
    }

    pub(crate) fn set(&self, distance: NetworkDistance) {
        if let Ok(mut inner) = self.distance.lock() {
            inner.0 = distance;
        }
    }

    pub(crate) fn get(&self) -> NetworkDistance {
        self.distance
            .lock()
            .map(|inner| inner.0)
            .unwrap_or_default()
    }

    /// Round trips begun so far (none while the distance is zero).
    pub(crate) fn crossed(&self) -> u64 {
        self.crossed.load(Ordering::Relaxed)
    }

    /// One round trip, jitter drawn.
    pub(crate) fn round_trip(&self) -> Duration {
        let Ok(mut inner) = self.distance.lock() else {
            return Duration::ZERO;
        };
        let (distance, seed) = &mut *inner;
        if distance.rtt_ms == 0 {
            return Duration::ZERO;
        }
        self.crossed.fetch_add(1, Ordering::Relaxed);
        let jitter = distance.jitter_ms.min(distance.rtt_ms);
        let low = distance.rtt_ms - jitter;
        #[allow(clippy::cast_precision_loss)]
        let span = (2 * jitter) as f64;
        let micros = (low as f64 * 1_000.0 + next_unit(seed) * span * 1_000.0).round();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Duration::from_micros(micros as u64)
    }

    /// Waits `trips` round trips.
    pub(crate) async fn cross(&self, trips: u32) {
        let mut wait = Duration::ZERO;
        for _ in 0..trips {
            wait += self.round_trip();
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_stay_within_the_jitter_and_vary() {
        let network = Network::new(NetworkDistance::new(80, 10), 1);
        let trips: Vec<Duration> = (0..1_000).map(|_| network.round_trip()).collect();
        let (low, high) = (Duration::from_millis(70), Duration::from_millis(90));
        assert!(trips.iter().all(|t| (low..=high).contains(t)), "{trips:?}");
        let mean = trips.iter().sum::<Duration>() / 1_000;
        assert!(
            (Duration::from_millis(78)..=Duration::from_millis(82)).contains(&mean),
            "{mean:?}"
        );
        assert!(trips.iter().any(|t| *t < Duration::from_millis(75)));
        assert!(trips.iter().any(|t| *t > Duration::from_millis(85)));
    }

    #[test]
    fn no_distance_costs_nothing_and_no_jitter_is_exact() {
        let network = Network::new(NetworkDistance::default(), 1);
        assert_eq!(network.round_trip(), Duration::ZERO);
        network.set(NetworkDistance::new(50, 0));
        assert_eq!(network.round_trip(), Duration::from_millis(50));
        assert_eq!(network.get(), NetworkDistance::new(50, 0));
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        assert!(NetworkDistance::new(80, 10).validate().is_ok());
        let error = NetworkDistance::new(80, 81).validate().unwrap_err();
        assert!(error.contains("network.jitter_ms"), "{error}");
        let error = NetworkDistance::new(MAX_RTT_MS + 1, 0)
            .validate()
            .unwrap_err();
        assert!(error.contains("network.rtt_ms"), "{error}");
    }
}
