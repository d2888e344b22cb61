//! [`Bootstrapper::keep_warm`] renews the capabilities ahead of their
//! expiry with no caller asking: at zero demand the caches never go cold,
//! so the next mint waits for nothing but its own request.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};

use ta_bootstrap::Bootstrapper;
use ta_emulator::{EmulatorConfig, Route};
use ta_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_renews_the_capabilities_before_they_expire() {
    // Capabilities of 5 s are due 4 to 4.2 s after each fetch: well before
    // the loop's 30 s look, which alone would let them expire.
    let s = setup(EmulatorConfig::default()).await;
    let bootstrapper = s
        .builder()
        .capabilities_lifetime(Duration::from_secs(5))
        .build();
    let warm: Bootstrapper = bootstrapper.clone();
    let task = tokio::spawn(async move { warm.keep_warm().await });
    let started = Instant::now();
    while !bootstrapper.is_warm() {
        assert!(started.elapsed() < Duration::from_secs(10), "never warm");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Over two lifetimes with no widget at all: renewed each time, never
    // cold.
    let warm_at = Instant::now();
    while warm_at.elapsed() < Duration::from_secs(11) {
        assert!(
            bootstrapper.is_warm(),
            "the capabilities expired after {:?}",
            warm_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = s.emulator.stats();
    let discoveries = stats.requests(Route::Discovery);
    assert!((3..=4).contains(&discoveries), "{discoveries}");
    assert_eq!(stats.requests(Route::Application), discoveries);
    // The AAD token (an hour) was fetched once.
    assert_eq!(stats.aad_tokens_issued, 1);
    // A widget now costs its mint alone (nothing else on its path).
    let before = s.emulator.stats();
    bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    let after = s.emulator.stats();
    assert_eq!(
        after.requests(Route::Mint) - before.requests(Route::Mint),
        1
    );
    assert_eq!(after.aad_tokens_issued, 1);
    task.abort();
}
