//! The service's pool of pre-minted tokens: the take on a widget's path,
//! the refill loop ([`WidgetService::keep_pool`]), and emptying it on a
//! reload. The pool's rules are in [`crate::pool`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ta_protocol::WidgetToken;

use super::*;
use crate::pool::{Discard, Landing, Pool, PoolConfig, Refill};

/// How often the refill loop looks at the pool when nothing wakes it.
const TICK: Duration = Duration::from_secs(1);
/// The longest pause of refills after failures.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The pool and what wakes its refill loop.
pub(super) struct PoolState {
    pool: Mutex<Pool<WidgetToken>>,
    wake: tokio::sync::Notify,
    /// Set on a reload: refills paused after failures start again.
    resume: AtomicBool,
    /// Mints for the pool at once: the configured number, and at most half
    /// of the service's mints in flight.
    in_flight_cap: usize,
}

impl PoolState {
    /// The pool of `config`, if it is on.
    pub(super) fn new(config: &ServiceConfig, now: std::time::Instant) -> Option<Self> {
        let pool = &config.pool;
        pool.is_on().then(|| Self {
            in_flight_cap: pool
                .refill_in_flight()
                .min((config.max_mints_in_flight / 2).max(1)),
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
            self.metrics.pool.depth(origin.as_str(), pool.depth(origin));
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
    /// The pool's settings (off unless configured).
    pub fn pool_config(&self) -> &PoolConfig {
        &self.config.pool
    }

    /// Empties the pool of pre-minted tokens (after a credential or
    /// configuration reload): no token pooled before is handed out, nor any
    /// token whose refill was under way. Refills start again at once,
    /// paused failures or not.
    pub fn empty_pool(&self) {
        let Some(state) = self.shared.pool.as_ref() else {
            return;
        };
        let dropped = {
            let mut pool = state.lock();
            let dropped = pool.clear();
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
    /// the API asked for or a backoff (1 s doubling to 60 s), whichever is
    /// longer. Runs until dropped; its mints in flight go with it.
    pub async fn keep_pool(&self) {
        let Some(state) = self.shared.pool.as_ref() else {
            return;
        };
        let shared = &self.shared;
        let clock = shared.bootstrapper.clock();
        let mut running: tokio::task::JoinSet<Minted> = tokio::task::JoinSet::new();
        let mut refills: HashMap<tokio::task::Id, Refill> = HashMap::new();
        let mut backoff = Duration::from_secs(1);
        let mut paused_until: Option<std::time::Instant> = None;
        loop {
            let now = clock.now();
            if state.resume.swap(false, Ordering::AcqRel) {
                paused_until = None;
                backoff = Duration::from_secs(1);
            }
            {
                let mut pool = state.lock();
                let stale = pool.sweep(now);
                shared.metrics.pool.discarded(Discard::Age.label(), stale);
                if paused_until.is_none_or(|until| now >= until) {
                    paused_until = None;
                    self.start_refills(
                        &mut pool,
                        now,
                        state.in_flight_cap,
                        &mut running,
                        &mut refills,
                    );
                }
                shared.publish_depths(&pool);
            }
            let wait = paused_until.map_or(TICK, |until| {
                until
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(1), TICK)
            });
            tokio::select! {
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let (id, minted) = match done {
                        Ok((id, minted)) => (id, minted),
                        // A mint that panicked or was cancelled: its place
                        // is free again.
                        Err(e) => (e.id(), Err(None)),
                    };
                    let Some(refill) = refills.remove(&id) else { continue };
                    if let Some(pause) = self.landed(state, refill, minted, &mut backoff) {
                        paused_until = Some(clock.now() + pause);
                    }
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
            // Widgets' mints first: the pool never takes the last permits.
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
    /// it failed, how long refills pause.
    fn landed(
        &self,
        state: &PoolState,
        refill: Refill,
        minted: Minted,
        backoff: &mut Duration,
    ) -> Option<Duration> {
        let shared = &self.shared;
        let origin = refill.origin().clone();
        match minted {
            Ok(token) => {
                shared.metrics.pool.refill(true);
                *backoff = Duration::from_secs(1);
                let clock = shared.bootstrapper.clock();
                let landing = {
                    let mut pool = state.lock();
                    let landing = pool.land(refill, token, clock.now(), clock.unix_seconds());
                    shared
                        .metrics
                        .pool
                        .depth(origin.as_str(), pool.depth(&origin));
                    landing
                };
                if let Landing::Discarded(why) = landing {
                    debug!(origin = %origin, reason = why.label(), "a pooled token was thrown away as it landed");
                    shared.metrics.pool.discarded(why.label(), 1);
                }
                None
            }
            Err(failure) => {
                shared.metrics.pool.refill(false);
                state.lock().abandon(refill);
                let asked = failure.as_ref().and_then(BootstrapError::retry_after);
                let pause = asked.unwrap_or_default().max(*backoff);
                *backoff = (*backoff * 2).min(MAX_PAUSE);
                match &failure {
                    Some(failure) => {
                        warn!(origin = %origin, kind = failure.kind().code(), error = %failure.report_line(), pause = ?pause, "a mint for the pool failed");
                    }
                    None => {
                        warn!(origin = %origin, deadline = ?shared.upstream_deadline, pause = ?pause, "a mint for the pool failed: upstream did not answer within the deadline");
                    }
                }
                Some(pause)
            }
        }
    }
}
