//! The demo site in a real browser: `ta-bootstrap serve --emulator` (the
//! emulator, the widget-token service and two demo sites in one process),
//! driven by headless Chromium over WebDriver (chromedriver).
//!
//! On the allowed origin the page loads the widget's token client from the
//! service (`/v1/client.js`), gets a token, performs the chat client's
//! anonymous discovery against the emulator's widget side (CORS, plain http
//! on loopback: the browser keeps its normal certificate checks and is
//! never asked to trust the development CA) and shows a connected session.
//! The emulator's tokens live 20 s here (`--emulator-token-lifetime 20`),
//! so the client renews by itself, without a click, after the service's
//! `renewAfter` (15 s, three quarters of the life); it also renews on
//! demand. On the origin that is not on the allowlist the page shows the
//! refusal, which the service's own answer to that origin confirms.
//! Screenshots go to `target/browser/`.
//!
//! The test needs Chromium and chromedriver (Debian: `apt-get install
//! chromium chromium-driver`, as `.ci/run` does) and fails without them.
//! On a developer's machine `TA_SKIP_BROWSER_TEST=1` skips it; in CI (the
//! `CI` environment variable set, and not to `false` or `0`) that variable
//! is refused and the test fails. Everything listens on loopback; nothing
//! reaches the internet.
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
use fantoccini::{Client, Locator};

/// The emulator's widget-token lifetime for this test
/// (`--emulator-token-lifetime`, at least 15 s).
const TOKEN_LIFETIME_S: u64 = 20;
/// When the widget renews by itself, after each token: the service's
/// `renewAfter`, three quarters of the life by default.
const AUTO_RENEW_AFTER_S: u64 = TOKEN_LIFETIME_S * 3 / 4;

#[test]
fn the_skip_variable_is_refused_in_ci() {
    assert_eq!(skip_browser_test(None, None), Ok(false));
    assert_eq!(skip_browser_test(None, Some("true")), Ok(false));
    assert_eq!(skip_browser_test(Some("0"), None), Ok(false));
    assert_eq!(skip_browser_test(Some("1"), None), Ok(true));
    for ci in ["", "  ", "0", "false", "FALSE", "False"] {
        assert_eq!(
            skip_browser_test(Some("1"), Some(ci)),
            Ok(true),
            "CI={ci:?}"
        );
    }
    for ci in ["1", "true", "yes", "woodpecker"] {
        let refused = skip_browser_test(Some("1"), Some(ci)).unwrap_err();
        assert!(
            refused.contains("cannot be skipped in CI"),
            "CI={ci:?}: {refused}"
        );
    }
}

/// What the service answers the origin that is not on the allowlist, asked
/// directly: no CORS headers (so the page cannot read the answer), and a
/// 403 `origin_not_allowed` with the request's id. Returns that id.
fn assert_service_refuses(urls: &Urls) -> String {
    let allowed = urls.allowed.trim_end_matches('/');
    let refused = urls.refused.trim_end_matches('/');
    // The browser's preflight: answered with CORS headers for the allowed
    // origin only.
    let preflight = |origin: &str| {
        http_request(
            "OPTIONS",
            &urls.token,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            "",
        )
        .0
    };
    let head = preflight(allowed);
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some(allowed),
        "{head}"
    );
    let head = preflight(refused);
    assert_eq!(header(&head, "access-control-allow-origin"), None, "{head}");
    // The request itself (the browser does not send it after that
    // preflight).
    let (head, body) = http_request(
        "POST",
        &urls.token,
        &[("Origin", refused), ("Content-Type", "application/json")],
        "{}",
    );
    assert!(head.starts_with("http/1.1 403"), "{head}\n{body}");
    assert_eq!(header(&head, "access-control-allow-origin"), None, "{head}");
    let id = header(&head, "x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id: {head}"))
        .to_owned();
    assert_request_uuid(&id);
    let answer: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(answer["error"], "origin_not_allowed", "{answer}");
    assert_eq!(answer["requestId"], id.as_str(), "{answer}");
    id
}

/// The page's security headers, as the binary serves them.
fn assert_page_headers(url: &str, token_url: &str) {
    let head = http_head(url);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ncache-control: no-store"), "{head}");
    let csp = head
        .lines()
        .find_map(|line| line.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no Content-Security-Policy: {head}"));
    let service = token_url.trim_end_matches("/v1/widget-token");
    // Scripts: the page's own and the client module from the service;
    // connections: the service and the emulator's widget side, no more.
    assert!(
        csp.contains(&format!("script-src 'self' {service};")),
        "{csp}"
    );
    let connect = csp
        .split(';')
        .find_map(|d| d.trim().strip_prefix("connect-src "))
        .unwrap_or_else(|| panic!("no connect-src: {csp}"));
    let sources: Vec<&str> = connect.split_whitespace().collect();
    assert_eq!(sources.len(), 2, "{csp}");
    assert_eq!(sources[0], service, "{csp}");
    assert!(
        sources[1].starts_with("http://127.0.0.1:") && sources[1] != service,
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains('*'),
        "{csp}"
    );
}

async fn allowed_origin(client: &Client, urls: &Urls) {
    assert_page_headers(&urls.allowed, &urls.token);
    client.goto(&urls.allowed).await.unwrap();
    let origin = urls.allowed.trim_end_matches('/');
    assert_eq!(text(client, "origin").await, origin);
    assert!(!text(client, "note").await.is_empty(), "no note shown");
    assert_eq!(text(client, "token-url").await, urls.token);

    wait_for_state(
        client,
        "connected",
        &["refused", "error", "expired"],
        || async { true },
    )
    .await;

    // The chat client's anonymous discovery found its link on the
    // emulator's plain-http widget side.
    let anon = text(client, "anon-applications").await;
    assert!(
        anon.starts_with("http://127.0.0.1:") && anon.ends_with("/applications"),
        "anonApplications: {anon:?}"
    );
    // The token client came from the service, as `serve` serves it.
    let client_js = format!(
        "{}/v1/client.js",
        urls.token.trim_end_matches("/v1/widget-token")
    );
    let loaded = client
        .execute(
            "return performance.getEntriesByType('resource').map((e) => e.name);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        loaded
            .as_array()
            .unwrap()
            .iter()
            .any(|name| name.as_str() == Some(client_js.as_str())),
        "the page did not load {client_js}: {loaded}"
    );
    // The token is summarized, never shown.
    let summary = text(client, "token-summary").await;
    assert!(
        summary.starts_with("psat=") && summary.contains('…'),
        "{summary}"
    );
    assert_no_token(&client.source().await.unwrap());

    // The first token does not count as a renewal.
    assert_eq!(text(client, "renewals").await, "0");

    // The countdown runs (the emulator's tokens live 20 s here).
    let first = text(client, "countdown").await;
    let first_s = seconds(&first).unwrap_or_else(|| panic!("countdown {first:?}"));
    assert!(
        (1..=TOKEN_LIFETIME_S).contains(&first_s),
        "countdown {first:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = text(client, "countdown").await;
        if seconds(&now).is_some_and(|s| s < first_s) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the countdown stays at {now:?} (was {first:?})"
        );
    }
    assert!(
        text(client, "next-renewal").await.starts_with("in "),
        "no renewal scheduled"
    );

    // The widget renews by itself before the token expires, 15 s after it
    // (nothing is clicked here): a new session, connected again, with a
    // countdown back near the full life.
    let before = Shown::read(client).await;
    assert_eq!(before.state, "connected", "{before:?}");
    let auto = wait_for_renewal(
        client,
        &before,
        Duration::from_secs(AUTO_RENEW_AFTER_S + 15),
    )
    .await;
    println!(
        "automatic renewal after {:.1} s of waiting, {} s left on the old token, countdown then {:?}",
        auto.after.as_secs_f32(),
        auto.last_left_s,
        auto.shown.countdown
    );
    // The countdown is the page's display, ticking once a second apart from
    // the client's timer: it may lag the renewal by a tick or so.
    assert!(
        (1..=TOKEN_LIFETIME_S - AUTO_RENEW_AFTER_S + 2).contains(&auto.last_left_s),
        "the widget renewed with {} s left on a {TOKEN_LIFETIME_S} s token, not about \
         {AUTO_RENEW_AFTER_S} s before it expired",
        auto.last_left_s
    );
    auto.shown
        .assert_fresh(before.renewals + 1, TOKEN_LIFETIME_S, AUTO_RENEW_AFTER_S);
    assert_ne!(auto.shown.expires_at, before.expires_at);

    // Renew now, right after the automatic renewal (the next one is about
    // 15 s away, so the two cannot race): a new session again.
    let next = text(client, "next-renewal").await;
    assert!(
        next.strip_prefix("in ")
            .and_then(seconds)
            .is_some_and(|s| s >= 3),
        "the next automatic renewal is {next:?}: too close for a manual one"
    );
    let before = auto.shown;
    client
        .find(Locator::Id("renew"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let manual = wait_for_renewal(client, &before, STATE_TIMEOUT).await;
    manual
        .shown
        .assert_fresh(before.renewals + 1, TOKEN_LIFETIME_S, AUTO_RENEW_AFTER_S);
    assert_no_token(&client.source().await.unwrap());
    save_screenshot(client, "demo-widget.png").await;
}

async fn refused_origin(client: &Client, urls: &Urls) {
    client.goto(&urls.refused).await.unwrap();
    assert_eq!(
        text(client, "origin").await,
        urls.refused.trim_end_matches('/')
    );
    wait_for_state(
        client,
        "refused",
        &["connected", "error", "expired"],
        || async { true },
    )
    .await;
    // The service sends CORS headers to allowlisted origins only, so the
    // browser hides its answer: the page infers the code and says that it
    // cannot read the request id. Asked directly, the service answers that
    // origin 403 origin_not_allowed, with a request id.
    let service_id = assert_service_refuses(urls);
    let code = text(client, "error-code").await;
    assert_eq!(code, "origin_not_allowed (inferred)");
    let request_id = text(client, "request-id").await;
    assert_eq!(request_id, "not readable (no CORS headers)");
    let problem = text(client, "problem-text").await;
    assert!(problem.contains("not on the allowlist"), "{problem}");
    println!(
        "refused origin: the page shows error code {code:?}, request id {request_id:?}; \
         the service answers it 403 origin_not_allowed, request id {service_id}"
    );
    // It stopped there: no session.
    assert!(
        !client
            .find(Locator::Id("session"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "a session is shown on the refused origin"
    );
    save_screenshot(client, "demo-refused.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_widget_in_headless_chromium() {
    let Some(browser) = Browser::start("browser-test", TOKEN_LIFETIME_S).await else {
        return;
    };
    browser
        .run(Duration::from_secs(180), |client, urls, _| async move {
            allowed_origin(&client, &urls).await;
            refused_origin(&client, &urls).await;
        })
        .await;
}
