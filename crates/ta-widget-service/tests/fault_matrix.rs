//! The fault matrix: each fault the emulator injects, at each step of a
//! widget token's way upstream, once (a transient fault) and always (an
//! outage), against a cold service; what the widget receives, what the
//! service logs for that request, and how many upstream requests the answer
//! cost. The table is `docs/fault-matrix.md`; this test regenerates it and
//! fails on any difference (`UPDATE_FAULT_MATRIX=1` rewrites it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "matrix/common.rs"]
mod common;
#[path = "service/harness.rs"]
mod harness;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use common::{Captured, compare_or_update, escape, is_warning, line, upstream_faults};
use harness::*;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/fault-matrix.md");
const DEADLINE: Duration = Duration::from_secs(6);
const LATE: Duration = Duration::from_secs(8);

/// The steps of a cold mint, in the order they are taken.
const STEPS: [(Route, &str); 5] = [
    (Route::Discovery, "discovery"),
    (Route::AadToken, "AAD token"),
    (Route::Applications, "applications"),
    (Route::Application, "application (capabilities)"),
    (Route::Mint, "mint"),
];

fn faults(step: Route) -> Vec<(&'static str, FaultKind)> {
    let mut faults = upstream_faults();
    faults.extend([
        ("cut mid body", FaultKind::CloseMidBody),
        ("200 with broken JSON", FaultKind::MalformedBody),
        (
            "8 s late (deadline 6 s)",
            FaultKind::Latency {
                millis: u64::try_from(LATE.as_millis()).unwrap(),
            },
        ),
        (
            "307 to another host",
            FaultKind::Redirect {
                host: "127.0.0.2".to_owned(),
            },
        ),
        ("AAD tokens revoked", FaultKind::RevokeAadTokens),
        ("consent revoked", FaultKind::RevokeConsent),
    ]);
    let link = match step {
        Route::Discovery => Some("applications"),
        Route::Application => Some("anonApplicationTokens"),
        _ => None,
    };
    if let Some(rel) = link {
        faults.push((
            if rel == "applications" {
                "link `applications` missing"
            } else {
                "link `anonApplicationTokens` missing"
            },
            FaultKind::MissingLink {
                rel: rel.to_owned(),
            },
        ));
    }
    faults
}

/// What one widget request got.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    answer: String,
    upstream: u64,
    log: Vec<String>,
}

/// The warnings and errors logged under the request `id`.
fn logged(captured: &Captured, id: &str) -> Vec<String> {
    captured
        .events()
        .iter()
        .filter(|event| event["span"]["request_id"] == id && is_warning(event))
        .map(line)
        .collect()
}

async fn cell(captured: Captured, step: Route, fault: FaultKind, trigger: Trigger) -> Outcome {
    let started = std::time::Instant::now();
    let late = matches!(fault, FaultKind::Latency { millis } if millis > 0);
    let s = service_with(
        EmulatorConfig::default().with_fault(FaultRule::on(step, fault, trigger)),
        |c| c.upstream_deadline = DEADLINE,
    )
    .await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "{}",
    )
    .await;
    let body = json(&response);
    let mut answer = response.status().as_u16().to_string();
    match body["error"].as_str() {
        Some(code) => {
            let _ = write!(answer, " `{code}`");
        }
        None if body["token"].is_string() => answer.push_str(" token"),
        None => answer.push_str(" ?"),
    }
    if let Some(after) = header(&response, "retry-after") {
        let _ = write!(answer, ", `Retry-After: {after}`");
    }
    // Requests still on their way (a late answer) are counted once they end.
    if late {
        tokio::time::sleep(LATE.saturating_sub(started.elapsed()) + Duration::from_millis(500))
            .await;
    }
    let mut upstream = s.setup.emulator.stats().total_requests();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = s.setup.emulator.stats().total_requests();
        if now == upstream {
            break;
        }
        upstream = now;
    }
    let id = header(&response, "x-request-id")
        .unwrap_or_default()
        .to_owned();
    Outcome {
        answer,
        upstream,
        log: logged(&captured, &id),
    }
}

async fn matrix(captured: &Captured) -> String {
    let mut cells = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    for (step, _) in STEPS {
        for (i, (_, fault)) in faults(step).into_iter().enumerate() {
            for (t, trigger) in [Trigger::Once, Trigger::Always].into_iter().enumerate() {
                let (captured, limit, fault) =
                    (captured.clone(), Arc::clone(&limit), fault.clone());
                cells.spawn(async move {
                    let _permit = limit.acquire_owned().await.unwrap();
                    (
                        (step as usize, i, t),
                        cell(captured, step, fault, trigger).await,
                    )
                });
            }
        }
    }
    let mut outcomes = std::collections::BTreeMap::new();
    while let Some(done) = cells.join_next().await {
        let (key, outcome) = done.unwrap();
        outcomes.insert(key, outcome);
    }
    let mut doc = String::from(HEADER);
    for (step, name) in STEPS {
        let _ = writeln!(doc, "\n## {name}\n");
        doc.push_str("| Fault | Once: the widget gets | Upstream requests | Always: the widget gets | Upstream requests | Logged for the request (always) |\n|---|---|---|---|---|---|\n");
        for (i, (label, _)) in faults(step).into_iter().enumerate() {
            let once = &outcomes[&(step as usize, i, 0)];
            let always = &outcomes[&(step as usize, i, 1)];
            let log = if always.log.is_empty() {
                "nothing".to_owned()
            } else {
                always
                    .log
                    .iter()
                    .map(|l| format!("`{}`", escape(l)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let _ = writeln!(
                doc,
                "| {label} | {} | {} | {} | {} | {log} |",
                escape(&once.answer),
                once.upstream,
                escape(&always.answer),
                always.upstream,
            );
        }
    }
    doc
}

const HEADER: &str = "# Fault matrix

What a widget receives from `serve` when the API or Azure AD fails at one
step of a cold mint (no AAD token, no capabilities cached yet), what the
service logs under that request's id (warnings and errors; ports, ids and
the OS's words for a broken connection replaced), and how many requests the emulator saw for that one widget
request, retries included. *Once* is a transient fault (the step's first
request only), *always* an outage of that step; the first row (a fault of no
effect) is what a cold mint costs without one. The service's upstream
deadline is 6 s here (25 s by default). What is retried, and how, is
`RetryPolicy`'s rustdoc in `ta-protocol`: 429, 502, 503, 504 and resets, up
to 4 attempts, not a 500 and not an answer that does not parse.

Generated by `crates/ta-widget-service/tests/fault_matrix.rs`, which fails when
this file differs from what the code does; `UPDATE_FAULT_MATRIX=1 cargo test
-p ta-widget-service --test fault_matrix` rewrites it. The chat's faults are
in [fault-matrix-chat.md](fault-matrix-chat.md).
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_matrix_in_the_docs_is_what_the_code_does() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.subscriber()).unwrap();
    compare_or_update(GOLDEN, &matrix(&captured).await);
}
