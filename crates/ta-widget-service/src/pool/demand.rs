//! Recent demand for one origin: widget-token requests (hits and misses)
//! over the last [`WINDOW_SECONDS`] seconds, counted per second in a ring.

/// The length of the demand window, in seconds.
pub(crate) const WINDOW_SECONDS: u64 = 10;

const SLOTS: usize = WINDOW_SECONDS as usize;

/// Requests per second over the last [`WINDOW_SECONDS`] seconds. Seconds
/// are counted from the pool's own epoch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Demand {
    slots: [u32; SLOTS],
    /// The second the newest slot holds.
    newest: u64,
}

impl Demand {
    /// Counts one request in `second`. A second older than the newest seen
    /// counts in the newest (time only moves forward here).
    pub(crate) fn record(&mut self, second: u64) {
        if second > self.newest {
            let gap = second - self.newest;
            if gap >= WINDOW_SECONDS {
                self.slots = [0; SLOTS];
            } else {
                for s in self.newest + 1..=second {
                    if let Some(at) = self.slots.get_mut(slot(s)) {
                        *at = 0;
                    }
                }
            }
            self.newest = second;
        }
        if let Some(at) = self.slots.get_mut(slot(self.newest)) {
            *at = at.saturating_add(1);
        }
    }

    /// The requests in the window that ends with `second`.
    pub(crate) fn count(&self, second: u64) -> u64 {
        let start = second.saturating_sub(WINDOW_SECONDS - 1);
        (start..=second.min(self.newest))
            .filter(|s| self.newest - s < WINDOW_SECONDS)
            .filter_map(|s| self.slots.get(slot(s)).copied().map(u64::from))
            .sum()
    }
}

fn slot(second: u64) -> usize {
    // Below `SLOTS`: the cast loses nothing.
    (second % WINDOW_SECONDS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_ten_seconds_only() {
        let mut demand = Demand::default();
        assert_eq!(demand.count(0), 0);
        for _ in 0..3 {
            demand.record(0);
        }
        demand.record(4);
        demand.record(9);
        assert_eq!(demand.count(9), 5);
        // Second 0 leaves the window at second 10.
        assert_eq!(demand.count(10), 2);
        demand.record(12);
        assert_eq!(demand.count(12), 3);
        assert_eq!(demand.count(13), 3);
        assert_eq!(demand.count(19), 1, "only second 12 is left");
        assert_eq!(demand.count(22), 0);
        // A long silence clears the ring.
        demand.record(1_000);
        assert_eq!(demand.count(1_000), 1);
        assert_eq!(demand.count(1_005), 1);
    }

    #[test]
    fn a_late_second_counts_in_the_newest() {
        let mut demand = Demand::default();
        demand.record(20);
        demand.record(15);
        assert_eq!(demand.count(20), 2);
        assert_eq!(demand.count(29), 2);
        assert_eq!(demand.count(30), 0);
    }
}
