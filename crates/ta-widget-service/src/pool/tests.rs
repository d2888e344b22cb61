#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use ta_protocol::{Origin, OriginPolicy};

use super::*;

/// A token: which refill minted it, for which origin, and its expiry.
#[derive(Debug, Clone, PartialEq)]
struct Fake {
    id: u64,
    origin: Origin,
    expires: SystemTime,
}

impl Expiring for Fake {
    fn expires_at(&self) -> SystemTime {
        self.expires
    }
}

fn origin(s: &str) -> Origin {
    Origin::parse(s, OriginPolicy::default()).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A pool, its start, and the wall clock that goes with it.
struct Harness {
    pool: Pool<Fake>,
    start: Instant,
    unix_start: u64,
    next_id: u64,
    /// The life of each token minted, in seconds.
    life: u64,
}

impl Harness {
    fn new(config: PoolConfig, origins: &[&str]) -> Self {
        let start = Instant::now();
        let origins: Vec<Origin> = origins.iter().map(|o| origin(o)).collect();
        Self {
            pool: Pool::new(config, &origins, start),
            start,
            unix_start: 1_800_000_000,
            next_id: 0,
            life: 8 * 3600,
        }
    }

    fn at(&self, s: u64) -> Instant {
        self.start + secs(s)
    }

    /// Starts every refill the pool wants at second `s`, mints them, and
    /// lands them at once.
    fn refill_all(&mut self, s: u64) -> usize {
        let refills = self.begin_all(s);
        let count = refills.len();
        for refill in refills {
            assert_eq!(self.land(refill, s), Landing::Pooled);
        }
        count
    }

    fn begin_all(&mut self, s: u64) -> Vec<Refill> {
        let mut refills = Vec::new();
        while let Some(refill) = self.pool.begin_refill(self.at(s), usize::MAX) {
            refills.push(refill);
        }
        refills
    }

    fn land(&mut self, refill: Refill, s: u64) -> Landing {
        self.next_id += 1;
        let token = Fake {
            id: self.next_id,
            origin: refill.origin().clone(),
            expires: SystemTime::UNIX_EPOCH + secs(self.unix_start + s + self.life),
        };
        self.pool
            .land(refill, token, self.at(s), self.unix_start + s)
    }

    fn take(&mut self, o: &str, s: u64) -> Option<Fake> {
        self.pool.take(&origin(o), self.at(s)).token
    }
}

const A: &str = "https://a.example";
const B: &str = "https://b.example";

fn config(size: usize, max_age: u64) -> PoolConfig {
    PoolConfig::new(size, secs(max_age)).unwrap()
}

#[test]
fn at_zero_demand_it_mints_the_floor_and_nothing_more() {
    let mut h = Harness::new(config(50, 300).with_floor(2).unwrap(), &[A, B]);
    assert_eq!(h.refill_all(0), 4, "two per origin");
    assert_eq!(h.refill_all(1), 0);
    assert_eq!(h.pool.depth(&origin(A)), Some(2));
    // They age out at 300 s and are replaced: the floor, again.
    assert_eq!(h.pool.sweep(h.at(299)), 0);
    assert_eq!(h.pool.sweep(h.at(300)), 4);
    assert_eq!(h.refill_all(300), 4);
    // A floor of 0: nothing at all.
    let mut h = Harness::new(config(50, 300).with_floor(0).unwrap(), &[A]);
    assert_eq!(h.refill_all(0), 0);
}

#[test]
fn the_target_follows_the_last_ten_seconds_of_demand_between_floor_and_size() {
    let mut h = Harness::new(config(20, 300), &[A]);
    let a = origin(A);
    assert_eq!(h.pool.target(&a, h.at(0)), 1);
    for _ in 0..5 {
        h.take(A, 0);
    }
    assert_eq!(h.pool.target(&a, h.at(0)), 5);
    for _ in 0..30 {
        h.take(A, 3);
    }
    assert_eq!(h.pool.target(&a, h.at(3)), 20, "held to the size");
    assert_eq!(
        h.pool.target(&a, h.at(10)),
        20,
        "second 0 has left the window"
    );
    assert_eq!(h.pool.target(&a, h.at(13)), 1, "back to the floor");
    // Refills go up to the target; tokens above a fallen target stay.
    assert_eq!(h.refill_all(3), 20);
    assert_eq!(h.refill_all(20), 0);
    assert_eq!(h.pool.depth(&a), Some(20));
}

#[test]
fn a_token_is_given_once_to_its_own_origin_oldest_first() {
    let mut h = Harness::new(config(10, 300).with_floor(3).unwrap(), &[A, B]);
    h.refill_all(0);
    let mut seen = HashSet::new();
    let mut last = 0;
    for _ in 0..3 {
        let token = h.take(A, 1).expect("pooled");
        assert_eq!(token.origin, origin(A));
        assert!(token.id > last, "oldest first");
        last = token.id;
        assert!(seen.insert(token.id), "given once");
    }
    assert!(h.take(A, 1).is_none(), "A is empty: a miss");
    // B's tokens are B's alone.
    for _ in 0..3 {
        let token = h.take(B, 1).expect("pooled");
        assert_eq!(token.origin, origin(B));
        assert!(seen.insert(token.id));
    }
    // An origin the pool does not know gets nothing.
    assert!(h.take("https://c.example", 1).is_none());
}

#[test]
fn no_token_is_given_at_or_past_its_deadline() {
    let mut h = Harness::new(config(5, 60), &[A]);
    h.refill_all(0);
    assert!(h.take(A, 59).is_some(), "59 s old: fresh");
    h.refill_all(100);
    let taken = h.pool.take(&origin(A), h.at(160));
    assert!(taken.token.is_none(), "60 s old: stale");
    assert_eq!(taken.stale, 1);

    // Half the life it had, when that is shorter than the maximum age.
    let mut h = Harness::new(config(5, 300), &[A]);
    h.life = 100;
    h.refill_all(0);
    assert!(h.take(A, 49).is_some());
    h.refill_all(100);
    assert!(h.take(A, 150).is_none(), "50 s of a 100 s life: stale");

    // The age counts from when the mint started, not when it landed.
    let mut h = Harness::new(config(5, 60), &[A]);
    let refill = h.pool.begin_refill(h.at(0), 1).unwrap();
    assert_eq!(h.land(refill, 30), Landing::Pooled);
    assert!(h.take(A, 60).is_none());

    // A token with almost no life is not pooled at all.
    let mut h = Harness::new(config(5, 60), &[A]);
    h.life = 0;
    let refill = h.pool.begin_refill(h.at(0), 1).unwrap();
    assert_eq!(h.land(refill, 0), Landing::Discarded(Discard::ShortLife));
    assert_eq!(h.pool.depth(&origin(A)), Some(0));
}

#[test]
fn the_caps_across_origins_and_in_flight_hold_and_the_largest_deficit_goes_first() {
    let mut h = Harness::new(config(5, 300).with_max_total(7).unwrap(), &[A, B]);
    for _ in 0..5 {
        h.take(A, 0);
    }
    for _ in 0..4 {
        h.take(B, 0);
    }
    // A wants 5, B 4: the first refills go to A, ties to the first origin,
    // until B's deficit is the larger.
    let mut held = Vec::new();
    let firsts: Vec<Origin> = (0..3)
        .map(|_| {
            let refill = h.pool.begin_refill(h.at(0), usize::MAX).unwrap();
            let o = refill.origin().clone();
            h.pool.abandon(refill);
            // Abandoned: the place is free, the same origin comes again.
            let again = h.pool.begin_refill(h.at(0), usize::MAX).unwrap();
            assert_eq!(again.origin(), &o);
            held.push(again);
            o
        })
        .collect();
    assert_eq!(firsts, vec![origin(A), origin(A), origin(B)]);
    let mut h = Harness::new(config(5, 300).with_max_total(7).unwrap(), &[A, B]);
    for _ in 0..5 {
        h.take(A, 0);
        h.take(B, 0);
    }
    assert_eq!(h.refill_all(0), 7, "seven in all, not ten");
    assert_eq!(
        h.pool.depth(&origin(A)).unwrap() + h.pool.depth(&origin(B)).unwrap(),
        7
    );
    // In flight counts toward the cap too, and the in-flight cap holds.
    let mut h = Harness::new(config(5, 300).with_max_total(3).unwrap(), &[A, B]);
    for _ in 0..5 {
        h.take(A, 0);
        h.take(B, 0);
    }
    assert!(h.pool.begin_refill(h.at(0), 2).is_some());
    assert!(h.pool.begin_refill(h.at(0), 2).is_some());
    assert!(h.pool.begin_refill(h.at(0), 2).is_none(), "two in flight");
    assert!(h.pool.begin_refill(h.at(0), 9).is_some());
    assert!(h.pool.begin_refill(h.at(0), 9).is_none(), "three in all");
    assert_eq!(h.pool.in_flight(), 3);
}

#[test]
fn a_reload_empties_the_pool_and_late_landings_are_thrown_away() {
    let mut h = Harness::new(config(5, 300).with_floor(2).unwrap(), &[A]);
    h.refill_all(0);
    let late = h.pool.begin_refill(h.at(0), usize::MAX);
    assert!(late.is_none(), "at the floor");
    h.take(A, 1);
    h.take(A, 1);
    h.take(A, 1);
    let late = h.pool.begin_refill(h.at(1), usize::MAX).unwrap();
    assert_eq!(h.pool.clear(), 0, "the two were taken");
    h.refill_all(1);
    assert_eq!(h.pool.clear(), 2);
    assert!(h.take(A, 2).is_none());
    assert_eq!(h.land(late, 2), Landing::Discarded(Discard::Reload));
    // After the reload the pool fills again.
    assert!(h.refill_all(2) > 0);
    assert!(h.take(A, 2).is_some());
}

#[test]
fn an_origin_that_leaves_the_allowlist_takes_its_tokens_with_it() {
    let mut h = Harness::new(config(5, 300).with_floor(2).unwrap(), &[A, B]);
    h.refill_all(0);
    h.take(A, 0);
    let late = h.pool.begin_refill(h.at(0), usize::MAX).unwrap();
    assert_eq!(late.origin(), &origin(A));
    assert_eq!(h.pool.set_origins(&[origin(B)]), 1);
    assert!(h.take(A, 1).is_none());
    // Back on the list: a new lane; the old refill's token is not in it.
    h.pool.set_origins(&[origin(A), origin(B)]);
    assert_eq!(h.land(late, 1), Landing::Discarded(Discard::OriginRemoved));
    assert_eq!(h.pool.depth(&origin(A)), Some(0));
    assert_eq!(h.pool.depth(&origin(B)), Some(2));
    let depths: Vec<(Origin, usize)> = h.pool.depths().map(|(o, d)| (o.clone(), d)).collect();
    assert_eq!(depths, vec![(origin(A), 0), (origin(B), 2)]);
}

#[test]
fn a_removed_origin_s_refills_still_count_against_the_caps() {
    let mut h = Harness::new(config(5, 300).with_floor(2).unwrap(), &[A, B]);
    let first = h.pool.begin_refill(h.at(0), 2).unwrap();
    let second = h.pool.begin_refill(h.at(0), 2).unwrap();
    assert_eq!((first.origin(), second.origin()), (&origin(A), &origin(B)));
    // A leaves with its mint still running: the cap of 2 at once holds.
    h.pool.set_origins(&[origin(B)]);
    assert_eq!(h.pool.in_flight(), 2);
    assert!(h.pool.begin_refill(h.at(0), 2).is_none());
    assert_eq!(h.land(first, 0), Landing::Discarded(Discard::OriginRemoved));
    assert_eq!(h.pool.in_flight(), 1);
    assert!(h.pool.begin_refill(h.at(0), 2).is_some());
    h.pool.abandon(second);
    assert_eq!(h.pool.in_flight(), 1);
}

/// A long random run of demand, refills (some failing, some late), sweeps,
/// reloads and allowlist changes: no token is given twice, to another
/// origin, past its maximum age, or from before the last reload.
#[test]
fn a_random_run_keeps_every_promise() {
    let mut h = Harness::new(config(8, 40).with_max_total(12).unwrap(), &[A, B]);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut minted_at = std::collections::HashMap::new();
    let mut given = HashSet::new();
    let mut in_flight: Vec<(Refill, u64)> = Vec::new();
    let mut last_reload = 0;
    let mut reloaded_ids = HashSet::new();
    let mut served = 0;
    for step in 0..20_000u64 {
        let s = step / 10;
        match next() % 10 {
            0..=4 => {
                let o = if next() % 3 == 0 { B } else { A };
                if let Some(token) = h.take(o, s) {
                    served += 1;
                    assert_eq!(token.origin, origin(o), "its own origin");
                    assert!(given.insert(token.id), "given once");
                    let at: u64 = minted_at[&token.id];
                    assert!(s - at < 40, "fresh: minted at {at}, given at {s}");
                    assert!(at >= last_reload && !reloaded_ids.contains(&token.id));
                }
            }
            5 | 6 => {
                if let Some(refill) = h.pool.begin_refill(h.at(s), 4) {
                    in_flight.push((refill, s));
                }
            }
            7 if !in_flight.is_empty() => {
                let i = usize::try_from(next() % in_flight.len() as u64).unwrap();
                let (refill, started) = in_flight.swap_remove(i);
                if next() % 5 == 0 {
                    h.pool.abandon(refill);
                } else {
                    let id = h.next_id + 1;
                    minted_at.insert(id, started);
                    if started < last_reload {
                        reloaded_ids.insert(id);
                    }
                    h.land(refill, s);
                }
            }
            8 => {
                h.pool.sweep(h.at(s));
            }
            _ => match next() % 40 {
                0 => {
                    h.pool.clear();
                    last_reload = s;
                }
                1 => {
                    h.pool.set_origins(&[origin(A)]);
                }
                2 => {
                    h.pool.set_origins(&[origin(A), origin(B)]);
                }
                _ => {}
            },
        }
        let total: usize = h.pool.depths().map(|(_, d)| d).sum();
        assert!(total + h.pool.in_flight() <= 12, "the cap across origins");
        assert!(h.pool.in_flight() <= 4);
        // Refills of removed lanes count until they land or fail.
        assert_eq!(h.pool.in_flight(), in_flight.len());
    }
    assert!(served > 1_000, "the run served from the pool: {served}");
}
