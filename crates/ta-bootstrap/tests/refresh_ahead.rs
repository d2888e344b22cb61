//! The capabilities renewed ahead of their expiry, against the emulator
//! over real TLS, on a clock the test moves: over several lifetimes no
//! mint waits for discovery or capabilities, and a failed renewal keeps
//! the valid ones and backs off.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ta_bootstrap::{Bootstrapper, CacheKind, Clock, Observer};
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_test_support::*;

const LIFETIME: Duration = Duration::from_secs(60);

/// Counts capabilities look-ups that found nothing valid (the caller
/// waited for a fetch) and those that did not.
#[derive(Debug, Default)]
struct Lookups {
    served: AtomicU64,
    waited: AtomicU64,
}

impl Observer for Lookups {
    fn cache_lookup(&self, cache: CacheKind, hit: bool) {
        if cache == CacheKind::Capabilities {
            let counter = if hit { &self.served } else { &self.waited };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct Rig {
    s: Setup,
    clock: Arc<ManualClock>,
    lookups: Arc<Lookups>,
    b: Bootstrapper,
    start: Instant,
}

async fn rig() -> Rig {
    let s = setup(EmulatorConfig::default()).await;
    let clock = ManualClock::new();
    let lookups = Arc::new(Lookups::default());
    let b = s
        .builder()
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .capabilities_lifetime(LIFETIME)
        .observer(Arc::clone(&lookups) as Arc<dyn Observer>)
        .build();
    let start = clock.now();
    b.warm_up().await.unwrap();
    Rig {
        s,
        clock,
        lookups,
        b,
        start,
    }
}

impl Rig {
    fn discoveries(&self) -> u64 {
        self.s.emulator.stats().requests(Route::Discovery)
    }

    /// Waits (real time) until no renewal is due at the clock's time: the
    /// background renewal is over, renewed or held back.
    async fn renewal_over(&self) {
        let limit = Instant::now() + Duration::from_secs(20);
        while self
            .b
            .capabilities_refresh_due()
            .is_some_and(|due| due <= self.clock.now())
        {
            assert!(Instant::now() < limit, "the renewal never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn mint(&self) -> Result<ta_protocol::WidgetToken, ta_bootstrap::BootstrapError> {
        self.b.mint(origins("https://contoso.com")).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_several_lifetimes_no_mint_waits_for_discovery_or_capabilities() {
    let r = rig().await;
    assert_eq!(r.lookups.waited.load(Ordering::SeqCst), 1, "the warm-up's");
    // Renewed at 80 % to 84 % of the lifetime: before the AAD token (an
    // hour) is due.
    let due = r.b.capabilities_refresh_due().unwrap() - r.start;
    assert!(
        (Duration::from_secs(48)..=Duration::from_millis(50_400)).contains(&due),
        "{due:?}"
    );
    assert_eq!(r.b.refresh_due(), r.b.capabilities_refresh_due());
    // Discovery is slow from now on: a mint that waited for a renewal would
    // come back after it.
    r.s.emulator.inject(FaultRule::on(
        Route::Discovery,
        FaultKind::Latency { millis: 2_500 },
        Trigger::Always,
    ));
    let mut renewals = 0u64;
    // A mint every 8 s: at least one in every renewal window (the last
    // 9.6 to 12 s of the life, as the jitter falls).
    for _ in 0..25 {
        r.clock.advance(Duration::from_secs(8));
        let due = r.b.capabilities_refresh_due().unwrap() <= r.clock.now();
        let before = r.discoveries();
        r.mint().await.unwrap();
        // The mint is back before the renewal's discovery is answered.
        assert_eq!(r.discoveries(), before);
        r.renewal_over().await;
        if due {
            renewals += 1;
            assert_eq!(r.discoveries(), before + 1, "one renewal");
        } else {
            assert_eq!(r.discoveries(), before, "nothing renewed early");
        }
    }
    // 200 s: renewed every 48 or 56 s (as the jitter falls); the
    // capabilities never expired.
    assert!((3..=4).contains(&renewals), "{renewals}");
    assert_eq!(r.discoveries(), 1 + renewals);
    let stats = r.s.emulator.stats();
    assert_eq!(stats.requests(Route::Application), 1 + renewals);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 25);
    assert_eq!(r.lookups.waited.load(Ordering::SeqCst), 1, "no mint waited");
    assert_eq!(r.lookups.served.load(Ordering::SeqCst), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_renewal_keeps_the_valid_capabilities_and_backs_off() {
    let r = rig().await;
    r.s.emulator.inject(FaultRule::on(
        Route::Discovery,
        FaultKind::Status {
            status: 404,
            retry_after_secs: None,
        },
        Trigger::Always,
    ));
    // Due (at most 50.4 s): the renewal fails, the mint is served.
    r.clock.advance(Duration::from_secs(51));
    r.mint().await.unwrap();
    r.renewal_over().await;
    assert_eq!(r.discoveries(), 2);
    // Held back 5 s: no renewal, the cached capabilities serve.
    let held = r.b.capabilities_refresh_due().unwrap() - r.clock.now();
    assert_eq!(held, Duration::from_secs(5));
    r.clock.advance(Duration::from_secs(2));
    r.mint().await.unwrap();
    r.renewal_over().await;
    assert_eq!(r.discoveries(), 2, "held back");
    // The hold is over: another attempt, then a hold twice as long.
    r.clock.advance(Duration::from_secs(4));
    r.mint().await.unwrap();
    r.renewal_over().await;
    assert_eq!(r.discoveries(), 3);
    let held = r.b.capabilities_refresh_due().unwrap() - r.clock.now();
    assert_eq!(held, Duration::from_secs(10));
    assert_eq!(r.lookups.waited.load(Ordering::SeqCst), 1, "no mint waited");
    // Expired (60 s): nothing valid is left, the caller waits for a fetch
    // and gets its error; once discovery answers again, all is well.
    r.clock.advance(Duration::from_secs(4));
    let error = r.mint().await.unwrap_err();
    assert_eq!(
        error.upstream_status().map(|s| s.as_u16()),
        Some(404),
        "{error}"
    );
    assert_eq!(r.lookups.waited.load(Ordering::SeqCst), 2);
    assert!(!r.b.is_warm());
    r.s.emulator.clear_faults();
    r.mint().await.unwrap();
    assert!(r.b.is_warm());
    assert_eq!(r.discoveries(), 5);
}
