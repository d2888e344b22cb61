//! The soak: `serve` (the binary, as operators run it) in front of the
//! emulator under steady widget load, while faults are injected at random:
//! 5xx, 429 with `Retry-After`, resets, bodies cut, truncated or slow, a
//! malformed body, a revoked AAD token, revoked consent, a 307 to another
//! host, an AAD outage. Every token a widget receives is verified (signed
//! with the emulator's key, for exactly the widget's origin, a session id
//! never seen before, not expired), so that wrong tokens are a number, and
//! it must be 0. `serve`'s memory and open descriptors are sampled every
//! second.
//!
//! `cargo xtask soak --minutes N` runs it on a release build; a test of the
//! binary runs a short one.

mod faults;
mod report;
mod sample;
mod widgets;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig, Route,
};
use ta_protocol::Transport;
use tokio::io::{AsyncBufReadExt as _, BufReader};

pub use report::SoakReport;
pub use sample::Sample;

/// The widgets' origins, one allowlist entry each.
const ORIGINS: [&str; 3] = [
    "https://www.contoso.com",
    "https://shop.contoso.com",
    "https://help.fabrikam.com",
];

/// How a soak runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SoakOptions {
    /// The `ta-bootstrap` binary.
    pub serve_binary: PathBuf,
    /// How long the load runs.
    pub duration: Duration,
    /// Widgets asking at once.
    pub widgets: usize,
    /// Each widget's pause between requests.
    pub pause: Duration,
    /// How long a fault window lasts, on average.
    pub window: Duration,
    /// The seed of the faults' choice.
    pub seed: u64,
    /// The emulator's AAD token lifetime (short, so that `serve` renews it
    /// many times).
    pub aad_lifetime: Duration,
    /// The emulator's psat token lifetime.
    pub psat_lifetime: Duration,
}

impl SoakOptions {
    /// A soak of `duration` with `serve_binary`: 8 widgets, 20 ms apart,
    /// fault windows of about 3 s, AAD tokens of 60 s, psat tokens of 5 min.
    pub fn new(serve_binary: impl Into<PathBuf>, duration: Duration) -> Self {
        Self {
            serve_binary: serve_binary.into(),
            duration,
            widgets: 8,
            pause: Duration::from_millis(20),
            window: Duration::from_secs(3),
            seed: 16,
            aad_lifetime: Duration::from_secs(60),
            psat_lifetime: Duration::from_secs(300),
        }
    }
}

/// `serve`, started against the emulator.
struct Serve {
    child: tokio::process::Child,
    url: String,
    panics: Arc<Mutex<(u64, Vec<String>)>>,
}

async fn start_serve(
    options: &SoakOptions,
    emulator: &Emulator,
    ca: &std::path::Path,
) -> Result<Serve, String> {
    let mut command = tokio::process::Command::new(&options.serve_binary);
    command
        .args([
            "serve",
            "--discover-url",
            &emulator.discover_url(),
            "--token-url",
            &emulator.token_url(),
            "--client-id",
            DEFAULT_CLIENT_ID,
            "--client-secret",
            DEFAULT_CLIENT_SECRET,
            "--endpoint-id",
            DEFAULT_ENDPOINT,
            "--ca-file",
        ])
        .arg(ca)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--per-client-rate",
            "1000000",
            "--global-rate",
            "1000000",
        ])
        .args(ORIGINS.iter().flat_map(|o| ["--allowed-origin", o]))
        .env("RUST_LOG", "warn")
        .env_remove("TA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", options.serve_binary.display()))?;
    let panics = Arc::new(Mutex::new((0, Vec::new())));
    if let Some(stderr) = child.stderr.take() {
        let panics = Arc::clone(&panics);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut p) = panics.lock() {
                    if line.contains("panicked") {
                        p.0 += 1;
                    }
                    if p.1.len() < 40 {
                        p.1.push(line);
                    }
                }
            }
        });
    }
    let stdout = child.stdout.take().ok_or("serve has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| "serve did not start in 30 s".to_owned())?
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let url = first
        .strip_prefix("serving widget tokens on ")
        .ok_or_else(|| {
            let log = panics.lock().map(|p| p.1.join("\n")).unwrap_or_default();
            format!("serve said {first:?}; its log:\n{log}")
        })?
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Serve { child, url, panics })
}

/// Runs one soak.
///
/// # Errors
///
/// When the emulator or `serve` cannot be started; a soak that ran returns
/// its report, passed or not ([`SoakReport::passed`]).
pub async fn run(options: &SoakOptions) -> Result<SoakReport, String> {
    let config = EmulatorConfig {
        aad_token_lifetime_secs: options.aad_lifetime.as_secs().max(1),
        psat_lifetime_secs: options.psat_lifetime.as_secs().max(1),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.map_err(|e| e.to_string())?;
    let ca = std::env::temp_dir().join(format!("ta-soak-ca-{}.pem", emulator.addr().port()));
    emulator.write_ca_pem(&ca).map_err(|e| e.to_string())?;
    let mut serve = start_serve(options, &emulator, &ca).await?;
    let pid = serve.child.id().ok_or("serve has no pid")?;
    let client: Arc<dyn Transport> = Arc::new(
        ta_hyper::HyperTransport::builder()
            .build()
            .map_err(|e| e.to_string())?,
    );
    let started = tokio::time::Instant::now();
    let until = started + options.duration;
    let tally = Arc::new(Mutex::new(widgets::Tally::default()));
    let mut tasks = Vec::new();
    for i in 0..options.widgets {
        let origin = ORIGINS.get(i % ORIGINS.len()).copied().unwrap_or_default();
        tasks.push(tokio::spawn(widgets::widget(
            Arc::clone(&client),
            serve.url.clone(),
            origin.to_owned(),
            options.pause,
            until,
            Arc::clone(&tally),
        )));
    }
    // Faults, one window after another, and a sample every second.
    let mut rng = faults::Rng::new(options.seed);
    let redirect_host = format!("127.0.0.2:{}", emulator.addr().port());
    let mut windows = std::collections::BTreeMap::<String, u64>::new();
    let mut samples = Vec::new();
    let mut next_sample = started;
    while tokio::time::Instant::now() < until {
        let window = faults::next_window(&mut rng, &redirect_host);
        emulator.clear_faults();
        for rule in window.rules {
            emulator.inject(rule);
        }
        *windows.entry(window.name).or_default() += 1;
        let window_end = (tokio::time::Instant::now()
            + faults::window_length(&mut rng, options.window))
        .min(until);
        while tokio::time::Instant::now() < window_end {
            if tokio::time::Instant::now() >= next_sample {
                if let Some(sample) = sample::read(pid, started.elapsed()) {
                    samples.push(sample);
                }
                next_sample += Duration::from_secs(1);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    emulator.clear_faults();
    for task in tasks {
        let _ = task.await;
    }
    if let Some(sample) = sample::read(pid, started.elapsed()) {
        samples.push(sample);
    }
    let duration = started.elapsed();
    let _ = serve.child.start_kill();
    let _ = serve.child.wait().await;
    let stats = emulator.stats();
    let _ = std::fs::remove_file(&ca);
    emulator.shutdown().await;
    let count = |routes: &[Route]| -> u64 {
        stats
            .requests
            .iter()
            .filter(|r| routes.contains(&r.route))
            .map(|r| r.count)
            .sum()
    };
    let tally = Arc::try_unwrap(tally)
        .ok()
        .and_then(|t| t.into_inner().ok())
        .unwrap_or_default();
    let panics = serve.panics.lock().map(|p| p.0).unwrap_or(0);
    Ok(SoakReport {
        duration,
        widgets: options.widgets,
        tokens: tally.tokens,
        answers: tally.answers,
        no_answer: tally.no_answer,
        wrong_tokens: tally.wrong,
        wrong_reasons: tally.wrong_reasons,
        windows,
        faults_fired: stats.faults_fired,
        aad_requests: count(&[Route::AadToken]),
        aad_lifetime: options.aad_lifetime,
        api_requests: count(&[
            Route::Discovery,
            Route::Applications,
            Route::Application,
            Route::Mint,
        ]),
        panics,
        samples,
    })
}
