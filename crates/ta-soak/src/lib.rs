//! The soak: `serve` (the binary, as operators run it) in front of the
//! emulator under steady widget load, while faults are injected at random:
//! 5xx, 429 with `Retry-After`, resets, bodies cut, truncated or slow, a
//! malformed body, a revoked AAD token, revoked consent, a 307 to another
//! host, an AAD outage, and the chat's: the same faults on the SA's chat
//! calls, the widgets' UCWA calls and the keys document, and callbacks
//! twice, swapped or late. Every token a widget receives is verified
//! (signed with the emulator's key, for exactly the widget's origin, a
//! session id never seen before, not expired), so that wrong tokens are a
//! number, and it must be 0. Chat widgets run whole chats meanwhile; a
//! message a chat could not have brought is a wrong message (0), and when
//! the load ends every chat must end on both sides, the platform's and
//! `serve`'s. `serve`'s memory and open descriptors are sampled every
//! second.
//!
//! `cargo xtask soak --minutes N` runs it on a release build; a test of the
//! binary runs a short one.

mod chats;
mod faults;
mod report;
mod sample;
mod widgets;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ta_emulator::{
    AgentConfig, CallbackFaults, ChatConfig, DEFAULT_APP_ID_URI, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig, Route,
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

/// The agent `serve` invites, as the emulator plays her.
const AGENT: &str = "sip:anna@contoso.com=Anna (Support)";

/// What the chat widgets say, one line per answer awaited.
const LINES: [&str; 2] = ["Hello?", "One more thing"];

/// The chat's timers: a chat runs in a few seconds, and one left behind
/// ends within seconds too.
fn chat_config() -> ChatConfig {
    let agent = AgentConfig {
        join_after_ms: 200,
        think_ms: 100,
        type_ms: 200,
        ..AgentConfig::default()
    };
    ChatConfig {
        long_poll_ms: 2_000,
        invitation_timeout_ms: 10_000,
        message_timeout_ms: 10_000,
        app_idle_timeout_ms: 10_000,
        callback_timeout_ms: 3_000,
        agents: vec![agent],
        ..ChatConfig::default()
    }
}

/// How a soak runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SoakOptions {
    /// The `ta-bootstrap` binary.
    pub serve_binary: PathBuf,
    /// How long the load runs.
    pub duration: Duration,
    /// Widgets asking for tokens at once.
    pub widgets: usize,
    /// Chat widgets chatting at once (each also takes a token per chat).
    pub chats: usize,
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
    /// Where to write `serve`'s whole log (at `info`), with a line at each
    /// fault window's start; `None`: only its warnings are read (for
    /// panics and the first lines).
    pub serve_log: Option<PathBuf>,
}

impl SoakOptions {
    /// A soak of `duration` with `serve_binary`: 8 widgets, 20 ms apart,
    /// 2 chat widgets, fault windows of about 3 s, AAD tokens of 60 s, psat tokens of 5 min.
    pub fn new(serve_binary: impl Into<PathBuf>, duration: Duration) -> Self {
        Self {
            serve_binary: serve_binary.into(),
            duration,
            widgets: 8,
            chats: 2,
            pause: Duration::from_millis(20),
            window: Duration::from_secs(3),
            seed: 16,
            aad_lifetime: Duration::from_secs(60),
            psat_lifetime: Duration::from_secs(300),
            serve_log: None,
        }
    }
}

/// `serve`, started against the emulator.
struct Serve {
    child: tokio::process::Child,
    /// Its widget-token URL.
    url: String,
    /// Its base URL (`http://127.0.0.1:port`).
    base: String,
    panics: Arc<Mutex<(u64, Vec<String>)>>,
    /// Its whole log, when [`SoakOptions::serve_log`] asks for it.
    log: Option<Log>,
}

/// `serve`'s log file, shared by the task reading its stderr and the loop
/// that starts fault windows.
#[derive(Clone)]
struct Log(Arc<Mutex<std::fs::File>>);

impl Log {
    fn create(path: &std::path::Path) -> Result<Self, String> {
        std::fs::File::create(path)
            .map(|f| Self(Arc::new(Mutex::new(f))))
            .map_err(|e| format!("could not create {}: {e}", path.display()))
    }

    fn line(&self, line: &str) {
        use std::io::Write as _;
        if let Ok(mut file) = self.0.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
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
        .args([
            "--callback-audience",
            DEFAULT_APP_ID_URI,
            "--callback-issuer",
            &emulator.callback_issuer(),
            "--callback-keys-url",
            &emulator.callback_keys_url(),
            "--agent",
            AGENT,
        ])
        .env(
            "RUST_LOG",
            if options.serve_log.is_some() {
                "info"
            } else {
                "warn"
            },
        )
        .env_remove("TA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", options.serve_binary.display()))?;
    let panics = Arc::new(Mutex::new((0, Vec::new())));
    let log = options.serve_log.as_deref().map(Log::create).transpose()?;
    if let Some(stderr) = child.stderr.take() {
        let panics = Arc::clone(&panics);
        let log = log.clone();
        tokio::spawn(async move {
            // Byte lines, read lossily: one line that is not UTF-8 must not
            // stop the reading (serve would then block on a full pipe).
            let mut reader = BufReader::new(stderr);
            let mut bytes = Vec::new();
            loop {
                bytes.clear();
                match reader.read_until(b'\n', &mut bytes).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
                if let Some(log) = &log {
                    log.line(&line);
                }
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
    // Its first lines: where it takes the platform's callbacks, then where
    // it serves tokens.
    let mut said = Vec::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| "serve did not start in 30 s".to_owned())?
            .map_err(|e| e.to_string())?;
        match line {
            Some(line) => match line.strip_prefix("serving widget tokens on ") {
                Some(url) => break url.to_owned(),
                None if said.len() < 4 => said.push(line),
                None => return Err(format!("serve said {said:?}")),
            },
            None => {
                let log = panics.lock().map(|p| p.1.join("\n")).unwrap_or_default();
                return Err(format!("serve said {said:?} and stopped; its log:\n{log}"));
            }
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let base = url
        .strip_suffix("/v1/widget-token")
        .ok_or_else(|| format!("serve serves widget tokens on {url}, not on /v1/widget-token"))?
        .to_owned();
    Ok(Serve {
        child,
        url,
        base,
        panics,
        log,
    })
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
        chat: chat_config(),
        ..EmulatorConfig::default()
    };
    let script = chats::Script {
        answers: config
            .chat
            .agents
            .first()
            .map(|a| a.answers.clone())
            .unwrap_or_default(),
        lines: LINES.to_vec(),
    };
    let emulator = Emulator::start(config).await.map_err(|e| e.to_string())?;
    let ca = std::env::temp_dir().join(format!("ta-soak-ca-{}.pem", emulator.addr().port()));
    emulator.write_ca_pem(&ca).map_err(|e| e.to_string())?;
    let mut serve = start_serve(options, &emulator, &ca).await?;
    emulator.set_callback_url(&format!("{}/v1/callback", serve.base))?;
    let pid = serve.child.id().ok_or("serve has no pid")?;
    // The widgets call serve (plain http) and the emulator's widget side
    // (HTTPS with its CA).
    let ca_pem = emulator.ca_pem().ok_or("the emulator has no CA")?;
    let client: Arc<dyn Transport> = Arc::new(
        ta_hyper::HyperTransport::builder()
            .add_root_certificates_pem(ca_pem.as_bytes())
            .map_err(|e| e.to_string())?
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
    let chat_tally = Arc::new(Mutex::new(chats::ChatTally::default()));
    for i in 0..options.chats {
        let origin = ORIGINS.get(i % ORIGINS.len()).copied().unwrap_or_default();
        tasks.push(tokio::spawn(chats::chat_widget(
            Arc::clone(&client),
            serve.base.clone(),
            origin.to_owned(),
            script.clone(),
            until,
            Arc::clone(&chat_tally),
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
        emulator.set_callback_faults(window.callbacks);
        if let Some(log) = &serve.log {
            log.line(&format!(
                "soak: at {:.1} s, fault window {}",
                started.elapsed().as_secs_f64(),
                window.name
            ));
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
    emulator.set_callback_faults(CallbackFaults::NONE);
    for task in tasks {
        let _ = task.await;
    }
    // Every chat ends on both sides: the ones the visitors left behind when
    // the platform lets their applications expire.
    let settled = tokio::time::Instant::now();
    if let Some(log) = &serve.log {
        log.line(&format!(
            "soak: at {:.1} s, the load ended: settling",
            started.elapsed().as_secs_f64()
        ));
    }
    let metrics_url = format!("{}/metrics", serve.base);
    let mut open = (u64::MAX, u64::MAX);
    while settled.elapsed() < SETTLE {
        open = (
            emulator.stats().chat.conversations_open,
            open_in_serve(&*client, &metrics_url)
                .await
                .unwrap_or(u64::MAX),
        );
        if open == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settle_time = settled.elapsed();
    let left_open = emulator.open_conversations();
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
    let chats = Arc::try_unwrap(chat_tally)
        .ok()
        .and_then(|t| t.into_inner().ok())
        .unwrap_or_default();
    Ok(SoakReport {
        chats: chats.outcomes,
        chat_lines_said: chats.said,
        chat_answers: chats.answers,
        wrong_messages: chats.wrong,
        wrong_message_reasons: chats.wrong_reasons,
        chats_open_at_end: open,
        left_open,
        settle_time,
        chat_calls: count(&[Route::ChatCall]),
        conversations: (
            stats.chat.conversations_started,
            stats.chat.conversations_ended,
        ),
        callbacks: stats.chat.callbacks_delivered,
        callbacks_refused: stats.chat.callbacks_refused,
        callbacks_unanswered: stats.chat.callbacks_failed,
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

/// The longest the chats left at the end may take to end on both sides:
/// the platform's application idle timeout and invitation timeout, and
/// some.
const SETTLE: Duration = Duration::from_secs(45);

/// The chats `serve` has open, from its `/metrics` (`ta_chats_open`).
async fn open_in_serve(client: &dyn Transport, url: &str) -> Option<u64> {
    let request = http::Request::get(url).body(bytes::Bytes::new()).ok()?;
    let response = client.send(request).await.ok()?;
    let text = std::str::from_utf8(response.body()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("ta_chats_open "))
        .and_then(|n| n.trim().parse().ok())
}
