//! Shared set-up of the tests that run the `ta-bootstrap` binary: an
//! emulator with its CA in a file, the flags pointing at it, and `serve`
//! started on an ephemeral port with its stderr collected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_ta-bootstrap");

pub struct Deployment {
    pub emulator: Emulator,
    pub ca: PathBuf,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca);
    }
}

pub async fn deployment(config: EmulatorConfig) -> Deployment {
    let emulator = Emulator::start(config).await.unwrap();
    let ca = std::env::temp_dir().join(format!("ta-cli-ca-{}.pem", emulator.addr().port()));
    emulator.write_ca_pem(&ca).unwrap();
    Deployment { emulator, ca }
}

/// The binary, with no TA_ variable inherited.
pub fn command() -> Command {
    without_ta_env(Command::new(BIN))
}

/// The binary run by `sh` with at most `nofile` file descriptors
/// (`ulimit -n`), with no TA_ variable inherited.
pub fn command_with_fd_limit(nofile: u32) -> Command {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
        BIN,
    ]);
    without_ta_env(command)
}

fn without_ta_env(mut command: Command) -> Command {
    for (key, _) in std::env::vars() {
        if key.starts_with("TA_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

/// The deployment's flags, without the credential.
pub fn deployment_args(d: &Deployment) -> Vec<String> {
    vec![
        "--discover-url".into(),
        d.emulator.discover_url(),
        "--token-url".into(),
        d.emulator.token_url(),
        "--client-id".into(),
        DEFAULT_CLIENT_ID.into(),
        "--endpoint-id".into(),
        DEFAULT_ENDPOINT.into(),
        "--ca-file".into(),
        d.ca.display().to_string(),
    ]
}

/// The deployment's flags with its client secret (`--ca-file` stays last).
pub fn args(d: &Deployment) -> Vec<String> {
    let mut args = deployment_args(d);
    let ca = args.len() - 2;
    args.splice(
        ca..ca,
        [
            "--client-secret".to_owned(),
            DEFAULT_CLIENT_SECRET.to_owned(),
        ],
    );
    args
}

pub async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `serve`: the process, its URL, its stdout lines after the
/// first, and its stderr lines so far. Killed when dropped.
pub struct Served {
    child: Option<Child>,
    pub url: String,
    pub stdout: Vec<String>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// The service's base (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/v1/widget-token").to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process, which the caller then owns.
    pub fn into_child(mut self) -> Child {
        self.child.take().unwrap()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most 20 s) for a stderr line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(line) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no log line with {needle:?}; stderr:\n{}",
            self.stderr.lock().unwrap().join("\n")
        );
    }

    pub fn log_count(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SIGTERM, then the exit code.
    pub async fn stop(mut self) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait().unwrap().code())
            .await
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the binary with `args` (`serve …` and its flags), reads the
/// first stdout line (`serving widget tokens on URL`) and `extra_lines`
/// more, and collects stderr in the background.
pub async fn spawn_serve_with(args: Vec<String>, extra_lines: usize) -> Served {
    spawn_serve_with_env(args, extra_lines, &[]).await
}

/// The same, with environment variables set.
pub async fn spawn_serve_with_env(
    args: Vec<String>,
    extra_lines: usize,
    env: &[(&str, &str)],
) -> Served {
    let mut command = command();
    command.envs(env.iter().copied());
    spawn_serve_command(command, args, extra_lines).await
}

/// Starts `command` with `args` as [`spawn_serve_with`] does.
pub async fn spawn_serve_command(
    mut command: Command,
    args: Vec<String>,
    extra_lines: usize,
) -> Served {
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        // Lossily: a line that is not UTF-8 must not stop the reading.
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            sink.lock()
                .unwrap()
                .push(line.trim_end_matches('\r').to_owned());
        }
    });
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..=extra_lines {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line.trim().to_owned());
        }
        // Keep draining so that the process never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        lines
    })
    .await
    .unwrap();
    let Some(url) = lines[0].strip_prefix("serving widget tokens on ") else {
        panic!(
            "unexpected first line {:?}; stderr:\n{}",
            lines[0],
            stderr.lock().unwrap().join("\n")
        );
    };
    Served {
        url: url.to_owned(),
        stdout: lines[1..].to_vec(),
        child: Some(child),
        stderr,
    }
}

/// Starts `serve` against the deployment on an ephemeral port; returns the
/// child process and the widget-token URL.
pub async fn spawn_serve(d: &Deployment) -> (Child, String) {
    let mut args_ = vec!["serve".to_owned()];
    args_.extend(args(d));
    args_.extend([
        "--allowed-origin".to_owned(),
        "https://contoso.com".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]);
    let served = spawn_serve_with(args_, 0).await;
    let url = served.url.clone();
    (served.into_child(), url)
}
