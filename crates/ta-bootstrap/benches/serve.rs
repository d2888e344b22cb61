//! `serve` in front of the emulator against the emulator's mint alone, under
//! the same concurrent load: tokens per second of both and their ratio, the
//! latency `serve` adds, upstream requests per token, AAD requests in all.
//!
//! Run with `cargo xtask bench serve`. Targets: ratio ≥ 0.9, one upstream
//! request per widget token once warm, one AAD request for the whole run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ta_bootstrap::{ServiceConfig, TokenProvider as _, WidgetService};
use ta_emulator::{EmulatorConfig, Route};
use ta_protocol::{OriginPolicy, Transport};

const CONCURRENT: usize = 64;

struct Bench {
    setup: common::Setup,
    serve_url: String,
    mint_url: String,
    aad_token: String,
    client: ta_hyper::HyperTransport,
    session: AtomicU64,
}

impl Bench {
    async fn via_serve(&self) -> Duration {
        let request = http::Request::post(&self.serve_url)
            .header("origin", "https://contoso.com")
            .body(Bytes::new())
            .unwrap();
        let started = Instant::now();
        let response = self.client.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        started.elapsed()
    }

    async fn direct(&self) -> Duration {
        let id = self.session.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"{{"applicationSessionId":"bench-{id}","allowedOrigins":"https://contoso.com"}}"#
        );
        let request = http::Request::post(&self.mint_url)
            .header("authorization", format!("Bearer {}", self.aad_token))
            .header("content-type", "application/json")
            .body(Bytes::from(body))
            .unwrap();
        let started = Instant::now();
        let response = self.setup.transport.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        started.elapsed()
    }
}

async fn batch(bench: &Arc<Bench>, serve: bool, latencies: Option<&mut Vec<Duration>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let bench = Arc::clone(bench);
        tasks.spawn(async move {
            if serve {
                bench.via_serve().await
            } else {
                bench.direct().await
            }
        });
    }
    let mut all = Vec::with_capacity(CONCURRENT);
    while let Some(latency) = tasks.join_next().await {
        all.push(latency.unwrap());
    }
    if let Some(latencies) = latencies {
        latencies.extend(all);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

async fn start() -> Arc<Bench> {
    let setup = common::setup(EmulatorConfig::default()).await;
    setup.bootstrapper.warm_up().await.unwrap();
    let allowlist =
        WidgetService::allowlist(&["https://contoso.com".to_owned()], OriginPolicy::default())
            .unwrap();
    let mut config = ServiceConfig::new(allowlist);
    config.per_client_per_minute = u32::MAX;
    config.global_per_second = u32::MAX;
    let service = WidgetService::new(
        setup.bootstrapper.clone(),
        config,
        Arc::clone(&setup.metrics),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = service.router();
    // The accept loop `serve` runs.
    tokio::spawn(ta_bootstrap::server::serve(
        listener,
        router,
        None,
        ta_bootstrap::server::ServerLimits::default(),
        std::future::pending(),
    ));
    let caps = setup.bootstrapper.capabilities().await.unwrap();
    let mint_url = caps.anon_application_tokens.clone().unwrap().to_string();
    let aad_token = setup
        .tokens
        .cached(setup.bootstrapper.config().audience())
        .unwrap()
        .expose()
        .to_owned();
    Arc::new(Bench {
        setup,
        serve_url: format!("http://{addr}/v1/widget-token"),
        mint_url,
        aad_token,
        client: ta_hyper::HyperTransport::builder()
            .http2(false)
            .build()
            .unwrap(),
        session: AtomicU64::new(0),
    })
}

fn serve_against_direct(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = runtime.block_on(start());

    let mut group = c.benchmark_group("widget-tokens");
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(20);
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function("serve/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    batch(&bench, true, None).await;
                }
                started.elapsed()
            })
        });
    });
    group.bench_function("emulator-mint-direct/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    batch(&bench, false, None).await;
                }
                started.elapsed()
            })
        });
    });
    group.finish();

    // One more measured run of each, for the ratio, latencies and counters.
    let rounds = 30;
    let report = runtime.block_on(async {
        let before = bench.setup.emulator.stats();
        let mut serve_latencies = Vec::new();
        let started = Instant::now();
        for _ in 0..rounds {
            batch(&bench, true, Some(&mut serve_latencies)).await;
        }
        let serve_time = started.elapsed();
        let after_serve = bench.setup.emulator.stats();
        let mut direct_latencies = Vec::new();
        let started = Instant::now();
        for _ in 0..rounds {
            batch(&bench, false, Some(&mut direct_latencies)).await;
        }
        let direct_time = started.elapsed();
        serve_latencies.sort();
        direct_latencies.sort();
        let tokens = (rounds * CONCURRENT) as f64;
        let upstream = after_serve.total_requests() - before.total_requests();
        (
            tokens / serve_time.as_secs_f64(),
            tokens / direct_time.as_secs_f64(),
            percentile(&serve_latencies, 0.5),
            percentile(&serve_latencies, 0.99),
            percentile(&direct_latencies, 0.5),
            percentile(&direct_latencies, 0.99),
            upstream as f64 / tokens,
            bench.setup.emulator.stats().aad_tokens_issued,
            bench.setup.emulator.stats().requests(Route::AadToken),
        )
    });
    let (serve_rate, direct_rate, s50, s99, d50, d99, per_token, aad_issued, aad_requests) = report;
    let ratio = serve_rate / direct_rate;
    eprintln!(
        "\nserve vs the emulator's mint, {CONCURRENT} concurrent, {} tokens each, {} cores:",
        rounds * CONCURRENT,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    eprintln!("  tokens/s through serve:      {serve_rate:.0}");
    eprintln!("  tokens/s at the mint direct: {direct_rate:.0}");
    eprintln!(
        "  ratio:                       {ratio:.2} (target >= 0.90: {})",
        if ratio >= 0.9 { "met" } else { "NOT met" }
    );
    eprintln!("  latency through serve:       p50 {s50:?}, p99 {s99:?}");
    eprintln!("  latency at the mint direct:  p50 {d50:?}, p99 {d99:?}");
    eprintln!(
        "  added by serve:              p50 {:?}, p99 {:?}",
        s50.saturating_sub(d50),
        s99.saturating_sub(d99)
    );
    eprintln!(
        "  upstream requests per token: {per_token:.3} (target 1: {})",
        if (per_token - 1.0).abs() < f64::EPSILON {
            "met"
        } else {
            "NOT met"
        }
    );
    eprintln!(
        "  AAD tokens issued in all:    {aad_issued} ({aad_requests} AAD requests; target 1: {})",
        if aad_requests == 1 { "met" } else { "NOT met" }
    );
}

criterion_group!(benches, serve_against_direct);
criterion_main!(benches);
