//! The pool of pre-minted widget tokens ([`PoolConfig`]; off by default).
//!
//! One lane per allowlisted origin holds tokens minted for that origin
//! alone, each with its own session id, in the order they landed. A widget's request,
//! once it has passed every check a direct mint has (the origin, the rate
//! limits, the operator's check), takes the first token of its origin that
//! is still fresh, and is given it at once; when there is none it is a miss
//! and gets a direct mint, as without a pool. Each token is given to one
//! widget only. A token is fresh until its deadline: its mint's start plus
//! the smaller of the maximum age and half the life it had when minted.
//!
//! An origin's **target depth** is its demand, the widget-token requests
//! from it over the last 10 seconds (hits and misses), held between the
//! floor and the size: at zero demand the pool keeps the floor and mints
//! nothing more. The refill loop
//! ([`WidgetService::keep_pool`](crate::WidgetService::keep_pool)) mints in
//! the background up to the targets, the largest deficit first, never past
//! the cap across origins (tokens pooled and being minted). Tokens above a
//! target that fell are not thrown away early: they are used or they age
//! out.
//!
//! A reload ([`WidgetService::empty_pool`](crate::WidgetService::empty_pool),
//! or [`WidgetService::set_pool_config`](crate::WidgetService::set_pool_config)
//! with new settings) throws away every pooled token, and the tokens of
//! refills under way when they land; an origin that leaves the allowlist
//! takes its tokens with it. The pool is turned on or off only by a new
//! service ([`PoolSwitchError`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ta_protocol::{Origin, WidgetToken};

/// What the pool holds: anything that expires (a [`WidgetToken`]; plain
/// fakes in the tests).
pub(crate) trait Expiring {
    /// When it expires, on the wall clock.
    fn expires_at(&self) -> std::time::SystemTime;
}

impl Expiring for WidgetToken {
    fn expires_at(&self) -> std::time::SystemTime {
        Self::expires_at(self)
    }
}

mod config;
mod demand;
mod pause;

pub use config::{PoolConfig, PoolConfigError, PoolSwitchError};
use demand::Demand;
pub(crate) use pause::Pause;

/// Why a pooled token was thrown away unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discard {
    /// It passed its deadline.
    Age,
    /// Its origin left the allowlist.
    OriginRemoved,
    /// A reload emptied the pool.
    Reload,
    /// It landed with too little life left to be handed out.
    ShortLife,
}

impl Discard {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::OriginRemoved => "origin_removed",
            Self::Reload => "reload",
            Self::ShortLife => "short_life",
        }
    }
}

/// A refill under way: which lane it is for, and when its mint started.
#[derive(Debug)]
pub(crate) struct Refill {
    origin: Origin,
    lane: u64,
    generation: u64,
    started: Instant,
}

impl Refill {
    /// The origin to mint for (alone).
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// What became of a refill's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Landing {
    /// It is in the pool.
    Pooled,
    /// It was thrown away.
    Discarded(Discard),
}

/// What a widget's request found.
#[derive(Debug)]
pub(crate) struct Taken<T> {
    /// The token it is to be given, if the pool had one.
    pub(crate) token: Option<T>,
    /// Tokens found past their deadline and thrown away.
    pub(crate) stale: usize,
}

struct Pooled<T> {
    token: T,
    deadline: Instant,
}

struct Lane<T> {
    /// Tells this lane from an earlier one of the same origin.
    id: u64,
    tokens: VecDeque<Pooled<T>>,
    in_flight: usize,
    demand: Demand,
}

/// The pool's state. Not `Debug`: it holds tokens.
pub(crate) struct Pool<T> {
    config: PoolConfig,
    lanes: BTreeMap<Origin, Lane<T>>,
    next_lane: u64,
    generation: u64,
    /// Refills under way, across origins: those of lanes since removed
    /// too, whose mints still run.
    in_flight: usize,
    /// Demand seconds count from here.
    epoch: Instant,
}

impl<T: Expiring> Pool<T> {
    /// An empty pool for the origins of `allowlist`.
    pub(crate) fn new(config: PoolConfig, allowlist: &[Origin], now: Instant) -> Self {
        let mut pool = Self {
            config,
            lanes: BTreeMap::new(),
            next_lane: 0,
            generation: 0,
            in_flight: 0,
            epoch: now,
        };
        pool.set_origins(allowlist);
        pool
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// A widget's request from `origin`: counts it as demand and takes the
    /// first fresh token, throwing away the stale ones before it.
    pub(crate) fn take(&mut self, origin: &Origin, now: Instant) -> Taken<T> {
        let second = self.second(now);
        let mut taken = Taken {
            token: None,
            stale: 0,
        };
        let Some(lane) = self.lanes.get_mut(origin) else {
            return taken;
        };
        lane.demand.record(second);
        while let Some(pooled) = lane.tokens.pop_front() {
            if now < pooled.deadline {
                taken.token = Some(pooled.token);
                break;
            }
            taken.stale += 1;
        }
        taken
    }

    /// Throws away every token past its deadline; how many.
    pub(crate) fn sweep(&mut self, now: Instant) -> usize {
        let mut stale = 0;
        for lane in self.lanes.values_mut() {
            let before = lane.tokens.len();
            lane.tokens.retain(|pooled| now < pooled.deadline);
            stale += before - lane.tokens.len();
        }
        stale
    }

    /// The target depth of `origin` now.
    #[cfg(test)]
    pub(crate) fn target(&self, origin: &Origin, now: Instant) -> usize {
        self.lanes
            .get(origin)
            .map_or(0, |lane| self.lane_target(lane, now))
    }

    fn lane_target(&self, lane: &Lane<T>, now: Instant) -> usize {
        let demand = usize::try_from(lane.demand.count(self.second(now))).unwrap_or(usize::MAX);
        demand.clamp(self.config.floor(), self.config.size())
    }

    /// Tokens pooled and being minted, across origins.
    fn total(&self) -> usize {
        self.lanes
            .values()
            .map(|lane| lane.tokens.len())
            .sum::<usize>()
            + self.in_flight
    }

    /// Mints for the pool under way (for lanes since removed too).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next refill to start, if any origin is below its target and the
    /// caps allow one more (`in_flight_cap` mints for the pool at once).
    pub(crate) fn begin_refill(&mut self, now: Instant, in_flight_cap: usize) -> Option<Refill> {
        if self.in_flight() >= in_flight_cap || self.total() >= self.config.max_total() {
            return None;
        }
        let (origin, _) = self
            .lanes
            .iter()
            .filter_map(|(origin, lane)| {
                let have = lane.tokens.len() + lane.in_flight;
                let deficit = self.lane_target(lane, now).checked_sub(have)?;
                (deficit > 0).then_some((origin, deficit))
            })
            // The first of the largest: `max_by_key` keeps the last.
            .fold(None, |best: Option<(&Origin, usize)>, next| match best {
                Some(best) if best.1 >= next.1 => Some(best),
                _ => Some(next),
            })?;
        let origin = origin.clone();
        let lane = self.lanes.get_mut(&origin)?;
        lane.in_flight += 1;
        self.in_flight += 1;
        Some(Refill {
            origin,
            lane: lane.id,
            generation: self.generation,
            started: now,
        })
    }

    /// A refill's mint failed: its place is free again.
    pub(crate) fn abandon(&mut self, refill: Refill) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(lane) = self.lane_of(&refill) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }

    fn lane_of(&mut self, refill: &Refill) -> Option<&mut Lane<T>> {
        self.lanes
            .get_mut(&refill.origin)
            .filter(|lane| lane.id == refill.lane)
    }

    /// A refill's token, minted for its origin alone, arrived at `now`
    /// (`unix_now` on the wall clock, for its expiry): pooled, or thrown
    /// away if the pool was emptied or its origin left meanwhile, or if it
    /// has too little life left.
    pub(crate) fn land(
        &mut self,
        refill: Refill,
        token: T,
        now: Instant,
        unix_now: u64,
    ) -> Landing {
        let generation = self.generation;
        let max_age = self.config.max_age();
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(lane) = self.lane_of(&refill) else {
            return Landing::Discarded(Discard::OriginRemoved);
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if refill.generation != generation {
            return Landing::Discarded(Discard::Reload);
        }
        let remaining = token
            .expires_at()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(unix_now));
        // Half the life it had at its mint, at most: a widget always gets
        // a token with at least half its life, whatever the API's.
        let life = Duration::from_secs(remaining) + now.saturating_duration_since(refill.started);
        let deadline = refill.started + max_age.min(life / 2);
        if deadline <= now {
            return Landing::Discarded(Discard::ShortLife);
        }
        lane.tokens.push_back(Pooled { token, deadline });
        Landing::Pooled
    }

    /// The pool's settings.
    pub(crate) fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Empties the pool and takes `config` for what comes after (a reload
    /// that changed the settings): how many tokens were thrown away.
    pub(crate) fn clear_with(&mut self, config: PoolConfig) -> usize {
        self.config = config;
        self.clear()
    }

    /// Empties the pool (a reload): returns how many tokens were thrown
    /// away; refills under way are thrown away when they land.
    pub(crate) fn clear(&mut self) -> usize {
        self.generation += 1;
        self.lanes
            .values_mut()
            .map(|lane| std::mem::take(&mut lane.tokens).len())
            .sum()
    }

    /// Keeps a lane for each origin of `allowlist`: new origins get an
    /// empty lane, the lanes of origins no longer on it go with their
    /// tokens (how many is returned).
    pub(crate) fn set_origins(&mut self, allowlist: &[Origin]) -> usize {
        let mut dropped = 0;
        self.lanes.retain(|origin, lane| {
            let keep = allowlist.contains(origin);
            if !keep {
                dropped += lane.tokens.len();
            }
            keep
        });
        for origin in allowlist {
            if !self.lanes.contains_key(origin) {
                self.next_lane += 1;
                self.lanes.insert(
                    origin.clone(),
                    Lane {
                        id: self.next_lane,
                        tokens: VecDeque::new(),
                        in_flight: 0,
                        demand: Demand::default(),
                    },
                );
            }
        }
        dropped
    }

    /// The tokens pooled for `origin` (`None`: not an origin of the pool).
    pub(crate) fn depth(&self, origin: &Origin) -> Option<usize> {
        self.lanes.get(origin).map(|lane| lane.tokens.len())
    }

    /// Each origin with its depth.
    pub(crate) fn depths(&self) -> impl Iterator<Item = (&Origin, usize)> {
        self.lanes
            .iter()
            .map(|(origin, lane)| (origin, lane.tokens.len()))
    }
}

#[cfg(test)]
mod tests;
