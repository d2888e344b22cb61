//! The `ta-bootstrap` binary: the `token` contract, exit codes, `doctor`,
//! `inspect`, `demo` and the standalone `emulator`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, EmulatorConfig};

#[path = "common/bin.rs"]
mod bin;
use bin::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_exactly_one_json_object() {
    let d = deployment(EmulatorConfig::default()).await;
    let mut c = command();
    c.arg("token").args(args(&d)).args([
        "--allowed-origin",
        "https://contoso.com",
        "--allowed-origin",
        "https://Litware.com",
        "--session-id",
        "cli-session-1",
    ]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "allowedOrigins",
            "applicationSessionId",
            "discoverUri",
            "expiresAt",
            "token"
        ]
    );
    assert!(json["token"].as_str().unwrap().starts_with("psat="));
    assert_eq!(json["applicationSessionId"], "cli-session-1");
    assert_eq!(
        json["allowedOrigins"],
        serde_json::json!(["https://contoso.com", "https://litware.com"])
    );
    let expires = json["expiresAt"].as_str().unwrap();
    assert!(expires.ends_with('Z'));
    time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(
        json["discoverUri"]
            .as_str()
            .unwrap()
            .contains("anonymousContext=psat%253d")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reads_the_environment() {
    let d = deployment(EmulatorConfig::default()).await;
    let mut c = command();
    c.arg("token")
        .env("TA_DISCOVER_URL", d.emulator.discover_url())
        .env("TA_TOKEN_URL", d.emulator.token_url())
        .env("TA_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("TA_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("TA_ENDPOINT_ID", DEFAULT_ENDPOINT)
        .env("TA_CA_FILE", &d.ca)
        .env(
            "TA_ALLOWED_ORIGINS",
            "https://contoso.com;https://litware.com",
        );
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowedOrigins"].as_array().unwrap().len(), 2);
    // A fresh UUID v4 session id.
    let id = json["applicationSessionId"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reads_a_config_file_and_flags_win() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("ta-cli-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), format!("{DEFAULT_CLIENT_SECRET}\n")).unwrap();
    let config = dir.join("ta.toml");
    std::fs::write(
        &config,
        format!(
            "discover-url = \"{}\"\ntoken-url = \"{}\"\nclient-id = \"{DEFAULT_CLIENT_ID}\"\nendpoint-id = \"{DEFAULT_ENDPOINT}\"\nca-file = \"{}\"\nclient-secret-file = \"secret\"\nallowed-origins = [\"https://contoso.com\", \"https://litware.com\"]\nlisten = \"127.0.0.1:1\"\n",
            d.emulator.discover_url(),
            d.emulator.token_url(),
            d.ca.display()
        ),
    )
    .unwrap();
    let mut c = command();
    c.arg("token").arg("--config").arg(&config);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowedOrigins"].as_array().unwrap().len(), 2);
    // A flag wins over the file; a credential flag replaces the file's.
    let mut c = command();
    c.arg("token")
        .arg("--config")
        .arg(&config)
        .args(["--allowed-origin", "https://fabrikam.com"])
        .env("TA_CLIENT_SECRET", "wrong");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AADSTS7000215"));
    // An empty variable is unset: the file's credential is used.
    let mut c = command();
    c.arg("token")
        .arg("--config")
        .arg(&config)
        .env("TA_CLIENT_SECRET", "");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Two credentials at the same level are refused.
    let mut c = command();
    c.arg("token")
        .arg("--config")
        .arg(&config)
        .env("TA_CLIENT_SECRET", "x")
        .env("TA_CLIENT_SECRET_FILE", dir.join("secret"));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("give only one of"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `token` and checks the failure contract: nothing on stdout, one
/// `error:` line on stderr, the exit code.
async fn failure(
    d: &Deployment,
    extra: &[&str],
    replace: Option<(&str, &str)>,
    code: i32,
) -> String {
    let mut argv = args(d);
    if let Some((flag, value)) = replace {
        let i = argv.iter().position(|a| a == flag).unwrap();
        argv[i + 1] = value.to_owned();
    }
    let mut c = command();
    c.arg("token").args(argv).args(extra);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty: {}",
        text(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failures_have_one_line_and_an_exit_code_by_kind() {
    let d = deployment(EmulatorConfig::default()).await;
    let origin = ["--allowed-origin", "https://contoso.com"];

    let e = failure(
        &d,
        &origin,
        Some(("--client-secret", "wrong-secret-sentinel")),
        3,
    )
    .await;
    assert!(e.contains("AADSTS7000215") && e.contains("hint:"), "{e}");
    assert!(!e.contains("wrong-secret-sentinel"), "{e}");

    let e = failure(
        &d,
        &origin,
        Some(("--endpoint-id", "sip:nobody@contoso.com")),
        4,
    )
    .await;
    assert!(
        e.contains("ApplicationNotFound") && e.contains("correlation id"),
        "{e}"
    );

    let e = failure(&d, &origin, Some(("--ca-file", "/dev/null")), 2).await;
    assert!(e.contains("error: config:"), "{e}");

    let e = failure(
        &d,
        &["--allowed-origin", "https://contoso.com/page"],
        None,
        2,
    )
    .await;
    assert!(e.contains("path"), "{e}");

    let e = failure(&d, &["--allowed-origin", "http://contoso.com"], None, 2).await;
    assert!(e.contains("plain http"), "{e}");

    let e = failure(&d, &[], None, 2).await;
    assert!(e.contains("--allowed-origin"), "{e}");

    // --tenant beside a --token-url of another tenant: refused, not ignored.
    let e = failure(
        &d,
        &[
            "--allowed-origin",
            "https://contoso.com",
            "--tenant",
            "not-the-emulators-tenant",
        ],
        None,
        2,
    )
    .await;
    assert!(e.contains("is not a token endpoint of --tenant"), "{e}");

    // The emulator's CA not trusted: TLS, with the --ca-file hint.
    let mut argv = args(&d);
    argv.truncate(argv.len() - 2);
    let mut c = command();
    c.arg("token").args(argv).args(origin);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_consent_is_exit_code_4_naming_the_rel() {
    let d = deployment(EmulatorConfig::default().with_app(|a| a.endpoints[0].anon_tokens = false))
        .await;
    let e = failure(&d, &["--allowed-origin", "https://contoso.com"], None, 4).await;
    assert!(
        e.contains("anonApplicationTokens") && e.contains("consent"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let mut c = command();
    c.args(["token", "--client-id", "x"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_each_step() {
    let d = deployment(EmulatorConfig::default()).await;
    let mut c = command();
    c.arg("doctor")
        .args(args(&d))
        .args(["--mint", "--allowed-origin", "https://contoso.com"]);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches("[PASS]").count(), 7, "{stdout}");
    assert!(stdout.contains("rel namespace service:"), "{stdout}");
    assert!(!stdout.contains("psat="), "{stdout}");

    let d = deployment(EmulatorConfig::default().with_app(|a| a.endpoints[0].anon_tokens = false))
        .await;
    let mut c = command();
    c.arg("doctor").args(args(&d));
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("[FAIL] anonApplicationTokens consented"),
        "{stdout}"
    );
    assert!(stdout.contains("consent"), "{stdout}");

    let mut argv = args(&d);
    let i = argv.iter().position(|a| a == "--client-secret").unwrap();
    argv[i + 1] = "nope".into();
    let mut c = command();
    c.arg("doctor").args(argv);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("[FAIL] AAD token") && stdout.contains("AADSTS7000215"),
        "{stdout}"
    );
    assert!(stdout.contains("[SKIP]"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_no_flags() {
    let out = run({
        let mut c = command();
        c.arg("demo");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("psat=eyJ"));
    assert!(lines[1].starts_with("https://127.0.0.1:"));
    let stderr = text(&out.stderr);
    for step in [
        "discovery",
        "401 Unauthorized",
        "Azure AD",
        "capabilities",
        "anonApplicationTokens",
        "Access-Control-Allow-Origin: https://contoso.com",
    ] {
        assert!(stderr.contains(step), "{step}: {stderr}");
    }
    assert!(!stderr.contains("eyJ"), "no token in the narration");

    // inspect reads what demo printed.
    let mut c = command();
    c.args(["inspect", lines[1]]);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.starts_with("NOT VERIFIED"), "{stdout}");
    assert!(
        stdout.contains("sip:helpdesk@contoso.com") && stdout.contains("https://contoso.com"),
        "{stdout}"
    );
    let mut c = command();
    c.args(["inspect", "not-a-token"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_emulator_serves_token() {
    let ca = std::env::temp_dir().join(format!("ta-standalone-ca-{}.pem", std::process::id()));
    let mut child = command()
        .args(["emulator", "--listen", "127.0.0.1:0", "--ca-out"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("stats:");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap()
            .trim()
            .to_owned()
    };
    let discover = field("discover URL:");
    let token_url = field("token URL:");
    let mut c = command();
    c.args([
        "token",
        "--discover-url",
        &discover,
        "--token-url",
        &token_url,
    ])
    .args([
        "--client-id",
        &field("TA_CLIENT_ID="),
        "--client-secret",
        &field("TA_CLIENT_SECRET="),
    ])
    .args([
        "--endpoint-id",
        &field("TA_ENDPOINT_ID="),
        "--allowed-origin",
        "https://contoso.com",
    ])
    .arg("--ca-file")
    .arg(&ca);
    let out = run(c).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&ca);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"token\":\"psat="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_widgets_and_stops_gracefully_on_sigterm() {
    let d = deployment(EmulatorConfig::default()).await;
    let (mut child, url) = spawn_serve(&d).await;
    let transport = ta_hyper::HyperTransport::builder().build().unwrap();
    let request = http::Request::post(&url)
        .header("origin", "https://contoso.com")
        .body(bytes::Bytes::new())
        .unwrap();
    let response = ta_protocol::Transport::send(&transport, request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("psat="));
    let pid = child.id().to_string();
    let status = tokio::task::spawn_blocking(move || {
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_a_widget_request_in_flight_finish() {
    use ta_emulator::{FaultKind, FaultRule, Route, Trigger};
    // Every mint takes 3 s upstream; SIGINT (Ctrl-C) arrives 1 s into one.
    let d = deployment(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Latency { millis: 3_000 },
        Trigger::Always,
    )))
    .await;
    let (mut child, url) = spawn_serve(&d).await;
    let in_flight = tokio::spawn(async move {
        let transport = ta_hyper::HyperTransport::builder().build().unwrap();
        let request = http::Request::post(&url)
            .header("origin", "https://contoso.com")
            .body(bytes::Bytes::new())
            .unwrap();
        ta_protocol::Transport::send(&transport, request).await
    });
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!in_flight.is_finished(), "the request is still in flight");
    let pid = child.id().to_string();
    let exited = tokio::task::spawn_blocking(move || {
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        child.wait().unwrap()
    });
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("psat="));
    assert_eq!(exited.await.unwrap().code(), Some(0));
    assert_eq!(d.emulator.stats().requests(Route::Mint), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_forever_for_a_half_sent_request() {
    use std::io::Write as _;
    let d = deployment(EmulatorConfig::default()).await;
    let (mut child, url) = spawn_serve(&d).await;
    let address = url
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches("/v1/widget-token")
        .to_owned();
    // A client that starts a request and never finishes it.
    let mut stalled = std::net::TcpStream::connect(&address).unwrap();
    stalled
        .write_all(b"POST /v1/widget-token HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let pid = child.id().to_string();
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        child.wait().unwrap()
    })
    .await
    .unwrap();
    drop(stalled);
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
