//! Faults injected on purpose, per route, deterministic from a seed.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::Route;

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMatch {
    /// Every route (but `/_emulator/stats`).
    Any,
    /// One route.
    Only(Route),
}

impl RouteMatch {
    fn matches(self, route: Route) -> bool {
        match self {
            Self::Any => route != Route::Stats,
            Self::Only(r) => r == route,
        }
    }
}

/// What happens when a fault fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer this status (500, 502, 503, 429, …) with an error body, and
    /// `Retry-After: <seconds>` if given.
    Status {
        /// The status code.
        status: u16,
        /// The `Retry-After` value, in seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Wait this long, then answer normally.
    Latency {
        /// The added latency, in milliseconds.
        millis: u64,
    },
    /// Close the connection without answering.
    CloseBeforeResponse,
    /// Send the headers and half the body, then close the connection.
    CloseMidBody,
    /// Answer with the first half of the body only (a complete HTTP answer
    /// whose JSON is cut).
    TruncatedBody,
    /// Answer 200 with a body that is not JSON.
    MalformedBody,
    /// Remove the links with this local name (any namespace) from the
    /// answer, embedded resources included.
    MissingLink {
        /// The local name, e.g. `anonApplicationTokens`.
        rel: String,
    },
    /// Answer `307 Temporary Redirect` to the same path on `host`
    /// (`host:port` or `[::1]:port`; the emulator's own port if no port).
    Redirect {
        /// The host to redirect to.
        host: String,
    },
    /// Revoke every AAD token issued so far: the API answers 401 to them,
    /// though they have not expired.
    RevokeAadTokens,
    /// Answer 403 for missing consent.
    RevokeConsent,
}

impl FaultKind {
    /// The name counted in the stats.
    pub fn name(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("status_{status}"),
            Self::Latency { .. } => "latency".to_owned(),
            Self::CloseBeforeResponse => "close_before_response".to_owned(),
            Self::CloseMidBody => "close_mid_body".to_owned(),
            Self::TruncatedBody => "truncated_body".to_owned(),
            Self::MalformedBody => "malformed_body".to_owned(),
            Self::MissingLink { .. } => "missing_link".to_owned(),
            Self::Redirect { .. } => "redirect".to_owned(),
            Self::RevokeAadTokens => "revoke_aad_tokens".to_owned(),
            Self::RevokeConsent => "revoke_consent".to_owned(),
        }
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        match self {
            Self::Latency { millis } => Some(Duration::from_millis(*millis)),
            _ => None,
        }
    }
}

/// When a fault fires, counted over the requests its route match selects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// On every matching request.
    Always,
    /// On the first matching request only.
    Once,
    /// On the first `n` matching requests.
    FirstN(u64),
    /// On every `n`th matching request (the `n`th, `2n`th, …).
    EveryNth(u64),
    /// With this probability, from the emulator's fault seed.
    Probability(f64),
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Which requests.
    pub route: RouteMatch,
    /// What happens.
    pub fault: FaultKind,
    /// When.
    pub trigger: Trigger,
}

impl FaultRule {
    /// A rule for one route.
    pub fn on(route: Route, fault: FaultKind, trigger: Trigger) -> Self {
        Self {
            route: RouteMatch::Only(route),
            fault,
            trigger,
        }
    }

    /// A rule for every route.
    pub fn everywhere(fault: FaultKind, trigger: Trigger) -> Self {
        Self {
            route: RouteMatch::Any,
            fault,
            trigger,
        }
    }
}

#[derive(Debug)]
struct Active {
    rule: FaultRule,
    matched: u64,
}

/// The rules in force and the seeded random source.
#[derive(Debug)]
pub(crate) struct Faults {
    inner: Mutex<(Vec<Active>, u64)>,
}

impl Faults {
    pub(crate) fn new(rules: &[FaultRule], seed: u64) -> Self {
        Self {
            inner: Mutex::new((
                rules
                    .iter()
                    .cloned()
                    .map(|rule| Active { rule, matched: 0 })
                    .collect(),
                seed,
            )),
        }
    }

    pub(crate) fn add(&self, rule: FaultRule) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.0.push(Active { rule, matched: 0 });
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.0.clear();
        }
    }

    /// The faults that fire for this request, in rule order.
    pub(crate) fn fire(&self, route: Route) -> Vec<FaultKind> {
        let Ok(mut guard) = self.inner.lock() else {
            return Vec::new();
        };
        let (rules, seed) = &mut *guard;
        let mut fired = Vec::new();
        for active in rules.iter_mut().filter(|a| a.rule.route.matches(route)) {
            active.matched += 1;
            let n = active.matched;
            let fires = match active.rule.trigger {
                Trigger::Always => true,
                Trigger::Once => n == 1,
                Trigger::FirstN(k) => n <= k,
                Trigger::EveryNth(k) => k > 0 && n % k == 0,
                Trigger::Probability(p) => next_unit(seed) < p,
            };
            if fires {
                fired.push(active.rule.fault.clone());
            }
        }
        fired
    }
}

/// SplitMix64 → [0, 1).
pub(crate) fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
