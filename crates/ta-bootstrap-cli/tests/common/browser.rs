//! Shared set-up of the browser tests: skipping (never in CI), the
//! processes (`serve --emulator` and chromedriver, stopped when dropped), a
//! WebDriver session on headless Chromium with the browser's normal
//! certificate checks, DevTools commands through chromedriver, plain HTTP
//! requests, and readers of the demo page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub const BIN: &str = env!("CARGO_BIN_EXE_ta-bootstrap");

/// How long the page may take to reach a state.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `serve --emulator` may take to print its three lines.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

macro_rules! install {
    () => {
        "install Debian's `chromium` and `chromium-driver` packages \
         (`apt-get install -y --no-install-recommends chromium chromium-driver`, as .ci/run does)"
    };
}

pub const INSTALL_HINT: &str = concat!(
    install!(),
    ", or, on a developer's machine (not in CI, where the CI environment variable is set), \
     set TA_SKIP_BROWSER_TEST=1 to skip this test"
);

// ------------------------------------------------------------ skipping

/// Whether `CI` (its value, if set) says that this runs in CI: set, not
/// empty, and not `false` or `0`.
pub fn in_ci(ci: Option<&str>) -> bool {
    ci.map(str::trim)
        .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Whether to skip the browser test, from the values of
/// `TA_SKIP_BROWSER_TEST` and `CI`: `TA_SKIP_BROWSER_TEST=1` skips it, but
/// not in CI, where it is an error.
pub fn skip_browser_test(skip: Option<&str>, ci: Option<&str>) -> Result<bool, String> {
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

// ------------------------------------------------------------ processes

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped,
/// so that a failing assertion leaves nothing running.
pub struct ChildGuard {
    pub name: &'static str,
    pub child: Child,
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
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
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
pub fn find_program(candidates: &[&str]) -> Option<PathBuf> {
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

pub fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free loopback port (chromedriver accepts local
/// connections only) and waits until it accepts connections.
pub fn start_chromedriver(program: &Path) -> (ChildGuard, String) {
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

/// The URLs `serve --emulator` prints, and its log.
#[derive(Debug, Clone)]
pub struct Urls {
    pub token: String,
    pub allowed: String,
    pub refused: String,
    /// What the server logs (stderr), line by line, as it comes.
    pub log: ServerLog,
}

/// The lines a server wrote to stderr (each is also passed on to the
/// test's stderr).
#[derive(Debug, Clone, Default)]
pub struct ServerLog(Arc<Mutex<Vec<String>>>);

impl ServerLog {
    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The lines so far that are JSON (`--log-format json`), parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// Starts `ta-bootstrap serve --emulator --listen 127.0.0.1:0
/// --emulator-token-lifetime <token_lifetime_s>` with `extra` arguments,
/// logging JSON, and reads its three lines.
pub fn start_server(cwd: &Path, token_lifetime_s: u64, extra: &[&str]) -> (ChildGuard, Urls) {
    let child = Command::new(BIN)
        .args(["--log-format", "json", "serve", "--emulator"])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--emulator-token-lifetime", &token_lifetime_s.to_string()])
        .args(extra)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard {
        name: "ta-bootstrap serve --emulator",
        child,
    };
    let log = ServerLog::default();
    let stderr = guard.child.stderr.take().unwrap();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                log.0.lock().unwrap().push(line);
            }
        });
    }
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
            log,
        },
    )
}

// ------------------------------------------------------------ the page

/// A plain HTTP/1.1 request to an `http://` URL: the answer's head
/// (lower-cased) and body.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, String) {
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
    // Until the end of the body its Content-Length announces (a server
    // may keep the connection open despite `Connection: close`), or EOF.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..read]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        if length.is_some_and(|length| answer.len() >= end + 4 + length) {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

/// The head of a plain HTTP/1.1 `GET /` answer, lower-cased.
pub fn http_head(url: &str) -> String {
    let authority = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    http_request("GET", &format!("http://{authority}/"), &[], "").0
}

/// A header's value in a lower-cased head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// The id `tower_http`'s `MakeRequestUuid` gives a request: a v4 UUID,
/// hyphenated, lower case.
pub fn assert_request_uuid(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("request id {id:?}: {e}"));
    assert_eq!(
        uuid.get_version(),
        Some(uuid::Version::Random),
        "request id {id:?}"
    );
    assert_eq!(uuid.hyphenated().to_string(), id, "request id {id:?}");
}

pub async fn text(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
}

pub async fn page_state(client: &Client) -> String {
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
pub async fn describe(client: &Client) -> String {
    let body = match client.find(Locator::Css("main")).await {
        Ok(main) => main.text().await.unwrap_or_default(),
        Err(e) => format!("(no <main>: {e})"),
    };
    format!("state {:?}; page text:\n{body}", page_state(client).await)
}

/// Waits until the page's state is `wanted` and `also` holds; fails at once
/// on a state in `fatal`.
pub async fn wait_for_state<F, Fut>(client: &Client, wanted: &str, fatal: &[&str], also: F)
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
pub fn seconds(countdown: &str) -> Option<u64> {
    countdown
        .split(':')
        .try_fold(0u64, |acc, part| Some(acc * 60 + part.parse::<u64>().ok()?))
}

pub fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, wherever the target dir is.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_owned();
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn save_screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.unwrap();
    write_screenshot(&png, name)
}

/// A screenshot of the element with `id` alone, saved as `name`.
pub async fn save_element_screenshot(client: &Client, id: &str, name: &str) -> PathBuf {
    // A screenshot holds what is in the viewport: the element first.
    client
        .execute(
            "document.getElementById(arguments[0]).scrollIntoView({ block: 'start' });",
            vec![json!(id)],
        )
        .await
        .unwrap();
    let element = client.find(Locator::Id(id)).await.unwrap();
    let png = element.screenshot().await.unwrap();
    write_screenshot(&png, name)
}

fn write_screenshot(png: &[u8], name: &str) -> PathBuf {
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
}

/// The session the page shows, read at once (in one script, so that a
/// renewal cannot fall between two of the values).
#[derive(Debug, Clone)]
pub struct Shown {
    pub state: String,
    pub session_id: String,
    pub expires_at: String,
    pub renewals: u64,
    pub countdown: String,
    pub next_renewal: String,
}

impl Shown {
    pub async fn read(client: &Client) -> Self {
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

    /// Just after a renewal: counted, the countdown near the full
    /// `lifetime_s` and the next automatic renewal about `renew_after_s`
    /// away.
    pub fn assert_fresh(&self, renewals: u64, lifetime_s: u64, renew_after_s: u64) {
        assert_eq!(self.renewals, renewals, "{self:?}");
        assert!(!self.expires_at.is_empty(), "{self:?}");
        let left = seconds(&self.countdown);
        assert!(
            left.is_some_and(|s| (lifetime_s - 3..=lifetime_s).contains(&s)),
            "the countdown after a renewal is not near {lifetime_s} s: {self:?}"
        );
        let next = self.next_renewal.strip_prefix("in ").and_then(seconds);
        assert!(
            next.is_some_and(|s| (renew_after_s - 3..=renew_after_s).contains(&s)),
            "the next renewal is not about {renew_after_s} s away: {self:?}"
        );
    }
}

/// A renewal the page showed.
pub struct Renewal {
    /// What the page shows once connected again.
    pub shown: Shown,
    /// The last countdown seen on the old token, in seconds.
    pub last_left_s: u64,
    /// How long after `wait_for_renewal` was called.
    pub after: Duration,
}

/// Waits until the page is connected with another session than `before`;
/// fails at once if it is refused, fails or lets the token expire.
pub async fn wait_for_renewal(client: &Client, before: &Shown, timeout: Duration) -> Renewal {
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

/// No psat token in the page beyond a short prefix, and no discover link
/// (it carries the token).
pub fn assert_no_token(source: &str) {
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

// ------------------------------------------------------------ the session

/// `serve --emulator`, chromedriver and a WebDriver session on headless
/// Chromium, with the browser's normal certificate checks (the page never
/// calls the emulator's HTTPS side: the SA does).
pub struct Browser {
    pub client: Client,
    pub urls: Urls,
    pub driver_url: String,
    server: ChildGuard,
    driver: ChildGuard,
    work: TempDir,
}

impl Browser {
    /// Starts everything, with the emulator's tokens living
    /// `token_lifetime_s`; `None` when the test is skipped
    /// (`TA_SKIP_BROWSER_TEST=1`, outside CI).
    pub async fn start(name: &str, token_lifetime_s: u64) -> Option<Self> {
        Self::start_with(name, token_lifetime_s, &[]).await
    }

    /// As [`start`](Self::start), with more arguments for `serve`.
    pub async fn start_with(name: &str, token_lifetime_s: u64, extra: &[&str]) -> Option<Self> {
        let skip = std::env::var("TA_SKIP_BROWSER_TEST").ok();
        let ci = std::env::var("CI").ok();
        match skip_browser_test(skip.as_deref(), ci.as_deref()) {
            Ok(false) => {}
            Ok(true) => {
                println!(
                    "TA_SKIP_BROWSER_TEST=1: skipping the browser test (it needs chromium and chromedriver)"
                );
                return None;
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
        let work = TempDir::new(name);
        let profile = work.0.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let (server, urls) = start_server(&work.0, token_lifetime_s, extra);
        let (driver, driver_url) = start_chromedriver(&chromedriver);
        let capabilities = json!({
            "browserName": "chrome",
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
        Some(Self {
            client,
            urls,
            driver_url,
            server,
            driver,
            work,
        })
    }

    /// Runs `checks` in a task (so that a failed assertion still closes the
    /// session and its browser), within `limit`, then stops everything and
    /// fails as the checks did.
    pub async fn run<F, Fut>(self, limit: Duration, checks: F)
    where
        F: FnOnce(Client, Urls, String) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Self {
            client,
            urls,
            driver_url,
            mut server,
            mut driver,
            work,
        } = self;
        let task = tokio::spawn(checks(client.clone(), urls, driver_url));
        let outcome = tokio::time::timeout(limit, task).await;
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
            Err(_) => panic!("the checks took more than {limit:?}"),
        }
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver
/// (`goog/cdp/execute`) for the session of `client`: its result.
pub async fn cdp(
    client: &Client,
    driver_url: &str,
    command: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let session = client.session_id().await.unwrap().unwrap();
    let body = json!({ "cmd": command, "params": params }).to_string();
    let url = format!("{driver_url}/session/{session}/goog/cdp/execute");
    let (head, answer) = tokio::task::spawn_blocking(move || {
        http_request("POST", &url, &[("Content-Type", "application/json")], &body)
    })
    .await
    .unwrap();
    assert!(
        head.starts_with("http/1.1 200"),
        "{command}: {head}\n{answer}"
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["value"].clone()
}
