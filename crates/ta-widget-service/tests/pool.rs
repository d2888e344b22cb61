//! The pool of pre-minted tokens over real HTTP, in front of the emulator
//! over TLS: each pooled token goes to one widget of its own origin, with
//! its real remaining life; a burst past the pool gets direct mints; a
//! reload, an origin's removal and the maximum age throw tokens away; a
//! busy API's `Retry-After` pauses the refills.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_widget_service::PoolConfig;
use ta_widget_service::mint_check::{MintRefusal, MintRequest};

#[path = "service/harness.rs"]
mod harness;

use harness::*;

const CONTOSO: &str = "https://contoso.com";
const LITWARE: &str = "https://litware.com:8443";

fn pool(size: usize, max_age: u64, floor: usize) -> PoolConfig {
    PoolConfig::new(size, Duration::from_secs(max_age))
        .unwrap()
        .with_floor(floor)
        .unwrap()
}

async fn pooled(config: EmulatorConfig, pool: PoolConfig) -> Service {
    service_with(config, move |c| c.pool = pool).await
}

/// An emulator whose every mint answers `status`, with `Retry-After:
/// retry_after` seconds if given.
fn failing_mints(status: u16, retry_after: Option<u64>) -> EmulatorConfig {
    EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status,
            retry_after_secs: retry_after,
        },
        Trigger::Always,
    ))
}

/// Runs the refill loop until the handle is aborted.
fn refill(s: &Service) -> tokio::task::JoinHandle<()> {
    let service = s.service.clone();
    tokio::spawn(async move { service.keep_pool().await })
}

/// Waits until `origin`'s depth is `depth`.
async fn depth_reaches(s: &Service, origin: &str, depth: u64) {
    let line = format!("ta_pool_depth{{origin=\"{origin}\"}}");
    let started = Instant::now();
    while metric(s, &line) != depth {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{origin} never reached {depth}:\n{}",
            s.service.metrics().encode()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `n` widget-token requests at once, from `origins` in turn: each origin
/// with its answer.
async fn at_once(
    s: &Service,
    origins: &[&'static str],
    n: usize,
) -> Vec<(&'static str, http::Response<bytes::Bytes>)> {
    let mut widgets = tokio::task::JoinSet::new();
    for i in 0..n {
        let origin = origins[i % origins.len()];
        let client = s.client.clone();
        let addr = s.addr;
        widgets.spawn(async move {
            let request = http::Request::post(format!("http://{addr}/v1/widget-token"))
                .header("origin", origin)
                .body(bytes::Bytes::from_static(b"{}"))
                .unwrap();
            let response = ta_protocol::Transport::send(&client, request)
                .await
                .unwrap();
            (origin, response)
        });
    }
    widgets.join_all().await
}

/// The origin a token's claims allow.
fn allowed_origin(token: &str) -> String {
    let jwt = token.strip_prefix("psat=").unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["ao"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pooled_token_goes_to_one_widget_of_its_own_origin_and_a_burst_gets_direct_mints() {
    let s = pooled(EmulatorConfig::default(), pool(20, 300, 3)).await;
    let loop_task = refill(&s);
    // At zero demand: the floor, for each origin, and nothing more.
    depth_reaches(&s, CONTOSO, 3).await;
    depth_reaches(&s, LITWARE, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.setup.emulator.stats().psat_tokens_minted, 6);
    // A burst of 60 widgets, far past the pool: every one gets a token.
    let mut sessions = HashSet::new();
    let mut tokens = HashSet::new();
    for (origin, response) in at_once(&s, &[CONTOSO, LITWARE], 60).await {
        assert_eq!(response.status(), 200, "{:?}", response.body());
        let body = json(&response);
        let token = body["token"].as_str().unwrap();
        assert_eq!(allowed_origin(token), origin, "its own origin");
        assert!(tokens.insert(token.to_owned()), "a token given twice");
        assert!(
            sessions.insert(body["applicationSessionId"].as_str().unwrap().to_owned()),
            "a session id given twice"
        );
    }
    let hits = metric(&s, "ta_pool_hits_total");
    let misses = metric(&s, "ta_pool_misses_total");
    assert_eq!(hits + misses, 60);
    assert!(hits >= 6, "the pooled six were used: {hits}");
    assert!(misses > 0, "the burst was larger than the pool");
    assert_eq!(metric(&s, "ta_widget_tokens_served_total"), 60);
    // The demand raised the target: the pool refills toward the size.
    depth_reaches(&s, CONTOSO, 20).await;
    depth_reaches(&s, LITWARE, 20).await;
    let stats = s.setup.emulator.stats();
    // Every token minted went to a widget or is in the pool: the direct
    // mints, and the refills (none thrown away).
    let refills = metric(&s, "ta_pool_refills_total{outcome=\"ok\"}");
    assert_eq!(stats.psat_tokens_minted, misses + refills);
    assert_eq!(refills, hits + 40);
    // Over upstream, discovery and capabilities were fetched once.
    assert_eq!(stats.requests(Route::Discovery), 1);
    assert_eq!(stats.requests(Route::Application), 1);
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_token_s_answer_tells_its_real_remaining_life() {
    // Tokens of 40 s are pooled for half of it: 20 s.
    let s = pooled(
        EmulatorConfig::default().with_psat_lifetime(Duration::from_secs(40)),
        pool(5, 300, 1),
    )
    .await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 1).await;
    loop_task.abort();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let body = json(&mint_for(&s, CONTOSO).await);
    assert_eq!(metric(&s, "ta_pool_hits_total"), 1);
    let expires_in = body["expiresIn"].as_u64().unwrap();
    assert!((30..=38).contains(&expires_in), "{expires_in}");
    let renew_after = body["renewAfter"].as_u64().unwrap();
    assert_eq!(renew_after, expires_in * 3 / 4);
    // A direct mint, for comparison: the whole life.
    let body = json(&mint_for(&s, CONTOSO).await);
    assert_eq!(metric(&s, "ta_pool_misses_total"), 1);
    assert!(body["expiresIn"].as_u64().unwrap() >= 39);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_an_origin_s_removal_and_the_age_throw_pooled_tokens_away() {
    let s = pooled(EmulatorConfig::default(), pool(5, 1, 2)).await;
    // The maximum age: 1 s. Stopped loop, so nothing refills.
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 2).await;
    loop_task.abort();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    mint_for(&s, CONTOSO).await;
    assert_eq!(metric(&s, "ta_pool_hits_total"), 0, "stale: not given");
    assert_eq!(metric(&s, "ta_pool_discarded_total{reason=\"age\"}"), 2);

    // A reload: every token pooled, and none handed out after.
    let s = pooled(EmulatorConfig::default(), pool(5, 300, 2)).await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 2).await;
    depth_reaches(&s, LITWARE, 2).await;
    loop_task.abort();
    s.service.empty_pool();
    assert_eq!(metric(&s, "ta_pool_discarded_total{reason=\"reload\"}"), 4);
    depth_reaches(&s, CONTOSO, 0).await;
    mint_for(&s, CONTOSO).await;
    mint_for(&s, LITWARE).await;
    assert_eq!(metric(&s, "ta_pool_hits_total"), 0);
    assert_eq!(metric(&s, "ta_pool_misses_total"), 2);

    // An origin leaves the allowlist: its tokens go, and its gauge.
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 2).await;
    depth_reaches(&s, LITWARE, 2).await;
    let litware_only = s
        .service
        .allowed_origins()
        .into_iter()
        .filter(|o| o.as_str() == LITWARE)
        .collect();
    s.service.set_allowlist(litware_only).unwrap();
    assert_eq!(
        metric(&s, "ta_pool_discarded_total{reason=\"origin_removed\"}"),
        2
    );
    let text = s.service.metrics().encode();
    assert!(!text.contains(&format!("origin=\"{CONTOSO}\"")), "{text}");
    let refused = call(&s, "POST", "/v1/widget-token", &[("origin", CONTOSO)], "{}").await;
    assert_eq!(refused.status(), 403);
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_api_s_retry_after_pauses_the_refills() {
    // The API asks for 30 s: longer than the retry budget, so the mint
    // gives up at once, and the pool must not come back before.
    let s = pooled(failing_mints(503, Some(30)), pool(5, 300, 1)).await;
    let loop_task = refill(&s);
    let started = Instant::now();
    // One refill for each origin's floor.
    while metric(&s, "ta_pool_refills_total{outcome=\"error\"}") < 2 {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A backoff alone (1 s, then 2 s) would have tried twice more by now.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(s.setup.emulator.stats().requests(Route::Mint), 2);
    assert_eq!(metric(&s, "ta_pool_refills_total{outcome=\"error\"}"), 2);
    // A widget meanwhile is a miss, and its direct mint's failure is its
    // own answer, as without a pool.
    let response = call(&s, "POST", "/v1/widget-token", &[("origin", CONTOSO)], "{}").await;
    assert_eq!(response.status(), 503, "{:?}", response.body());
    // A reload starts the backoff over, but what the API asked for holds.
    s.service.empty_pool();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        metric(&s, "ta_pool_refills_total{outcome=\"error\"}"),
        2,
        "a reload cut the API's Retry-After short"
    );
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_lifts_the_refills_backoff() {
    // A failing API that asks for no pause: the refills back off, 1 s,
    // 2 s, then 4 s.
    let s = pooled(failing_mints(500, None), pool(5, 300, 1)).await;
    let errors = || metric(&s, "ta_pool_refills_total{outcome=\"error\"}");
    let loop_task = refill(&s);
    let started = Instant::now();
    // Three rounds of one refill per origin's floor.
    while errors() < 6 {
        assert!(started.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Backed off 4 s now; a reload tries again at once.
    let reloaded = Instant::now();
    s.service.empty_pool();
    while errors() < 8 {
        assert!(
            reloaded.elapsed() < Duration::from_secs(3),
            "the backoff held after a reload"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_loop_stopped_mid_mint_gives_its_places_back() {
    // The first six mints (each origin's floor of 3) take 3 s.
    let s = pooled(
        EmulatorConfig::default().with_fault(FaultRule::on(
            Route::Mint,
            FaultKind::Latency { millis: 3_000 },
            Trigger::FirstN(6),
        )),
        pool(5, 300, 3),
    )
    .await;
    let loop_task = refill(&s);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        s.setup.emulator.stats().psat_tokens_minted,
        0,
        "still minting"
    );
    // Stopped with its six refills under way, then run again: the pool
    // fills to the floor (the places of the dropped refills are free).
    loop_task.abort();
    let _ = loop_task.await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 3).await;
    depth_reaches(&s, LITWARE, 3).await;
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fewer_than_two_mints_in_flight_there_is_no_pool() {
    let s = service_with(EmulatorConfig::default(), |c| {
        c.pool = pool(5, 300, 2);
        c.max_mints_in_flight = 1;
    })
    .await;
    assert!(!s.service.pool_config().is_on(), "no pool: it says so");
    // The loop returns at once; a widget gets a direct mint, no pool miss.
    tokio::time::timeout(Duration::from_secs(1), s.service.keep_pool())
        .await
        .unwrap();
    mint_for(&s, CONTOSO).await;
    assert_eq!(metric(&s, "ta_pool_misses_total"), 0);
    assert_eq!(s.setup.emulator.stats().psat_tokens_minted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_s_settings_change_while_it_runs_but_not_on_or_off() {
    let s = pooled(EmulatorConfig::default(), pool(5, 300, 1)).await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 1).await;
    depth_reaches(&s, LITWARE, 1).await;
    s.service.set_pool_config(pool(5, 300, 3)).unwrap();
    assert_eq!(s.service.pool_config().floor(), 3);
    assert_eq!(metric(&s, "ta_pool_discarded_total{reason=\"reload\"}"), 2);
    depth_reaches(&s, CONTOSO, 3).await;
    depth_reaches(&s, LITWARE, 3).await;
    // Off, or on for a service without a pool: refused, nothing changes.
    assert!(s.service.set_pool_config(PoolConfig::off()).is_err());
    assert_eq!(s.service.pool_config().floor(), 3);
    let plain = service_with(EmulatorConfig::default(), |_| {}).await;
    assert!(plain.service.set_pool_config(pool(5, 300, 1)).is_err());
    assert!(!plain.service.pool_config().is_on());
    loop_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_token_is_given_only_after_the_checks_a_direct_mint_passes() {
    // The operator's check wants a pass in the body; one client may ask
    // three times a minute.
    let check = |request: &MintRequest<'_>| {
        if request.body == b"pass" {
            Ok(())
        } else {
            Err(MintRefusal::forbidden("pass_required", "no pass"))
        }
    };
    let s = service_built(
        EmulatorConfig::default(),
        |c| {
            c.pool = pool(5, 300, 4);
            c.per_client_per_minute = 3;
        },
        |service| service.with_mint_check(check),
    )
    .await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 4).await;
    loop_task.abort();
    let ask =
        |body: &'static str| call(&s, "POST", "/v1/widget-token", &[("origin", CONTOSO)], body);
    let refused = ask("{}").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(json(&refused)["error"], "pass_required");
    assert_eq!(metric(&s, "ta_pool_hits_total"), 0, "refused: not given");
    assert_eq!(ask("pass").await.status(), 200);
    assert_eq!(ask("pass").await.status(), 200);
    assert_eq!(metric(&s, "ta_pool_hits_total"), 2);
    // The fourth request of the minute: refused, though two are pooled.
    let limited = ask("pass").await;
    assert_eq!(limited.status(), 429, "{:?}", limited.body());
    assert_eq!(metric(&s, "ta_pool_hits_total"), 2);
    assert_eq!(
        metric(&s, &format!("ta_pool_depth{{origin=\"{CONTOSO}\"}}")),
        2
    );

    // The global budget: one a second, and a pooled token is no way round.
    // Six widgets at once: whatever the machine's pace, each one refused
    // took no pooled token.
    let s = service_with(EmulatorConfig::default(), |c| {
        c.pool = pool(5, 300, 2);
        c.global_per_second = 1;
    })
    .await;
    let loop_task = refill(&s);
    depth_reaches(&s, CONTOSO, 2).await;
    loop_task.abort();
    let answers = at_once(&s, &[CONTOSO], 6).await;
    let count = |status: u16| answers.iter().filter(|(_, a)| a.status() == status).count() as u64;
    let (served, limited) = (count(200), count(429));
    assert_eq!(served + limited, 6, "{answers:?}");
    assert!(limited >= 1, "the budget let six through at once");
    assert_eq!(
        metric(&s, "ta_rate_limited_total{scope=\"global\"}"),
        limited
    );
    let hits = metric(&s, "ta_pool_hits_total");
    assert_eq!(
        hits,
        served.min(2),
        "each widget served took a pooled token first"
    );
    assert_eq!(
        metric(&s, &format!("ta_pool_depth{{origin=\"{CONTOSO}\"}}")),
        2 - hits
    );
}
