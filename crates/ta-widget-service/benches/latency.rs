//! Time-to-token with the API at a network distance: what a widget waits
//! from its first byte to its token, through `serve` without and with its
//! pool of pre-minted tokens, and for a direct mint (the library's
//! `Bootstrapper::mint`, no HTTP in front), with the emulator 80 ms away
//! (± 5 ms, handshakes included), for widgets arriving at a steady rate and
//! in a burst larger than the pool. It reports p50 and p99 of each, the
//! upstream requests each widget token cost, and the pool's hits, misses
//! and tokens thrown away.
//!
//! Run with `cargo xtask bench latency` (about three minutes). The paths
//! run in the same process, twice each, interleaved, on the same warm
//! caches: compare them as ratios. Every widget must get its token (200).
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

use support::{WidgetConnection, met, percentile};

const RTT_MS: u64 = 80;
const JITTER_MS: u64 = 5;
/// Widgets a second, and for how long, in the steady run.
const STEADY_RATE: u32 = 20;
const STEADY_SECS: u32 = 15;
/// Widgets arriving at once in the burst.
const BURST: u32 = 100;
/// Tokens pooled at most: fewer than the burst.
const POOL_SIZE: usize = 50;
/// Arrivals at the steady rate before each steady run's measured ones, not
/// counted: the pool's target follows the last 10 s of demand, and a
/// measured run starts in the steady state it is about.
const LEAD_IN_SECS: u32 = 2;

const WIDGET_TOKEN_REQUEST: &[u8] = b"POST /v1/widget-token HTTP/1.1\r\nhost: serve\r\n\
origin: https://contoso.com\r\ncontent-length: 0\r\n\r\n";

struct Bench {
    setup: ta_test_support::Setup,
    serve_addr: std::net::SocketAddr,
    pooled_addr: std::net::SocketAddr,
    /// The pooled service's own metrics (hits, misses, discarded).
    pool_metrics: Arc<Metrics>,
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// A browser's first call to `serve`: a new connection, then
    /// `POST /v1/widget-token`.
    Serve,
    /// The same to a `serve` with the pool.
    Pooled,
    /// `Bootstrapper::mint` on the same bootstrapper.
    Direct,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Self::Serve => "through serve",
            Self::Pooled => "serve with the pool",
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

    /// When each widget arrives, from the start, and whether it is
    /// measured (not in the lead-in).
    fn schedule(self) -> Vec<(Duration, bool)> {
        match self {
            Self::Steady => (0..STEADY_RATE * (LEAD_IN_SECS + STEADY_SECS))
                .map(|i| {
                    let at = Duration::from_secs(1) * i / STEADY_RATE;
                    (at, i >= STEADY_RATE * LEAD_IN_SECS)
                })
                .collect(),
            Self::Burst => vec![(Duration::ZERO, true); BURST as usize],
        }
    }
}

impl Bench {
    async fn widget(&self, path: Path) -> Duration {
        let started = Instant::now();
        match path {
            Path::Serve | Path::Pooled => {
                let addr = if path == Path::Serve {
                    self.serve_addr
                } else {
                    self.pooled_addr
                };
                let mut connection = WidgetConnection::open(addr).await;
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

    /// Every widget of `arrivals` on `path`: the measured ones' times to
    /// token, sorted, and the upstream requests per widget token, lead-in
    /// and the pool's refills after the last widget included.
    async fn run(self: &Arc<Self>, path: Path, arrivals: Arrivals) -> (Vec<Duration>, f64) {
        let before = self.setup.emulator.stats().total_requests();
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let schedule = arrivals.schedule();
        for &(at, measured) in &schedule {
            tokio::time::sleep_until(start + at).await;
            let bench = Arc::clone(self);
            tasks.spawn(async move { (bench.widget(path).await, measured) });
        }
        let mut times = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (time, measured) = done.unwrap();
            if measured {
                times.push(time);
            }
        }
        times.sort();
        if path == Path::Pooled {
            // The refills the last widgets asked for land within a round
            // trip or two.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let upstream = self.setup.emulator.stats().total_requests() - before;
        (times, upstream as f64 / schedule.len() as f64)
    }

    /// The pooled service's counter `name` now.
    fn pool_counter(&self, name: &str) -> u64 {
        self.pool_metrics
            .encode()
            .lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            .filter_map(|rest| rest.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
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
    // The same service with the pool, on the same bootstrapper (its caches
    // and its connection to the API), on its own port.
    let pool_metrics = Arc::new(Metrics::new());
    let pool = ta_widget_service::PoolConfig::new(POOL_SIZE, Duration::from_secs(300)).unwrap();
    let pooled = support::service_with_pool(&setup, Arc::clone(&pool_metrics), pool);
    let refill = pooled.clone();
    tokio::spawn(async move { refill.keep_pool().await });
    let pooled_addr = support::listen(&pooled).await;
    // The SA's connection to the API is set up (its handshakes paid) by the
    // warm-up; one mint each way before measuring.
    let bench = Arc::new(Bench {
        setup,
        serve_addr,
        pooled_addr,
        pool_metrics,
    });
    bench.widget(Path::Direct).await;
    bench.widget(Path::Serve).await;
    bench.widget(Path::Pooled).await;
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
        println!(
            "| arrivals | path | widgets | p50 | p99 | upstream requests per token | pool hits / misses / discarded |"
        );
        println!("|---|---|---|---|---|---|---|");
        const PATHS: [Path; 3] = [Path::Serve, Path::Pooled, Path::Direct];
        for arrivals in [Arrivals::Steady, Arrivals::Burst] {
            // Each path twice, interleaved, so that none is favoured by its
            // place; each path's rounds are pooled for the ratios.
            let mut pooled: [Vec<Duration>; 3] = Default::default();
            for round in 0..2 {
                for (i, path) in PATHS.into_iter().enumerate() {
                    let counters = ["ta_pool_hits_total", "ta_pool_misses_total", "ta_pool_discarded_total"]
                        .map(|name| bench.pool_counter(name));
                    let (times, per_token) = bench.run(path, arrivals).await;
                    let pool = if path == Path::Pooled {
                        let [hits, misses, discarded] = ["ta_pool_hits_total", "ta_pool_misses_total", "ta_pool_discarded_total"]
                            .map(|name| bench.pool_counter(name));
                        format!(
                            "{} / {} / {}",
                            hits - counters[0],
                            misses - counters[1],
                            discarded - counters[2]
                        )
                    } else {
                        "".to_owned()
                    };
                    println!(
                        "| {} (round {}) | {} | {} | {} | {} | {per_token:.2} | {pool} |",
                        arrivals.label(),
                        round + 1,
                        path.label(),
                        times.len(),
                        ms(percentile(&times, 0.5)),
                        ms(percentile(&times, 0.99)),
                    );
                    pooled[i].extend(times);
                }
            }
            let [serve, with_pool, direct] = pooled.map(|mut times| {
                times.sort();
                percentile(&times, 0.99)
            });
            println!();
            let speed_up = direct.as_secs_f64() / with_pool.as_secs_f64();
            // The target is for steady demand within the pool's refill
            // rate; a burst past the pool gets direct mints (and each its
            // token, which the run asserts).
            let target = match arrivals {
                Arrivals::Steady => format!(" (target >= 16: {})", met(speed_up >= 16.0)),
                Arrivals::Burst => String::new(),
            };
            println!(
                "{}: p99 through serve {} / with the pool {} / direct {}; direct / with the pool = {speed_up:.1}{target}, serve / direct = {:.2}",
                arrivals.label(),
                ms(serve),
                ms(with_pool),
                ms(direct),
                serve.as_secs_f64() / direct.as_secs_f64()
            );
            println!();
        }
    });
}
