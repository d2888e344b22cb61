//! `serve` in front of the emulator against the emulator's mint alone, under
//! the same concurrent load: tokens per second of both and their ratio, the
//! latency `serve` adds, upstream requests per token, AAD requests in all.
//!
//! Run with `cargo xtask bench serve`. Targets: ratio ≥ 0.9, one upstream
//! request per widget token once warm, one AAD request for the whole run.
//!
//! The widgets call `serve` the way browsers do (HTTP/1.1, `Origin`, one
//! kept-alive connection each) with a client as lean as a load generator;
//! the mint is called with the SA's own pooled HTTP/2 client. Everything
//! shares this process and the machine's cores.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ta_bootstrap::TokenProvider as _;
use ta_emulator::{EmulatorConfig, Route};
use ta_protocol::{OriginPolicy, Transport};
use ta_widget_service::Metrics;

mod support;

use support::{WidgetConnection, met, percentile};

const CONCURRENT: usize = 64;

struct Bench {
    setup: ta_test_support::Setup,
    serve_addr: std::net::SocketAddr,
    /// The widgets' kept-alive connections to `serve`, between rounds.
    widget_connections: std::sync::Mutex<Vec<WidgetConnection>>,
    mint_url: String,
    aad_token: String,
    session: AtomicU64,
}

const WIDGET_TOKEN_REQUEST: &[u8] = b"POST /v1/widget-token HTTP/1.1\r\nhost: serve\r\n\
origin: https://contoso.com\r\ncontent-length: 0\r\n\r\n";
const HEALTH_REQUEST: &[u8] =
    b"GET /healthz HTTP/1.1\r\nhost: serve\r\norigin: https://contoso.com\r\n\r\n";

impl Bench {
    /// A browser-like call to `serve` on the widget's connection: `Origin`
    /// set, answered 200.
    async fn to_serve(&self, connection: &mut WidgetConnection, request: &[u8]) -> Duration {
        let started = Instant::now();
        let status = connection.call(request).await;
        assert_eq!(status, 200);
        started.elapsed()
    }

    async fn via_serve(&self, connection: &mut WidgetConnection) -> Duration {
        self.to_serve(connection, WIDGET_TOKEN_REQUEST).await
    }

    /// `GET /healthz` through the same connection, layers and accept loop:
    /// the cost of the HTTP hop alone, without a mint.
    async fn hop(&self, connection: &mut WidgetConnection) -> Duration {
        self.to_serve(connection, HEALTH_REQUEST).await
    }

    /// A widget's connection: a kept one, else a new one.
    async fn connection(&self) -> WidgetConnection {
        let kept = self.widget_connections.lock().unwrap().pop();
        match kept {
            Some(connection) => connection,
            None => WidgetConnection::open(self.serve_addr).await,
        }
    }

    async fn library(&self) -> Duration {
        let origins =
            ta_protocol::AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())
                .unwrap();
        let started = Instant::now();
        self.setup.bootstrapper.mint(origins).await.unwrap();
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

/// What the widgets call.
#[derive(Clone, Copy)]
enum Path {
    /// `POST /v1/widget-token` on `serve`.
    Serve,
    /// The emulator's mint, with the SA's client.
    Direct,
    /// `GET /healthz` on `serve`.
    Hop,
    /// The library's `Bootstrapper::mint`, no HTTP in front.
    Library,
}

/// `CONCURRENT` widgets, each asking `each` times in a row (a closed loop:
/// a widget asks again as soon as it has its answer, with no barrier between
/// rounds, so that the pipeline stays full).
async fn widgets(bench: &Arc<Bench>, path: Path, each: u64, latencies: Option<&mut Vec<Duration>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let bench = Arc::clone(bench);
        tasks.spawn(async move {
            let mut seen = Vec::with_capacity(usize::try_from(each).unwrap_or(0));
            let mut connection = match path {
                Path::Serve | Path::Hop => Some(bench.connection().await),
                Path::Direct | Path::Library => None,
            };
            for _ in 0..each {
                seen.push(match (path, connection.as_mut()) {
                    (Path::Serve, Some(c)) => bench.via_serve(c).await,
                    (Path::Hop, Some(c)) => bench.hop(c).await,
                    (Path::Direct, _) => bench.direct().await,
                    (Path::Library, _) => bench.library().await,
                    _ => unreachable!("serve and hop have a connection"),
                });
            }
            if let Some(connection) = connection {
                bench.widget_connections.lock().unwrap().push(connection);
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(seen) = tasks.join_next().await {
        all.extend(seen.unwrap());
    }
    if let Some(latencies) = latencies {
        latencies.extend(all);
    }
}

/// CPU time this process has used so far (user + system), from
/// `/proc/self/stat` (Linux; `None` elsewhere). Everything runs in this
/// process, so the difference over a run is the CPU that run cost.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here,
    // in USER_HZ ticks (100 per second).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

async fn start() -> Arc<Bench> {
    let metrics = Arc::new(Metrics::new());
    let setup =
        ta_test_support::setup_observed(EmulatorConfig::default(), Arc::clone(&metrics) as _).await;
    setup.bootstrapper.warm_up().await.unwrap();
    let service = support::service(&setup, metrics);
    let addr = support::listen(&service).await;
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
        serve_addr: addr,
        // One kept-alive HTTP/1.1 connection per widget, as each browser
        // keeps its own, kept from round to round: the run measures `serve`,
        // not TCP set-up.
        widget_connections: std::sync::Mutex::new(Vec::with_capacity(CONCURRENT)),
        mint_url,
        aad_token,
        session: AtomicU64::new(0),
    })
}

fn serve_against_direct(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = runtime.block_on(start());

    // A profiling aid: `SERVE_BENCH_ONLY=serve|direct|hop|library` runs
    // only that path, for 20 s, and prints its CPU per call (run the bench
    // binary under perf or strace with this set).
    if let Ok(only) = std::env::var("SERVE_BENCH_ONLY") {
        let path = match only.as_str() {
            "serve" => Path::Serve,
            "direct" => Path::Direct,
            "hop" => Path::Hop,
            "library" => Path::Library,
            other => panic!("SERVE_BENCH_ONLY={other:?}: serve, direct, hop or library"),
        };
        let mut measured = Measured::default();
        let started = Instant::now();
        runtime.block_on(async {
            while started.elapsed() < Duration::from_secs(20) {
                measured.run(&bench, path, 10).await;
            }
        });
        eprintln!(
            "{only}: {} calls, {:.0}/s, CPU {:?} per call",
            measured.latencies.len(),
            measured.per_second(),
            measured.cpu_each()
        );
        return;
    }

    let mut group = c.benchmark_group("widget-tokens");
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(20);
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function("serve/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                widgets(&bench, Path::Serve, iters, None).await;
                started.elapsed()
            })
        });
    });
    group.bench_function("emulator-mint-direct/64-concurrent", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                widgets(&bench, Path::Direct, iters, None).await;
                started.elapsed()
            })
        });
    });
    group.finish();

    // The measured run behind the ratio, latencies, CPU and counters.
    // Rounds through `serve` and straight at the mint alternate, so that
    // whatever else the machine does weighs on both alike, and the ratio is
    // the median of the rounds' own. The two breakdowns (the HTTP hop alone,
    // the library alone) are measured after them.
    let rounds = 16;
    let each = 30;
    let report = runtime.block_on(async {
        let mut serve = Measured::default();
        let mut direct = Measured::default();
        let mut hop = Measured::default();
        let mut library = Measured::default();
        let mut ratios = Vec::with_capacity(rounds);
        // Upstream requests made while widgets called `serve`.
        let mut upstream = 0;
        for _ in 0..rounds {
            let before = bench.setup.emulator.stats().total_requests();
            let serve_time = serve.run(&bench, Path::Serve, each).await;
            upstream += bench.setup.emulator.stats().total_requests() - before;
            let direct_time = direct.run(&bench, Path::Direct, each).await;
            ratios.push(direct_time.as_secs_f64() / serve_time.as_secs_f64());
        }
        for _ in 0..4 {
            hop.run(&bench, Path::Hop, each).await;
            library.run(&bench, Path::Library, each).await;
        }
        ratios.sort_by(f64::total_cmp);
        let stats = bench.setup.emulator.stats();
        Report {
            upstream_per_token: upstream as f64 / serve.latencies.len() as f64,
            aad_issued: stats.aad_tokens_issued,
            aad_requests: stats.requests(Route::AadToken),
            serve,
            direct,
            hop,
            library,
            ratios,
        }
    });
    report.print();
}

/// What one kind of call cost over the measured rounds.
#[derive(Default)]
struct Measured {
    time: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    /// One round of `CONCURRENT` widgets asking `each` times; the round's
    /// wall time.
    async fn run(&mut self, bench: &Arc<Bench>, path: Path, each: u64) -> Duration {
        let (started, cpu) = (Instant::now(), cpu_time());
        widgets(bench, path, each, Some(&mut self.latencies)).await;
        let took = started.elapsed();
        self.time += took;
        self.cpu += cpu_time()
            .zip(cpu)
            .map_or(Duration::ZERO, |(after, before)| {
                after.saturating_sub(before)
            });
        took
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.time.as_secs_f64()
    }

    fn cpu_each(&self) -> Duration {
        self.cpu
            .checked_div(u32::try_from(self.latencies.len()).unwrap_or(u32::MAX))
            .unwrap_or_default()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        percentile(&self.latencies, p)
    }
}

struct Report {
    serve: Measured,
    direct: Measured,
    hop: Measured,
    library: Measured,
    /// Per round, sorted.
    ratios: Vec<f64>,
    upstream_per_token: f64,
    aad_issued: u64,
    aad_requests: u64,
}

impl Report {
    fn print(mut self) {
        let median = self
            .ratios
            .get(self.ratios.len() / 2)
            .copied()
            .unwrap_or(0.0);
        let (low, high) = (
            self.ratios.first().copied().unwrap_or(0.0),
            self.ratios.last().copied().unwrap_or(0.0),
        );
        let (s50, s99) = (self.serve.percentile(0.5), self.serve.percentile(0.99));
        let (d50, d99) = (self.direct.percentile(0.5), self.direct.percentile(0.99));
        eprintln!(
            "\nserve vs the emulator's mint, {CONCURRENT} concurrent widgets, {} rounds of {} \
             tokens each, alternating, {} cores:",
            self.ratios.len(),
            self.serve.latencies.len() / self.ratios.len().max(1),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        eprintln!(
            "  tokens/s through serve:      {:.0}",
            self.serve.per_second()
        );
        eprintln!(
            "  tokens/s at the mint direct: {:.0}",
            self.direct.per_second()
        );
        eprintln!(
            "  ratio, median of the rounds: {median:.3} (rounds {low:.3} to {high:.3}; \
             target >= 0.900: {}); of the totals: {:.3}",
            met(median >= 0.9),
            self.serve.per_second() / self.direct.per_second()
        );
        eprintln!(
            "  CPU per token (client, serve and emulator together): through serve {:?}, \
             direct {:?}, the library's mint alone {:?}; serve's HTTP hop alone (GET /healthz): {:?}",
            self.serve.cpu_each(),
            self.direct.cpu_each(),
            self.library.cpu_each(),
            self.hop.cpu_each()
        );
        eprintln!("  latency through serve:       p50 {s50:?}, p99 {s99:?}");
        eprintln!("  latency at the mint direct:  p50 {d50:?}, p99 {d99:?}");
        eprintln!(
            "  added by serve:              p50 {:?}, p99 {:?}",
            s50.saturating_sub(d50),
            s99.saturating_sub(d99)
        );
        eprintln!(
            "  upstream requests per token: {:.3} (target 1: {})",
            self.upstream_per_token,
            met((self.upstream_per_token - 1.0).abs() < f64::EPSILON)
        );
        eprintln!(
            "  AAD tokens issued in all:    {} ({} AAD requests; target 1: {})",
            self.aad_issued,
            self.aad_requests,
            met(self.aad_requests == 1)
        );
    }
}

criterion_group!(benches, serve_against_direct);
criterion_main!(benches);
