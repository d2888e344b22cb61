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

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ta-bootstrap");

/// How long the page may take to reach a state.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `serve --emulator` may take to print its three lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The emulator's widget-token lifetime for this test
/// (`--emulator-token-lifetime`, at least 15 s).
const TOKEN_LIFETIME_S: u64 = 20;
/// When the widget renews by itself, after each token: the service's
/// `renewAfter`, three quarters of the life by default.
const AUTO_RENEW_AFTER_S: u64 = TOKEN_LIFETIME_S * 3 / 4;

macro_rules! install {
    () => {
        "install Debian's `chromium` and `chromium-driver` packages \
         (`apt-get install -y --no-install-recommends chromium chromium-driver`, as .ci/run does)"
    };
}

const INSTALL_HINT: &str = concat!(
    install!(),
    ", or, on a developer's machine (not in CI, where the CI environment variable is set), \
     set TA_SKIP_BROWSER_TEST=1 to skip this test"
);

// ------------------------------------------------------------ skipping

/// Whether `CI` (its value, if set) says that this runs in CI: set, not
/// empty, and not `false` or `0`.
fn in_ci(ci: Option<&str>) -> bool {
    ci.map(str::trim)
        .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Whether to skip the browser test, from the values of
/// `TA_SKIP_BROWSER_TEST` and `CI`: `TA_SKIP_BROWSER_TEST=1` skips it, but
/// not in CI, where it is an error.
fn skip_browser_test(skip: Option<&str>, ci: Option<&str>) -> Result<bool, String> {
    if skip != Some("1") {
        return Ok(false);
    }
    if in_ci(ci) {
        return Err(format!(
            "TA_SKIP_BROWSER_TEST=1 is set, but so is CI={:?}: the browser test cannot be \
             skipped in CI; {}",
            ci.unwrap_or_default(),
            install!()
        ));
    }
    Ok(true)
}

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

// ------------------------------------------------------------ processes

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped,
/// so that a failing assertion leaves nothing running.
struct ChildGuard {
    name: &'static str,
    child: Child,
}

impl ChildGuard {
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // A polite SIGTERM first (serve shuts down gracefully, chromedriver
        // closes its browsers); `kill` may be missing on minimal systems.
        let termed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "{} did not stop on SIGTERM within 5 s; killing it",
                self.name
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Finds a program: the first of `candidates` that is an absolute path to
/// a file, or a name found in `PATH`.
fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|candidate| {
        let candidate = Path::new(candidate);
        if candidate.is_absolute() {
            return candidate.is_file().then(|| candidate.to_owned());
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(candidate))
            .find(|p| p.is_file())
    })
}

fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free loopback port (chromedriver accepts local
/// connections only) and waits until it accepts connections.
fn start_chromedriver(program: &Path) -> (ChildGuard, String) {
    let port = free_loopback_port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .arg("--log-level=WARNING")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL_HINT}", program.display()));
    let mut guard = ChildGuard {
        name: "chromedriver",
        child,
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            panic!("chromedriver exited at start-up ({status}); {INSTALL_HINT}");
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {address} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, format!("http://{address}"))
}

/// The URLs `serve --emulator` prints.
#[derive(Debug)]
struct Urls {
    token: String,
    allowed: String,
    refused: String,
}

/// Starts `ta-bootstrap serve --emulator --listen 127.0.0.1:0
/// --emulator-token-lifetime 20` and reads its three lines.
fn start_server(cwd: &Path) -> (ChildGuard, Urls) {
    let child = Command::new(BIN)
        .args(["serve", "--emulator", "--listen", "127.0.0.1:0"])
        .args(["--emulator-token-lifetime", &TOKEN_LIFETIME_S.to_string()])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard {
        name: "ta-bootstrap serve --emulator",
        child,
    };
    let stdout = guard.child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    // Reads every line, so that the pipe never fills up.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Once nobody listens any more, keep draining.
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(e) => panic!(
                "`serve --emulator` printed {lines:?} and then nothing more ({e}) within {STARTUP_TIMEOUT:?}; \
                 exit status: {:?}",
                guard.child.try_wait()
            ),
        }
    }
    let strip = |line: &str, prefix: &str| -> String {
        line.strip_prefix(prefix)
            .unwrap_or_else(|| {
                panic!("expected a line starting with {prefix:?}, got {line:?} (all: {lines:?})")
            })
            .to_owned()
    };
    let token = strip(&lines[0], "serving widget tokens on ");
    let allowed = strip(&lines[1], "demo widget (allowed origin): ");
    let refused = strip(&lines[2], "demo widget (origin not on the allowlist): ");
    for url in [&token, &allowed, &refused] {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "a URL that is not on loopback: {url}"
        );
    }
    assert!(token.ends_with("/v1/widget-token"), "{token}");
    assert!(
        allowed.ends_with('/') && refused.ends_with('/'),
        "{allowed} {refused}"
    );
    (
        guard,
        Urls {
            token,
            allowed,
            refused,
        },
    )
}

// ------------------------------------------------------------ the page

/// A plain HTTP/1.1 request to an `http://` URL: the answer's head
/// (lower-cased) and body.
fn http_request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

/// The head of a plain HTTP/1.1 `GET /` answer, lower-cased.
fn http_head(url: &str) -> String {
    let authority = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    http_request("GET", &format!("http://{authority}/"), &[], "").0
}

/// A header's value in a lower-cased head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// The id `tower_http`'s `MakeRequestUuid` gives a request: a v4 UUID,
/// hyphenated, lower case.
fn assert_request_uuid(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("request id {id:?}: {e}"));
    assert_eq!(
        uuid.get_version(),
        Some(uuid::Version::Random),
        "request id {id:?}"
    );
    assert_eq!(uuid.hyphenated().to_string(), id, "request id {id:?}");
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

async fn text(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
}

async fn page_state(client: &Client) -> String {
    client
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .attr("data-state")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// What the page shows, for failure messages.
async fn describe(client: &Client) -> String {
    let body = match client.find(Locator::Css("main")).await {
        Ok(main) => main.text().await.unwrap_or_default(),
        Err(e) => format!("(no <main>: {e})"),
    };
    format!("state {:?}; page text:\n{body}", page_state(client).await)
}

/// Waits until the page's state is `wanted` and `also` holds; fails at once
/// on a state in `fatal`.
async fn wait_for_state<F, Fut>(client: &Client, wanted: &str, fatal: &[&str], also: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let state = page_state(client).await;
        if state == wanted && also().await {
            return;
        }
        if fatal.contains(&state.as_str()) {
            panic!(
                "waiting for {wanted:?}, the page reached {state:?}: {}",
                describe(client).await
            );
        }
        if Instant::now() > deadline {
            panic!(
                "the page did not reach {wanted:?} within {STATE_TIMEOUT:?}: {}",
                describe(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `m:ss` or `h:mm:ss` as seconds.
fn seconds(countdown: &str) -> Option<u64> {
    countdown
        .split(':')
        .try_fold(0u64, |acc, part| Some(acc * 60 + part.parse::<u64>().ok()?))
}

/// No psat token in the page beyond a short prefix, and no discover link
/// (it carries the token).
fn assert_no_token(source: &str) {
    assert!(
        !source.contains("anonymousContext"),
        "the page shows the discover link, which carries the token"
    );
    for (at, _) in source.match_indices("psat=") {
        let rest = &source[at + "psat=".len()..];
        let run = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .count();
        assert!(
            run <= 8,
            "the page shows {run} characters of a token: {}",
            &rest[..run.min(40)]
        );
    }
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, wherever the target dir is.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_owned();
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn save_screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
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
    auto.shown.assert_fresh(before.renewals + 1);
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
    manual.shown.assert_fresh(before.renewals + 1);
    assert_no_token(&client.source().await.unwrap());
    save_screenshot(client, "demo-widget.png").await;
}

/// The session the page shows, read at once (in one script, so that a
/// renewal cannot fall between two of the values).
#[derive(Debug, Clone)]
struct Shown {
    state: String,
    session_id: String,
    expires_at: String,
    renewals: u64,
    countdown: String,
    next_renewal: String,
}

impl Shown {
    async fn read(client: &Client) -> Self {
        let values = client
            .execute(
                "const text = (id) => document.getElementById(id).textContent.trim();
                 return [document.getElementById('status').dataset.state || '',
                         text('session-id'), text('expires-at'), text('renewals'),
                         text('countdown'), text('next-renewal')];",
                vec![],
            )
            .await
            .unwrap();
        let values: Vec<String> = serde_json::from_value(values.clone())
            .unwrap_or_else(|e| panic!("the page's values {values}: {e}"));
        let [
            state,
            session_id,
            expires_at,
            renewals,
            countdown,
            next_renewal,
        ] = <[String; 6]>::try_from(values).unwrap();
        Self {
            state,
            session_id,
            expires_at,
            renewals: renewals
                .parse()
                .unwrap_or_else(|e| panic!("renewals {renewals:?}: {e}")),
            countdown,
            next_renewal,
        }
    }

    /// Just after a renewal: counted, the countdown near the full life and
    /// the next automatic renewal scheduled about 15 s away.
    fn assert_fresh(&self, renewals: u64) {
        assert_eq!(self.renewals, renewals, "{self:?}");
        assert!(!self.expires_at.is_empty(), "{self:?}");
        let left = seconds(&self.countdown);
        assert!(
            left.is_some_and(|s| (TOKEN_LIFETIME_S - 3..=TOKEN_LIFETIME_S).contains(&s)),
            "the countdown after a renewal is not near {TOKEN_LIFETIME_S} s: {self:?}"
        );
        let next = self.next_renewal.strip_prefix("in ").and_then(seconds);
        assert!(
            next.is_some_and(|s| (AUTO_RENEW_AFTER_S - 3..=AUTO_RENEW_AFTER_S).contains(&s)),
            "the next renewal is not about {AUTO_RENEW_AFTER_S} s away: {self:?}"
        );
    }
}

/// A renewal the page showed.
struct Renewal {
    /// What the page shows once connected again.
    shown: Shown,
    /// The last countdown seen on the old token, in seconds.
    last_left_s: u64,
    /// How long after `wait_for_renewal` was called.
    after: Duration,
}

/// Waits until the page is connected with another session than `before`;
/// fails at once if it is refused, fails or lets the token expire.
async fn wait_for_renewal(client: &Client, before: &Shown, timeout: Duration) -> Renewal {
    let start = Instant::now();
    assert!(
        !before.session_id.is_empty(),
        "no session id shown: {before:?}"
    );
    let mut last_left_s =
        seconds(&before.countdown).unwrap_or_else(|| panic!("countdown {:?}", before.countdown));
    loop {
        let shown = Shown::read(client).await;
        if ["refused", "error", "expired"].contains(&shown.state.as_str()) {
            panic!(
                "waiting for a renewal, the page reached {:?}: {}",
                shown.state,
                describe(client).await
            );
        }
        if shown.session_id == before.session_id {
            if let Some(left) = seconds(&shown.countdown) {
                last_left_s = left;
            }
        } else if shown.state == "connected" {
            return Renewal {
                shown,
                last_left_s,
                after: start.elapsed(),
            };
        }
        if start.elapsed() > timeout {
            panic!(
                "no renewal within {timeout:?} (session {:?}): {}",
                before.session_id,
                describe(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let skip = std::env::var("TA_SKIP_BROWSER_TEST").ok();
    let ci = std::env::var("CI").ok();
    match skip_browser_test(skip.as_deref(), ci.as_deref()) {
        Ok(false) => {}
        Ok(true) => {
            println!(
                "TA_SKIP_BROWSER_TEST=1: skipping the browser test (it needs chromium and chromedriver)"
            );
            return;
        }
        Err(refused) => panic!("{refused}"),
    }
    let chromedriver = find_program(&["/usr/bin/chromedriver", "chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver not found; {INSTALL_HINT}"));
    let chromium = find_program(&[
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ])
    .unwrap_or_else(|| panic!("chromium not found; {INSTALL_HINT}"));

    let work = TempDir::new("browser-test");
    let profile = work.0.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let (mut server, urls) = start_server(&work.0);
    let (mut driver, driver_url) = start_chromedriver(&chromedriver);

    let capabilities = json!({
        "browserName": "chrome",
        // The browser's normal certificate checks: the page never calls the
        // emulator's HTTPS side (the SA does).
        "acceptInsecureCerts": false,
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                "--window-size=900,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebDriver session with {}: {e}; {INSTALL_HINT}",
                chromium.display()
            )
        });

    // The checks run in a task, so that a failed assertion still closes the
    // session (and its browser) before the processes are stopped.
    let checks = {
        let client = client.clone();
        tokio::spawn(async move {
            allowed_origin(&client, &urls).await;
            refused_origin(&client, &urls).await;
        })
    };
    let outcome = tokio::time::timeout(Duration::from_secs(180), checks).await;
    match tokio::time::timeout(Duration::from_secs(10), client.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("closing the WebDriver session: {e}"),
        Err(_) => eprintln!("closing the WebDriver session took more than 10 s"),
    }
    driver.stop();
    server.stop();
    drop(work);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the checks did not finish: {e}"),
        Err(_) => panic!("the checks took more than 180 s"),
    }
}
