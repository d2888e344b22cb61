//! The emulator's own rates, so that it is never what a benchmark of the
//! client measures: AAD tokens and mints per second over HTTPS, one at a
//! time and 64 at once on one pooled client.
//!
//! Run with `cargo xtask bench emulator`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::*;
use ta_emulator::*;

const CONCURRENT: u64 = 64;

fn rates(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (emu, client) = runtime.block_on(start(EmulatorConfig::default()));
    let token = runtime.block_on(aad_token(&emu, &client));
    let session = AtomicU64::new(0);

    let mut group = c.benchmark_group("emulator");
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(20);

    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("mint/sequential", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let id = format!("bench-{}", session.fetch_add(1, Ordering::Relaxed));
                    let answer = mint(&emu, &client, &token, &id, "https://contoso.com").await;
                    assert_eq!(answer.status, 200);
                }
                started.elapsed()
            })
        });
    });

    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("mint/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..CONCURRENT {
                        let (client, token) = (client.clone(), token.clone());
                        let id = format!("bench-{}", session.fetch_add(1, Ordering::Relaxed));
                        let url = api(&emu, &format!("/platformservice/v1/applications/1627259584/anonApplicationTokens?{ENDPOINT_Q}"));
                        tasks.spawn(async move {
                            let body = serde_json::json!({"applicationSessionId": id, "allowedOrigins": "https://contoso.com"}).to_string();
                            let auth = bearer(&token);
                            let answer = send(&client, "POST", &url, &[("authorization", &auth), ("content-type", "application/json")], &body).await;
                            assert_eq!(answer.status, 200);
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                }
                started.elapsed()
            })
        });
    });

    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("aad-token/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..CONCURRENT {
                        let client = client.clone();
                        let url = emu.token_url();
                        let audience = emu.audience();
                        tasks.spawn(async move {
                            let body = url::form_urlencoded::Serializer::new(String::new())
                                .append_pair("grant_type", "client_credentials")
                                .append_pair("client_id", DEFAULT_CLIENT_ID)
                                .append_pair("client_secret", DEFAULT_CLIENT_SECRET)
                                .append_pair("scope", &format!("{audience}/.default"))
                                .finish();
                            let answer = send(
                                &client,
                                "POST",
                                &url,
                                &[("content-type", "application/x-www-form-urlencoded")],
                                &body,
                            )
                            .await;
                            assert_eq!(answer.status, 200);
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                }
                started.elapsed()
            })
        });
    });
    group.finish();

    let stats = emu.stats();
    eprintln!(
        "emulator counters after the run: {} mints, {} AAD tokens, {} connections, {} TLS handshakes, {} cores",
        stats.psat_tokens_minted,
        stats.aad_tokens_issued,
        stats.connections_accepted,
        stats.tls_handshakes,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
}

criterion_group!(benches, rates);
criterion_main!(benches);
