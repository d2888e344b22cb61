//! Widget requests over real HTTP, on a clock the test moves, for longer
//! than several lifetimes of the capabilities: the service never makes a
//! widget wait for discovery or capabilities, because they are renewed
//! ahead of their expiry, off the widget's path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "service/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use ta_bootstrap::{Clock, Observer};
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_test_support::{ManualClock, setup};
use ta_widget_service::Metrics;

const LIFETIME: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_several_lifetimes_no_widget_waits_for_discovery_or_capabilities() {
    let metrics = Arc::new(Metrics::new());
    let clock = ManualClock::new();
    let mut setup = setup(EmulatorConfig::default()).await;
    setup.bootstrapper = setup
        .builder()
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .capabilities_lifetime(LIFETIME)
        .observer(Arc::clone(&metrics) as Arc<dyn Observer>)
        .build();
    let s = service_over(
        setup,
        metrics,
        |c| c.per_client_per_minute = 1_000,
        |service| service,
    )
    .await;
    let b = &s.setup.bootstrapper;
    b.warm_up().await.unwrap();
    let discoveries = || s.setup.emulator.stats().requests(Route::Discovery);
    // Discovery is slow from now on: a widget that waited for a renewal
    // would be answered after it.
    s.setup.emulator.inject(FaultRule::on(
        Route::Discovery,
        FaultKind::Latency { millis: 2_500 },
        Trigger::Always,
    ));
    let mut renewals = 0;
    // A widget every 8 s for 200 s (over three lifetimes): at least one in
    // each renewal window.
    for _ in 0..25 {
        clock.advance(Duration::from_secs(8));
        let due = b.capabilities_refresh_due().unwrap() <= clock.now();
        let before = discoveries();
        mint_for(&s, "https://contoso.com").await;
        assert_eq!(discoveries(), before, "the widget waited for discovery");
        // The renewal, started by the widget's request, ends in the
        // background.
        let limit = Instant::now() + Duration::from_secs(20);
        while b
            .capabilities_refresh_due()
            .is_some_and(|due| due <= clock.now())
        {
            assert!(Instant::now() < limit, "the renewal never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if due {
            renewals += 1;
            assert_eq!(discoveries(), before + 1, "one renewal");
        }
    }
    assert!((3..=4).contains(&renewals), "{renewals}");
    let stats = s.setup.emulator.stats();
    assert_eq!(stats.requests(Route::Discovery), 1 + renewals);
    assert_eq!(stats.requests(Route::Application), 1 + renewals);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 25);
    // The service's own metrics say the same: the warm-up's look-up was
    // the only one that found nothing.
    let lookups = "ta_cache_lookups_total{cache=\"capabilities\",result=";
    assert_eq!(metric(&s, &format!("{lookups}\"miss\"}}")), 1);
    assert_eq!(metric(&s, &format!("{lookups}\"hit\"}}")), 25);
    assert_eq!(metric(&s, "ta_widget_tokens_served_total"), 25);
}
