//! The service's pool of pre-minted tokens: the take on a widget's path,
//! the refill loop ([`WidgetService::keep_pool`]), and emptying it on a
//! reload. The pool's rules are in [`crate::pool`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ta_protocol::WidgetToken;

use super::*;
use crate::pool::{Discard, Landing, Pause, Pool, PoolConfig, PoolSwitchError, Refill};

/// How often the refill loop looks at the pool when nothing wakes it.
const TICK: Duration = Duration::from_secs(1);

/// The pool and what wakes its refill loop.
pub(super) struct PoolState {
    pool: Mutex<Pool<WidgetToken>>,
    wake: tokio::sync::Notify,
    /// Set on a reload: refills paused after failures start again.
    resume: AtomicBool,
    /// Mints for the pool at once: the configured number, and at most half
    /// of the service's mints in flight (at least 1: below, no pool).
    in_flight_cap: AtomicUsize,
}

impl PoolState {
    /// The pool of `config`, if it is on (and has mints to take: with
    /// fewer than 2 in flight it would get none, and there is none).
    pub(super) fn new(config: &ServiceConfig, now: std::time::Instant) -> Option<Self> {
        let pool = &config.pool;
        let in_flight_cap = pool.refill_in_flight().min(config.max_mints_in_flight / 2);
        if pool.is_on() && in_flight_cap == 0 {
            warn!(
                max_mints_in_flight = config.max_mints_in_flight,
                "no token pool: it takes at most half of the mints in flight, and there are fewer than 2"
            );
            return None;
        }
        pool.is_on().then(|| Self {
            in_flight_cap: AtomicUsize::new(in_flight_cap),
            pool: Mutex::new(Pool::new(pool.clone(), &config.allowlist, now)),
            wake: tokio::sync::Notify::new(),
            resume: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool<WidgetToken>> {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Shared {
    /// A widget's request from `origin`, after every check a direct mint
    /// has: the oldest fresh token of its origin, if the pool has one.
    pub(super) fn pool_take(&self, origin: &Origin) -> Option<WidgetToken> {
        let state = self.pool.as_ref()?;
        let now = self.bootstrapper.clock().now();
        let taken = {
            let mut pool = state.lock();
            let taken = pool.take(origin, now);
            self.publish_depth(&pool, origin);
            taken
        };
        let metrics = &self.metrics.pool;
        metrics.discarded(Discard::Age.label(), taken.stale);
        if taken.token.is_some() {
            metrics.hits.inc();
        } else {
            metrics.misses.inc();
        }
        // Demand changed, and maybe the depth: the loop looks again.
        state.wake.notify_one();
        taken.token
    }

    /// The allowlist changed: lanes for new origins, and the tokens of
    /// removed ones thrown away.
    pub(super) fn pool_set_origins(&self, before: &[Origin], allowlist: &[Origin]) {
        let Some(state) = self.pool.as_ref() else {
            return;
        };
        let dropped = state.lock().set_origins(allowlist);
        self.metrics
            .pool
            .discarded(Discard::OriginRemoved.label(), dropped);
        for gone in before.iter().filter(|o| !allowlist.contains(o)) {
            self.metrics.pool.forget(gone.as_str());
        }
        state.wake.notify_one();
    }

    /// The depth gauge of `origin`, while it is one of the pool's (a
    /// removed origin's gauge stays gone).
    fn publish_depth(&self, pool: &Pool<WidgetToken>, origin: &Origin) {
        if let Some(depth) = pool.depth(origin) {
            self.metrics.pool.depth(origin.as_str(), depth);
        }
    }

    fn publish_depths(&self, pool: &Pool<WidgetToken>) {
        for (origin, depth) in pool.depths() {
            self.metrics.pool.depth(origin.as_str(), depth);
        }
    }
}

/// A refill's mint: the token, or why there is none (`None`: past the
/// upstream deadline).
type Minted = Result<WidgetToken, Option<BootstrapError>>;

impl WidgetService {
    /// The pool's settings as they are now: off unless configured (and
    /// off when configured with fewer than 2 mints in flight, which leaves
    /// it none).
    pub fn pool_config(&self) -> PoolConfig {
        self.shared
            .pool
            .as_ref()
            .map_or_else(PoolConfig::off, |state| state.lock().config().clone())
    }

    /// Changes the pool's settings while the service runs (a reload): the
    /// pool is emptied as by [`empty_pool`](Self::empty_pool) and refills
    /// to the new targets. The pool is turned on or off only by a new
    /// service: that is refused, and nothing changes.
    pub fn set_pool_config(&self, config: PoolConfig) -> Result<(), PoolSwitchError> {
        let Some(state) = self.shared.pool.as_ref() else {
            return Err(PoolSwitchError);
        };
        if !config.is_on() {
            return Err(PoolSwitchError);
        }
        let cap = config
            .refill_in_flight()
            .min(self.config.max_mints_in_flight / 2)
            .max(1);
        self.emptied(state, |pool| {
            state.in_flight_cap.store(cap, Ordering::Release);
            pool.clear_with(config)
        });
        Ok(())
    }

    /// Empties the pool of pre-minted tokens (after a credential or
    /// configuration reload): no token pooled before is handed out, nor any
    /// token whose refill was under way. Refills start again at once, with
    /// the backoff started over, unless the API asked for a pause with
    /// `Retry-After` that is still running.
    pub fn empty_pool(&self) {
        if let Some(state) = self.shared.pool.as_ref() {
            self.emptied(state, Pool::clear);
        }
    }

    /// Empties the pool with `clear` (under its lock), counts and logs what
    /// was thrown away, and has the refills start again (see
    /// [`WidgetService::empty_pool`]).
    fn emptied(&self, state: &PoolState, clear: impl FnOnce(&mut Pool<WidgetToken>) -> usize) {
        let dropped = {
            let mut pool = state.lock();
            let dropped = clear(&mut pool);
            self.shared.publish_depths(&pool);
            dropped
        };
        self.shared
            .metrics
            .pool
            .discarded(Discard::Reload.label(), dropped);
        if dropped > 0 {
            info!(dropped, "emptied the token pool");
        }
        state.resume.store(true, Ordering::Release);
        state.wake.notify_one();
    }

    /// Keeps the pool of pre-minted tokens filled, when there is one
    /// (returns at once otherwise): throws away tokens past their deadline,
    /// and mints up to each origin's target depth in the background, each
    /// mint for one origin alone with its own session id, within the bound
    /// on mints in flight (at most half of it) and under the upstream
    /// deadline. After a failed mint, refills pause for the `Retry-After`
    /// the API asked for (up to 300 s) or a backoff (1 s doubling to 60 s
    /// with each pause), whichever is longer. Runs until dropped; its mints
    /// in flight go with it (and their places in the pool with them, so
    /// that it can be run again).
    ///
    /// With `max_mints_in_flight` below 2 there is no pool (it takes at
    /// most half of them): [`WidgetService::new`] warns.
    pub async fn keep_pool(&self) {
        let Some(state) = self.shared.pool.as_ref() else {
            return;
        };
        let shared = &self.shared;
        let clock = shared.bootstrapper.clock();
        // Declared first, dropped last: the tasks are aborted before their
        // places are given back.
        let mut refills = Refills {
            state,
            under_way: HashMap::new(),
        };
        let mut running: tokio::task::JoinSet<Minted> = tokio::task::JoinSet::new();
        let mut pause = Pause::default();
        loop {
            let now = clock.now();
            if state.resume.swap(false, Ordering::AcqRel) {
                pause.lift();
            }
            {
                let mut pool = state.lock();
                let stale = pool.sweep(now);
                shared.metrics.pool.discarded(Discard::Age.label(), stale);
                if !pause.active(now) {
                    self.start_refills(
                        &mut pool,
                        now,
                        state.in_flight_cap.load(Ordering::Acquire),
                        &mut running,
                        &mut refills.under_way,
                    );
                }
                shared.publish_depths(&pool);
            }
            let wait = pause
                .remaining(now)
                .map_or(TICK, |left| left.clamp(Duration::from_millis(1), TICK));
            tokio::select! {
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let (id, minted) = match done {
                        Ok((id, minted)) => (id, minted),
                        // A mint that panicked or was cancelled: its place
                        // is free again.
                        Err(e) => (e.id(), Err(None)),
                    };
                    let Some(refill) = refills.under_way.remove(&id) else { continue };
                    self.landed(state, refill, minted, &mut pause);
                }
                () = state.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts the refills the pool wants, each with a mint permit.
    fn start_refills(
        &self,
        pool: &mut Pool<WidgetToken>,
        now: std::time::Instant,
        in_flight_cap: usize,
        running: &mut tokio::task::JoinSet<Minted>,
        refills: &mut HashMap<tokio::task::Id, Refill>,
    ) {
        loop {
            // A permit of the widgets' bound, for as long as the mint runs;
            // `in_flight_cap` (at most half the bound) leaves widgets the rest.
            let Ok(permit) = Arc::clone(&self.shared.mints).try_acquire_owned() else {
                return;
            };
            let Some(refill) = pool.begin_refill(now, in_flight_cap) else {
                return;
            };
            let Ok(origins) = AllowedOrigins::new([refill.origin().clone()]) else {
                pool.abandon(refill);
                return;
            };
            let bootstrapper = self.shared.bootstrapper.clone();
            let deadline = self.shared.upstream_deadline;
            let task = running.spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(deadline, bootstrapper.mint(origins)).await {
                    Ok(minted) => minted.map_err(Some),
                    Err(_) => Err(None),
                }
            });
            refills.insert(task.id(), refill);
        }
    }

    /// A refill's mint ended: its token pooled (or thrown away), or, when
    /// it failed, refills paused.
    fn landed(&self, state: &PoolState, refill: Refill, minted: Minted, pause: &mut Pause) {
        let shared = &self.shared;
        let origin = refill.origin().clone();
        match minted {
            Ok(token) => {
                shared.metrics.pool.refill(true);
                pause.succeeded();
                let clock = shared.bootstrapper.clock();
                let landing = {
                    let mut pool = state.lock();
                    let landing = pool.land(refill, token, clock.now(), clock.unix_seconds());
                    shared.publish_depth(&pool, &origin);
                    landing
                };
                if let Landing::Discarded(why) = landing {
                    debug!(origin = %origin, reason = why.label(), "a pooled token was thrown away as it landed");
                    shared.metrics.pool.discarded(why.label(), 1);
                }
            }
            Err(failure) => {
                shared.metrics.pool.refill(false);
                state.lock().abandon(refill);
                let asked = failure.as_ref().and_then(BootstrapError::retry_after);
                let pause = pause.failed(shared.bootstrapper.clock().now(), asked);
                match &failure {
                    Some(failure) => {
                        warn!(origin = %origin, kind = failure.kind().code(), error = %failure.report_line(), pause = ?pause, "a mint for the pool failed");
                    }
                    None => {
                        warn!(origin = %origin, deadline = ?shared.upstream_deadline, pause = ?pause, "a mint for the pool failed: upstream did not answer within the deadline");
                    }
                }
            }
        }
    }
}

/// The refills under way of a [`WidgetService::keep_pool`], by task. When
/// the loop is dropped its tasks are aborted, and this gives their places
/// in the pool back.
struct Refills<'a> {
    state: &'a PoolState,
    under_way: HashMap<tokio::task::Id, Refill>,
}

impl Drop for Refills<'_> {
    fn drop(&mut self) {
        if self.under_way.is_empty() {
            return;
        }
        let mut pool = self.state.lock();
        for (_, refill) in self.under_way.drain() {
            pool.abandon(refill);
        }
    }
}
