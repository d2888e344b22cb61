//! A page that follows the widget guide (the demo page of `serve
//! --emulator`, built on the token client), in headless Chromium, with its
//! clock six hours wrong and frozen past its token's expiry: it keeps a
//! valid token and makes exactly the mints its renewals need, counted on the
//! server side (the emulator's mint counter, `/_emulator/stats` on its
//! plain-http widget side), not in the page.
//!
//! - The clock: a script injected before any of the page's own with the
//!   DevTools protocol (`Page.addScriptToEvaluateOnNewDocument`) moves
//!   `Date` six hours ahead. The service's `expiresAt` is then hours in the
//!   page's past; the client never compares it with that clock.
//! - The freeze: `Page.setWebLifecycleState` freezes the page for 25 s, past
//!   the 15 s token and its renewal at 11 s (the service's `renewAfter`): a
//!   frozen page runs nothing, so no renewal happens while it is frozen.
//!   Chromium freezes hidden pages only, and the page stays hidden once
//!   resumed: it renews nothing while hidden. When the visitor comes back
//!   to the tab, it renews at once, once, and then after `renewAfter` again.
//!
//! Same requirements as `browser.rs` (Chromium and chromedriver; never
//! skipped in CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

#[path = "common/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use browser::*;
use fantoccini::Client;
use serde_json::json;

/// The emulator's widget-token lifetime here (the shortest it takes).
const TOKEN_LIFETIME_S: u64 = 15;
/// The service's `renewAfter` for it: three quarters, rounded down.
const RENEW_AFTER_S: u64 = TOKEN_LIFETIME_S * 3 / 4;
/// How far the page's clock is wrong.
const SKEW_MS: i64 = 6 * 3600 * 1000;
/// How long the page stays frozen: past the token's whole life.
const FROZEN: Duration = Duration::from_secs(25);

/// Moves the page's `Date` six hours ahead (`new Date()`, `Date()`,
/// `Date.now()`); dates built from a value stay as given.
const SKEW_SCRIPT: &str = r"(() => {
  const Real = Date;
  const offset = 6 * 3600 * 1000;
  function Skewed(...args) {
    if (!new.target) return new Real(Real.now() + offset).toString();
    return args.length === 0 ? new Real(Real.now() + offset) : new Real(...args);
  }
  Skewed.prototype = Real.prototype;
  Skewed.now = () => Real.now() + offset;
  Skewed.parse = Real.parse;
  Skewed.UTC = Real.UTC;
  globalThis.Date = Skewed;
})();";

/// The emulator's count of minted widget tokens.
async fn minted(stats_url: &str) -> u64 {
    let url = stats_url.to_owned();
    let (head, body) = tokio::task::spawn_blocking(move || http_request("GET", &url, &[], ""))
        .await
        .unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    stats["psat_tokens_minted"]
        .as_u64()
        .unwrap_or_else(|| panic!("no psat_tokens_minted: {stats}"))
}

/// The emulator's widget side, from the anonApplications link the page
/// shows (`http://127.0.0.1:<port>/ucwa/…`).
async fn stats_url(client: &Client) -> String {
    let anon = text(client, "anon-applications").await;
    let base = anon
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("anonApplications {anon:?}"));
    format!("http://{base}/_emulator/stats")
}

/// Waits until the page is connected with another session than `before`;
/// a moment of `expired` or `renewing` is allowed (the old token did expire
/// while the page was frozen), `refused` and `error` are not.
async fn wait_for_new_session(client: &Client, before: &Shown, timeout: Duration) -> Shown {
    let start = Instant::now();
    loop {
        let shown = Shown::read(client).await;
        assert!(
            !["refused", "error"].contains(&shown.state.as_str()),
            "waiting for a new session, the page reached {:?}: {}",
            shown.state,
            describe(client).await
        );
        if shown.state == "connected" && shown.session_id != before.session_id {
            return shown;
        }
        assert!(
            start.elapsed() < timeout,
            "no new session within {timeout:?}: {}",
            describe(client).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn skewed_and_frozen(client: Client, urls: Urls, driver_url: String) {
    cdp(
        &client,
        &driver_url,
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": SKEW_SCRIPT }),
    )
    .await;
    client.goto(&urls.allowed).await.unwrap();
    wait_for_state(
        &client,
        "connected",
        &["refused", "error", "expired"],
        || async { true },
    )
    .await;
    // The page's clock is six hours ahead of the machine's.
    let skew = client
        .execute(
            "return Date.now() - (performance.timeOrigin + performance.now());",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        (skew - SKEW_MS as f64).abs() < 60_000.0,
        "the page's clock is off by {skew} ms, not six hours"
    );
    let stats = stats_url(&client).await;
    let first = Shown::read(&client).await;
    assert_eq!(minted(&stats).await, 1, "the first token: one mint");

    // Frozen past the token's life: nothing runs, nothing is minted.
    cdp(
        &client,
        &driver_url,
        "Page.setWebLifecycleState",
        json!({ "state": "frozen" }),
    )
    .await;
    let frozen_at = Instant::now();
    while frozen_at.elapsed() < FROZEN {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(minted(&stats).await, 1, "a frozen page minted");
    }
    cdp(
        &client,
        &driver_url,
        "Page.setWebLifecycleState",
        json!({ "state": "active" }),
    )
    .await;
    // Chromium freezes hidden pages only: resumed, the page is still
    // hidden, and a hidden page renews nothing (its token has expired).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let visibility = client
        .execute("return document.visibilityState;", vec![])
        .await
        .unwrap();
    assert_eq!(visibility, "hidden");
    assert_eq!(minted(&stats).await, 1, "a hidden page minted");

    // The visitor comes back to the tab (another tab opened and closed).
    let shown = Instant::now();
    let original = client.window().await.unwrap();
    let tab = client.new_window(true).await.unwrap();
    client.switch_to_window(tab.handle).await.unwrap();
    client.close_window().await.unwrap();
    client.switch_to_window(original).await.unwrap();

    // Shown again: the token expired meanwhile, so the client renews at
    // once, and the page connects with it (its anonymous discovery, with
    // the new token, is accepted by the emulator: the token is valid).
    let renewed = wait_for_new_session(&client, &first, Duration::from_secs(10)).await;
    let after = shown.elapsed();
    println!(
        "shown after {FROZEN:?} frozen with the clock {} h wrong: a new session after {:.1} s",
        SKEW_MS / 3_600_000,
        after.as_secs_f32()
    );
    // At once: on the page's visibilitychange, not on the client's 5 s
    // periodic check.
    assert!(
        after < Duration::from_secs(3),
        "the renewal waited {after:?}: it was not at once"
    );
    assert_eq!(minted(&stats).await, 2, "one mint for the missed renewal");

    // Then the next renewal after renewAfter, and no other mint.
    let next =
        wait_for_new_session(&client, &renewed, Duration::from_secs(RENEW_AFTER_S + 10)).await;
    assert_eq!(minted(&stats).await, 3, "one mint per renewal");
    assert_ne!(next.session_id, first.session_id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(minted(&stats).await, 3, "a mint no renewal needed");
    save_screenshot(&client, "demo-resumed.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_wrong_clock_frozen_past_expiry_keeps_a_valid_token() {
    let Some(browser) = Browser::start("browser-clock", TOKEN_LIFETIME_S).await else {
        return;
    };
    browser
        .run(Duration::from_secs(180), skewed_and_frozen)
        .await;
}
