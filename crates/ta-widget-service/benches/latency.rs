//! Time-to-token with the API at a network distance: what a widget waits
//! from its first byte to its token, through `serve` and for a direct mint
//! (the library's `Bootstrapper::mint`, no HTTP in front), with the
//! emulator 80 ms away (± 5 ms, handshakes included), for widgets arriving
//! at a steady rate and in a burst. It reports p50 and p99 of each, and the
//! upstream requests each widget token cost.
//!
//! Run with `cargo xtask bench latency` (about two minutes). Both paths run
//! in the same process, twice each, interleaved, on the same warm caches:
//! compare them as a ratio. Every widget must get its token (200).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ta_emulator::{EmulatorConfig, NetworkDistance};
use ta_protocol::OriginPolicy;
use ta_widget_service::Metrics;

mod support;

use support::{WidgetConnection, percentile};

const RTT_MS: u64 = 80;
const JITTER_MS: u64 = 5;
/// Widgets a second, and for how long, in the steady run.
const STEADY_RATE: u32 = 20;
const STEADY_SECS: u32 = 15;
/// Widgets arriving at once in the burst.
const BURST: u32 = 100;

const WIDGET_TOKEN_REQUEST: &[u8] = b"POST /v1/widget-token HTTP/1.1\r\nhost: serve\r\n\
origin: https://contoso.com\r\ncontent-length: 0\r\n\r\n";

struct Bench {
    setup: ta_test_support::Setup,
    serve_addr: std::net::SocketAddr,
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// A browser's first call to `serve`: a new connection, then
    /// `POST /v1/widget-token`.
    Serve,
    /// `Bootstrapper::mint` on the same bootstrapper.
    Direct,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Self::Serve => "through serve",
            Self::Direct => "direct mint",
        }
    }
}

#[derive(Clone, Copy)]
enum Arrivals {
    Steady,
    Burst,
}

impl Arrivals {
    fn label(self) -> String {
        match self {
            Self::Steady => format!("steady, {STEADY_RATE}/s for {STEADY_SECS} s"),
            Self::Burst => format!("a burst of {BURST}"),
        }
    }

    /// When each widget arrives, from the start.
    fn schedule(self) -> Vec<Duration> {
        match self {
            Self::Steady => (0..STEADY_RATE * STEADY_SECS)
                .map(|i| Duration::from_secs(1) * i / STEADY_RATE)
                .collect(),
            Self::Burst => vec![Duration::ZERO; BURST as usize],
        }
    }
}

impl Bench {
    async fn widget(&self, path: Path) -> Duration {
        let started = Instant::now();
        match path {
            Path::Serve => {
                let mut connection = WidgetConnection::open(self.serve_addr).await;
                assert_eq!(connection.call(WIDGET_TOKEN_REQUEST).await, 200);
            }
            Path::Direct => {
                let origins = ta_protocol::AllowedOrigins::parse_list(
                    "https://contoso.com",
                    OriginPolicy::default(),
                )
                .unwrap();
                self.setup.bootstrapper.mint(origins).await.unwrap();
            }
        }
        started.elapsed()
    }

    /// Every widget of `arrivals` on `path`: their times to token, sorted,
    /// and the upstream requests made meanwhile.
    async fn run(self: &Arc<Self>, path: Path, arrivals: Arrivals) -> (Vec<Duration>, u64) {
        let before = self.setup.emulator.stats().total_requests();
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for at in arrivals.schedule() {
            tokio::time::sleep_until(start + at).await;
            let bench = Arc::clone(self);
            tasks.spawn(async move { bench.widget(path).await });
        }
        let mut times = Vec::new();
        while let Some(time) = tasks.join_next().await {
            times.push(time.unwrap());
        }
        times.sort();
        let upstream = self.setup.emulator.stats().total_requests() - before;
        (times, upstream)
    }
}

async fn start() -> Arc<Bench> {
    let metrics = Arc::new(Metrics::new());
    let config = EmulatorConfig {
        network: NetworkDistance::new(RTT_MS, JITTER_MS),
        ..EmulatorConfig::default()
    };
    let setup = ta_test_support::setup_observed(config, Arc::clone(&metrics) as _).await;
    let service = support::service(&setup, metrics);
    let warm = service.clone();
    tokio::spawn(async move { warm.keep_warm().await });
    while !setup.bootstrapper.is_warm() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let serve_addr = support::listen(&service).await;
    // The SA's connection to the API is set up (its handshakes paid) by the
    // warm-up; one mint each way before measuring.
    let bench = Arc::new(Bench { setup, serve_addr });
    bench.widget(Path::Direct).await;
    bench.widget(Path::Serve).await;
    bench
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = start().await;
        println!(
            "time to token, the API {RTT_MS} ± {JITTER_MS} ms away (every request one round trip, a new connection two more)"
        );
        println!();
        println!("| arrivals | path | widgets | p50 | p99 | upstream requests per token |");
        println!("|---|---|---|---|---|---|");
        for arrivals in [Arrivals::Steady, Arrivals::Burst] {
            // Each path twice, interleaved, so that neither is favoured by
            // going first; each path's rounds are pooled for the ratio.
            let mut pooled = [Vec::new(), Vec::new()];
            for (round, path) in [Path::Serve, Path::Direct, Path::Serve, Path::Direct]
                .into_iter()
                .enumerate()
            {
                let (times, upstream) = bench.run(path, arrivals).await;
                let n = times.len();
                println!(
                    "| {} (round {}) | {} | {n} | {} | {} | {:.2} |",
                    arrivals.label(),
                    round / 2 + 1,
                    path.label(),
                    ms(percentile(&times, 0.5)),
                    ms(percentile(&times, 0.99)),
                    upstream as f64 / n as f64
                );
                pooled[round % 2].extend(times);
            }
            let [serve, direct] = pooled.map(|mut times| {
                times.sort();
                percentile(&times, 0.99)
            });
            println!();
            println!(
                "{}: p99 through serve {} / p99 direct {} = {:.2}",
                arrivals.label(),
                ms(serve),
                ms(direct),
                serve.as_secs_f64() / direct.as_secs_f64()
            );
            println!();
        }
    });
}
