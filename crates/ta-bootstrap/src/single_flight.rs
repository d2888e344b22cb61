//! The one single-flight cache under both of the orchestrator's caches (the
//! capabilities and each AAD token slot): callers arriving while a value is
//! being fetched wait for that one fetch and all get its value or its error;
//! the next call after an error tries again.
//!
//! What counts as fresh, what may be served while a refresh is under way,
//! when not to ask at all, and how a fetch's result is kept are the
//! [`Entry`]'s; the locking and the sharing of one fetch's outcome are here.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// The longest margin before expiry at which an entry is renewed ahead.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How long before its expiry an entry of `lifetime` is renewed: a fifth
/// of its life (at most five minutes), 80 % to 100 % of that as `jitter`
/// goes from 0 to 1, so that many clients do not renew at once. A jitter
/// outside `[0, 1]` is clamped; one that is not a number counts as 0.5.
pub(crate) fn refresh_margin(lifetime: Duration, jitter: f64) -> Duration {
    let margin = (lifetime / 5).min(MAX_REFRESH_MARGIN);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    margin.mul_f64(0.8 + 0.2 * jitter)
}

/// What a [`SingleFlight`] caches, and its rules.
pub(crate) trait Entry: Default {
    /// What a caller gets.
    type Value;
    /// What one fetch brings.
    type Fetched;
    /// Why a fetch failed; shared with the callers who waited on it.
    type Error: Clone;

    /// A value good enough to return without fetching.
    fn fresh(&mut self, now: Instant) -> Option<Self::Value>;

    /// A value to return at once while another caller's fetch is under way
    /// (refresh ahead), instead of waiting for it. `None`: wait.
    fn while_fetching(&self, now: Instant) -> Option<Self::Value> {
        let _ = now;
        None
    }

    /// An answer without asking the server at all (a backoff in force),
    /// given the last fetch's error. `None`: fetch.
    fn held(
        &self,
        now: Instant,
        last_error: Option<&Self::Error>,
    ) -> Option<Result<Self::Value, Self::Error>> {
        let _ = (now, last_error);
        None
    }

    /// Keeps what a fetch brought and answers its caller.
    fn store(
        &mut self,
        now: Instant,
        fetched: Result<Self::Fetched, Self::Error>,
    ) -> Result<Self::Value, Self::Error>;
}

struct State<E: Entry> {
    entry: E,
    /// Bumped by every completed fetch.
    generation: u64,
    /// The last fetch's error, for those who waited on it.
    last_error: Option<E::Error>,
}

/// A cached [`Entry`] fetched by one caller at a time.
pub(crate) struct SingleFlight<E: Entry> {
    state: Mutex<State<E>>,
    fetching: tokio::sync::Mutex<()>,
}

impl<E: Entry> Default for SingleFlight<E> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                entry: E::default(),
                generation: 0,
                last_error: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }
}

impl<E: Entry> SingleFlight<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads or changes the entry (no fetch).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut E) -> R) -> R {
        f(&mut self.lock().entry)
    }

    /// The entry's value: fresh from the cache, or from one fetch shared by
    /// every caller that arrives while it runs. `looked_up` hears whether
    /// the first look found a fresh value.
    pub(crate) async fn get<Fut>(
        &self,
        clock: &dyn Clock,
        looked_up: impl FnOnce(bool),
        fetch: impl FnOnce() -> Fut,
    ) -> Result<E::Value, E::Error>
    where
        Fut: Future<Output = Result<E::Fetched, E::Error>>,
    {
        let seen = {
            let mut state = self.lock();
            let hit = state.entry.fresh(clock.now());
            looked_up(hit.is_some());
            if let Some(value) = hit {
                return Ok(value);
            }
            state.generation
        };
        let _fetching = match self.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(value) = self.lock().entry.while_fetching(clock.now()) {
                    return Ok(value);
                }
                self.fetching.lock().await
            }
        };
        {
            let mut state = self.lock();
            let now = clock.now();
            if state.generation != seen {
                // A fetch completed while this call waited: share its outcome.
                if let Some(value) = state.entry.while_fetching(now) {
                    return Ok(value);
                }
                if let Some(error) = &state.last_error {
                    return Err(error.clone());
                }
            }
            if let Some(value) = state.entry.fresh(now) {
                return Ok(value);
            }
            if let Some(answer) = state.entry.held(now, state.last_error.as_ref()) {
                return answer;
            }
        }
        let fetched = fetch().await;
        let mut state = self.lock();
        state.generation += 1;
        let fetch_error = fetched.as_ref().err().cloned();
        let answer = state.entry.store(clock.now(), fetched);
        state.last_error = fetch_error.or_else(|| answer.as_ref().err().cloned());
        answer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;

    /// A number, fresh for ever once fetched; `stale` is served while a
    /// fetch runs when set.
    #[derive(Debug, Default)]
    struct Number {
        value: Option<u32>,
        stale: Option<u32>,
    }

    impl Entry for Number {
        type Value = u32;
        type Fetched = u32;
        type Error = String;

        fn fresh(&mut self, _: Instant) -> Option<u32> {
            self.value
        }

        fn while_fetching(&self, _: Instant) -> Option<u32> {
            self.value.or(self.stale)
        }

        fn store(&mut self, _: Instant, fetched: Result<u32, String>) -> Result<u32, String> {
            let value = fetched?;
            self.value = Some(value);
            Ok(value)
        }
    }

    async fn get_slowly(
        flight: &SingleFlight<Number>,
        fetches: &AtomicU32,
        answer: Result<u32, String>,
    ) -> Result<u32, String> {
        flight
            .get(
                &SystemClock,
                |_| {},
                || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    answer
                },
            )
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_its_value() {
        let flight = Arc::new(SingleFlight::<Number>::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let calls = (0..5).map(|i| {
            let (flight, fetches) = (Arc::clone(&flight), Arc::clone(&fetches));
            tokio::spawn(async move { get_slowly(&flight, &fetches, Ok(i + 7)).await })
        });
        let calls: Vec<_> = calls.collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
        // Cached now: no second fetch.
        let mut looked = None;
        let value = flight
            .get(
                &SystemClock,
                |hit| looked = Some(hit),
                || async { Err("not fetched".to_owned()) },
            )
            .await;
        assert_eq!(value, answers[0]);
        assert_eq!(looked, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_an_error_and_the_next_call_tries_again() {
        let flight = Arc::new(SingleFlight::<Number>::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let calls = (0..3).map(|_| {
            let (flight, fetches) = (Arc::clone(&flight), Arc::clone(&fetches));
            tokio::spawn(async move { get_slowly(&flight, &fetches, Err("down".into())).await })
        });
        let calls: Vec<_> = calls.collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), Err("down".to_owned()));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(get_slowly(&flight, &fetches, Ok(3)).await, Ok(3));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_usable_while_fetching_is_served_without_waiting() {
        let flight = Arc::new(SingleFlight::<Number>::default());
        flight.with(|n| n.stale = Some(1));
        let fetches = Arc::new(AtomicU32::new(0));
        let refresh = {
            let (flight, fetches) = (Arc::clone(&flight), Arc::clone(&fetches));
            tokio::spawn(async move { get_slowly(&flight, &fetches, Ok(2)).await })
        };
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        assert_eq!(get_slowly(&flight, &fetches, Ok(9)).await, Ok(1));
        assert_eq!(started.elapsed(), Duration::ZERO, "it waited");
        assert_eq!(refresh.await.unwrap(), Ok(2));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// Held: answers without fetching.
    #[derive(Debug, Default)]
    struct Held;

    impl Entry for Held {
        type Value = u32;
        type Fetched = u32;
        type Error = String;

        fn fresh(&mut self, _: Instant) -> Option<u32> {
            None
        }

        fn held(&self, _: Instant, last: Option<&String>) -> Option<Result<u32, String>> {
            Some(Err(last.cloned().unwrap_or_else(|| "held".into())))
        }

        fn store(&mut self, _: Instant, fetched: Result<u32, String>) -> Result<u32, String> {
            fetched
        }
    }

    #[test]
    fn the_refresh_margin_is_a_fifth_of_the_life_jittered_and_bounded() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(refresh_margin(secs(900), 0.0), secs(144));
        assert_eq!(refresh_margin(secs(900), 1.0), secs(180));
        assert_eq!(refresh_margin(secs(900), 7.0), secs(180));
        assert_eq!(refresh_margin(secs(900), f64::NAN), secs(162));
        // At most five minutes before expiry, however long the life.
        assert_eq!(refresh_margin(secs(86_400), 1.0), secs(300));
        assert_eq!(refresh_margin(Duration::ZERO, 1.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_held_entry_does_not_fetch() {
        let flight = SingleFlight::<Held>::default();
        let answer = flight
            .get(&SystemClock, |_| {}, || async { Err("fetched".to_owned()) })
            .await;
        assert_eq!(answer, Err("held".to_owned()));
    }
}
