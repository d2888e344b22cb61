//! The faults the soak injects: one at a time, each for a window, chosen at
//! random (seeded) from every kind the emulator has.

use std::time::Duration;

use ta_emulator::{CallbackFaults, FaultKind, FaultRule, Route, RouteMatch, Trigger};

/// A small seeded random source (splitmix64): the soak is repeatable from
/// its seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The routes a fault may be put on alone: the token's path, the SA's
/// chat calls and the keys its callbacks are checked against, and the
/// widget's side.
const ROUTES: [Route; 11] = [
    Route::Discovery,
    Route::AadToken,
    Route::Applications,
    Route::Application,
    Route::Mint,
    Route::ChatCall,
    Route::Keys,
    Route::AnonymousDiscovery,
    Route::UcwaApplication,
    Route::UcwaEvents,
    Route::UcwaMessaging,
];

/// One fault window: a name for the report, its rules, and the callbacks'
/// faults.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) name: String,
    pub(crate) rules: Vec<FaultRule>,
    pub(crate) callbacks: CallbackFaults,
}

/// The next window: a kind of fault, on one route or on every route,
/// firing with a probability; or a fault of the callbacks; sometimes none.
pub(crate) fn next_window(rng: &mut Rng, redirect_host: &str) -> Window {
    let route = if rng.below(3) == 0 {
        RouteMatch::Any
    } else {
        let i = usize::try_from(rng.below(ROUTES.len() as u64)).unwrap_or(0);
        RouteMatch::Only(ROUTES.get(i).copied().unwrap_or(Route::Mint))
    };
    let probability =
        Trigger::Probability(0.2 + f64::from(u8::try_from(rng.below(60)).unwrap_or(0)) / 100.0);
    let mut callbacks = CallbackFaults::NONE;
    let (name, rules) = match rng.below(15) {
        0 => ("none".to_owned(), Vec::new()),
        1 => {
            let status = match rng.below(3) {
                0 => 500,
                1 => 502,
                _ => 503,
            };
            (
                format!("status_{status}"),
                vec![rule(
                    route,
                    FaultKind::Status {
                        status,
                        retry_after_secs: None,
                    },
                    probability,
                )],
            )
        }
        2 => (
            "status_429_retry_after".to_owned(),
            vec![rule(
                route,
                FaultKind::Status {
                    status: 429,
                    retry_after_secs: Some(1),
                },
                probability,
            )],
        ),
        3 => (
            "reset".to_owned(),
            vec![rule(route, FaultKind::CloseBeforeResponse, probability)],
        ),
        4 => (
            "cut_mid_body".to_owned(),
            vec![rule(route, FaultKind::CloseMidBody, probability)],
        ),
        5 => (
            "truncated_body".to_owned(),
            vec![rule(route, FaultKind::TruncatedBody, probability)],
        ),
        6 => (
            "slow".to_owned(),
            vec![rule(
                route,
                FaultKind::Latency {
                    millis: 300 + rng.below(1200),
                },
                probability,
            )],
        ),
        7 => (
            "malformed_body".to_owned(),
            vec![rule(route, FaultKind::MalformedBody, probability)],
        ),
        8 => (
            "revoked_aad_token".to_owned(),
            vec![FaultRule::everywhere(
                FaultKind::RevokeAadTokens,
                Trigger::Once,
            )],
        ),
        9 => (
            "revoked_consent".to_owned(),
            vec![rule(route, FaultKind::RevokeConsent, probability)],
        ),
        10 => (
            "redirect_elsewhere".to_owned(),
            vec![rule(
                route,
                FaultKind::Redirect {
                    host: redirect_host.to_owned(),
                },
                probability,
            )],
        ),
        12 => {
            callbacks.duplicate = true;
            ("callbacks_twice".to_owned(), Vec::new())
        }
        13 => {
            callbacks.reorder = true;
            ("callbacks_swapped".to_owned(), Vec::new())
        }
        14 => {
            callbacks.delay_ms = 200 + rng.below(800);
            ("callbacks_late".to_owned(), Vec::new())
        }
        _ => (
            "aad_outage".to_owned(),
            vec![FaultRule::on(
                Route::AadToken,
                FaultKind::Status {
                    status: 503,
                    retry_after_secs: None,
                },
                Trigger::Always,
            )],
        ),
    };
    Window {
        name,
        rules,
        callbacks,
    }
}

fn rule(route: RouteMatch, fault: FaultKind, trigger: Trigger) -> FaultRule {
    FaultRule {
        route,
        fault,
        trigger,
    }
}

/// How long a window lasts: `base`, give or take half.
pub(crate) fn window_length(rng: &mut Rng, base: Duration) -> Duration {
    let half = base / 2;
    let millis = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rng.below(millis.max(1)))
}
