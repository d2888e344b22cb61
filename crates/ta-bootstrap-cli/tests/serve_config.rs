//! `serve` as operators run it: the `--config` file, reloads on SIGHUP and
//! with `--watch-config` (credential rotation, allowlist, refused reloads),
//! TLS on the listener, JSON logs, and `--emulator`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, EmulatorConfig};
use ta_protocol::Transport as _;

#[path = "common/bin.rs"]
mod bin;
use bin::*;

/// A fresh directory under the system's temporary one.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ta-serve-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        // Write then rename, as deployment tools do: no half-written file.
        let tmp = self.path(&format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration file for the deployment; the secret is read from
/// `secret.txt` beside it (a relative path).
fn config_text(d: &Deployment, origins: &[&str]) -> String {
    format!(
        r#"# serve's settings
discover-url = "{}"
token-url = "{}"
client-id = "{DEFAULT_CLIENT_ID}"
endpoint-id = "{DEFAULT_ENDPOINT}"
ca-file = "{}"
client-secret-file = "secret.txt"
allowed-origins = [{}]
"#,
        d.emulator.discover_url(),
        d.emulator.token_url(),
        d.ca.display(),
        origins
            .iter()
            .map(|o| format!("\"{o}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

async fn post(client: &ta_hyper::HyperTransport, url: &str, origin: &str) -> http::Response<Bytes> {
    let request = http::Request::post(url)
        .header("origin", origin)
        .body(Bytes::new())
        .unwrap();
    client.send(request).await.unwrap()
}

/// The status of a widget-token request from `origin`.
async fn status(client: &ta_hyper::HyperTransport, url: &str, origin: &str) -> u16 {
    post(client, url, origin).await.status().as_u16()
}

async fn get(client: &ta_hyper::HyperTransport, url: &str) -> http::Response<Bytes> {
    client
        .send(http::Request::get(url).body(Bytes::new()).unwrap())
        .await
        .unwrap()
}

/// Polls until `check` holds (at most 20 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn serve_args(config: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// `serve` with `serve.toml` in `dir` and a wrong secret in `secret.txt`,
/// once its readiness names the authentication failure (AAD refused the
/// secret); a client and the readiness URL.
async fn serve_with_a_wrong_secret(
    d: &Deployment,
    dir: &TempDir,
) -> (Served, ta_hyper::HyperTransport, String) {
    dir.write("secret.txt", "not-the-secret\n");
    let config = dir.write("serve.toml", &config_text(d, &["https://contoso.com"]));
    let served = spawn_serve_with(serve_args(&config, &[]), 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let readyz = format!("{}/readyz", served.base());
    eventually("readyz names the authentication failure", || async {
        let r = get(&client, &readyz).await;
        r.status() == 503 && String::from_utf8_lossy(r.body()).contains("upstream_authentication")
    })
    .await;
    (served, client, readyz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_the_secret_and_the_allowlist_and_refuses_a_bad_reload() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("sighup");
    let (served, client, readyz) = serve_with_a_wrong_secret(&d, &dir).await;
    let refused = post(&client, &served.url, "https://contoso.com").await;
    assert_eq!(refused.status(), 503);

    // Rotation: the secret file gets the right secret, then SIGHUP.
    dir.write("secret.txt", &format!("{DEFAULT_CLIENT_SECRET}\n"));
    served.signal("HUP");
    served.wait_for_log("configuration reloaded").await;
    eventually("ready with the new secret", || async {
        get(&client, &readyz).await.status() == 200
    })
    .await;
    let minted = post(&client, &served.url, "https://contoso.com").await;
    assert_eq!(minted.status(), 200, "{:?}", minted.body());
    // The wrong secret got no token: this is the first.
    assert_eq!(d.emulator.stats().aad_tokens_issued, 1);

    // A new allowlist applies to the next request.
    dir.write("serve.toml", &config_text(&d, &["https://litware.com"]));
    served.signal("HUP");
    eventually("the new origin is served", || async {
        post(&client, &served.url, "https://litware.com")
            .await
            .status()
            == 200
    })
    .await;
    assert_eq!(
        status(&client, &served.url, "https://contoso.com").await,
        403
    );

    // Invalid reloads are refused as a whole, and the old settings serve on.
    let before = served.log_count("configuration reload refused");
    dir.write(
        "serve.toml",
        &config_text(&d, &["https://contoso.com"]).replace("allowed-origins", "allowed-origin"),
    );
    served.signal("HUP");
    let line = served.wait_for_log("unknown field `allowed-origin`").await;
    assert!(line.contains("configuration reload refused"), "{line}");
    dir.write("serve.toml", &config_text(&d, &["ftp://contoso.com"]));
    served.signal("HUP");
    eventually("the second refusal is logged", || async {
        served.log_count("configuration reload refused") >= before + 2
    })
    .await;
    // A secret file that vanished is refused too (the allowlist with it).
    dir.write("serve.toml", &config_text(&d, &["https://contoso.com"]));
    std::fs::remove_file(dir.path("secret.txt")).unwrap();
    served.signal("HUP");
    eventually("the third refusal is logged", || async {
        served.log_count("configuration reload refused") >= before + 3
    })
    .await;
    assert_eq!(
        status(&client, &served.url, "https://litware.com").await,
        200
    );
    assert_eq!(
        status(&client, &served.url, "https://contoso.com").await,
        403
    );
    // No secret in the logs, whatever happened.
    let logs = served.stderr.lock().unwrap().join("\n");
    assert!(!logs.contains(DEFAULT_CLIENT_SECRET), "{logs}");
    assert!(!logs.contains("not-the-secret"));
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_reloads_when_a_file_changes() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("watch");
    dir.write("secret.txt", DEFAULT_CLIENT_SECRET);
    let config = dir.write("serve.toml", &config_text(&d, &["https://contoso.com"]));
    let served = spawn_serve_with(serve_args(&config, &["--watch-config"]), 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    assert_eq!(
        status(&client, &served.url, "https://contoso.com").await,
        200
    );
    dir.write("serve.toml", &config_text(&d, &["https://fabrikam.com"]));
    served.wait_for_log("a configuration file changed").await;
    eventually("the new origin is served", || async {
        post(&client, &served.url, "https://fabrikam.com")
            .await
            .status()
            == 200
    })
    .await;
    // Settings that need a restart are named, not silently ignored.
    dir.write(
        "serve.toml",
        &format!(
            "{}per-client-rate = 5\n",
            config_text(&d, &["https://fabrikam.com"])
        ),
    );
    let line = served.wait_for_log("apply only after a restart").await;
    assert!(line.contains("per-client-rate"), "{line}");
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_errors_name_the_file_and_the_key() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("errors");
    let config = dir.write(
        "serve.toml",
        &format!(
            "{}listen-address = \"127.0.0.1:0\"\n",
            config_text(&d, &["https://contoso.com"])
        ),
    );
    let mut c = command();
    c.args(serve_args(&config, &[]));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("serve.toml"), "{stderr}");
    assert!(stderr.contains("listen-address"), "{stderr}");
    // Flags win over the file; a rate of 0 is refused, not rounded up.
    let config = dir.write("serve.toml", &config_text(&d, &["https://contoso.com"]));
    dir.write("secret.txt", DEFAULT_CLIENT_SECRET);
    let mut c = command();
    c.args(serve_args(&config, &["--per-client-rate", "0"]));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let mut c = command();
    c.args(serve_args(&config, &[])).env("TA_GLOBAL_RATE", "0");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // No upstream request for a configuration that does not validate.
    assert_eq!(d.emulator.stats().total_requests(), 0);
}

/// A self-signed certificate for 127.0.0.1, as (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (key.cert.pem(), key.signing_key.serialize_pem())
}

fn trusting(pem: &str) -> ta_hyper::HyperTransport {
    ta_hyper::HyperTransport::builder()
        .webpki_roots(false)
        .add_root_certificates_pem(pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_reloads_the_certificate_on_sighup() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("tls");
    let (cert1, key1) = self_signed();
    dir.write("tls.crt", &cert1);
    dir.write("tls.key", &key1);
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(&d));
    args.extend(
        [
            "--allowed-origin",
            "https://contoso.com",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &dir.path("tls.crt").display().to_string(),
            "--tls-key",
            &dir.path("tls.key").display().to_string(),
        ]
        .map(str::to_owned),
    );
    let served = spawn_serve_with(args, 0).await;
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let first = post(&trusting(&cert1), &served.url, "https://contoso.com").await;
    assert_eq!(first.status(), 200, "{:?}", first.body());
    // A new pair: new connections get it.
    let (cert2, key2) = self_signed();
    dir.write("tls.crt", &cert2);
    dir.write("tls.key", &key2);
    served.signal("HUP");
    served.wait_for_log("configuration reloaded").await;
    let second = post(&trusting(&cert2), &served.url, "https://contoso.com").await;
    assert_eq!(second.status(), 200);
    let old = trusting(&cert1)
        .send(
            http::Request::post(&served.url)
                .header("origin", "https://contoso.com")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert!(old.is_err(), "the old certificate is still served");
    // A key that does not match the certificate is refused; the pair in
    // use stays.
    dir.write("tls.key", &self_signed().1);
    served.signal("HUP");
    let line = served.wait_for_log("configuration reload refused").await;
    assert!(line.contains("TLS"), "{line}");
    let third = post(&trusting(&cert2), &served.url, "https://contoso.com").await;
    assert_eq!(third.status(), 200);
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_no_token() {
    let d = deployment(EmulatorConfig::default()).await;
    let mut args = vec![
        "serve".to_owned(),
        "--log-format".to_owned(),
        "json".to_owned(),
    ];
    args.extend(bin::args(&d));
    args.extend(
        [
            "--allowed-origin",
            "https://contoso.com",
            "--listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned),
    );
    let served = spawn_serve_with(args, 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let response = post(&client, &served.url, "https://contoso.com").await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let line = served.wait_for_log("served a widget token").await;
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["span"]["request_id"], id.as_str(), "{line}");
    assert_eq!(event["fields"]["origin"], "https://contoso.com");
    let logs = served.stderr.lock().unwrap().join("\n");
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!logs.contains(&token));
    assert!(!logs.contains(DEFAULT_CLIENT_SECRET));
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_emulator_needs_no_other_flag() {
    // A deployment left in the environment (a configuration file that does
    // not exist, a discover URL nobody serves) neither stops `--emulator`
    // nor leaks into it.
    let served = spawn_serve_with_env(
        vec![
            "serve".to_owned(),
            "--emulator".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ],
        2,
        &[
            ("TA_CONFIG", "/nonexistent/ta-bootstrap.toml"),
            (
                "TA_DISCOVER_URL",
                "https://discover.invalid/platformservice/discover",
            ),
        ],
    )
    .await;
    served
        .wait_for_log("the configuration file is not read")
        .await;
    let allowed = served.stdout[0]
        .strip_prefix("demo widget (allowed origin): ")
        .unwrap()
        .to_owned();
    let refused = served.stdout[1]
        .strip_prefix("demo widget (origin not on the allowlist): ")
        .unwrap()
        .to_owned();
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let page = get(&client, &allowed).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let origin = allowed.trim_end_matches('/');
    let minted = post(&client, &served.url, origin).await;
    assert_eq!(minted.status(), 200, "{:?}", minted.body());
    assert_eq!(minted.headers()["access-control-allow-origin"], origin);
    let body: serde_json::Value = serde_json::from_slice(minted.body()).unwrap();
    assert!(body["expiresIn"].as_u64().unwrap() <= 120);
    let other = post(&client, &served.url, refused.trim_end_matches('/')).await;
    assert_eq!(other.status(), 403);
    // SIGHUP (whose default action ends a process) is taken over: nothing
    // to reload, and the service goes on.
    served.signal("HUP");
    served.wait_for_log("SIGHUP: nothing to reload").await;
    let again = post(&client, &served.url, origin).await;
    assert_eq!(again.status(), 200);
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_http_origins_need_the_development_switch() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("loopback");
    let config = dir.write("serve.toml", &config_text(&d, &["http://127.0.0.1:3000"]));
    dir.write("secret.txt", DEFAULT_CLIENT_SECRET);
    // Refused as it is: a plain http origin.
    let mut c = command();
    c.args(serve_args(&config, &[]));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("site allowlist"), "{stderr}");
    // --allow-insecure-loopback admits loopback http origins, and no others.
    let mut c = command();
    c.args(serve_args(&config, &["--allow-insecure-loopback"]))
        .args(["--allowed-origin", "http://contoso.com"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let served = spawn_serve_with(serve_args(&config, &["--allow-insecure-loopback"]), 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let minted = post(&client, &served.url, "http://127.0.0.1:3000").await;
    assert_eq!(minted.status(), 200, "{:?}", minted.body());
    assert_eq!(
        minted.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000"
    );
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_from_a_secret_to_a_client_certificate() {
    let d = deployment(
        EmulatorConfig::default()
            .with_dev_client_certificate()
            .unwrap(),
    )
    .await;
    let dir = TempDir::new("sighup-certificate");
    let (served, client, readyz) = serve_with_a_wrong_secret(&d, &dir).await;
    assert_eq!(d.emulator.stats().aad_tokens_issued, 0);

    // The deployment moves to the application's certificate (and its key);
    // the secret is gone from the configuration.
    dir.write(
        "app.pem",
        &format!(
            "{}{}",
            ta_emulator::dev_client_certificate_pem().unwrap(),
            ta_emulator::DEV_CLIENT_CERTIFICATE_KEY
        ),
    );
    dir.write(
        "serve.toml",
        &config_text(&d, &["https://contoso.com"]).replace(
            "client-secret-file = \"secret.txt\"",
            "client-certificate = \"app.pem\"",
        ),
    );
    std::fs::remove_file(dir.path("secret.txt")).unwrap();
    served.signal("HUP");
    let line = served.wait_for_log("configuration reloaded").await;
    assert!(line.contains("client certificate"), "{line}");
    eventually("ready with the certificate", || async {
        get(&client, &readyz).await.status() == 200
    })
    .await;
    let minted = post(&client, &served.url, "https://contoso.com").await;
    assert_eq!(minted.status(), 200, "{:?}", minted.body());
    assert_eq!(d.emulator.stats().aad_tokens_issued, 1);
    let logs = served.stderr.lock().unwrap().join("\n");
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ta_listen_sets_the_address() {
    let d = deployment(EmulatorConfig::default()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(&d));
    args.extend([
        "--allowed-origin".to_owned(),
        "https://contoso.com".to_owned(),
    ]);
    let listen = format!("127.0.0.1:{port}");
    let served = spawn_serve_with_env(args, 0, &[("TA_LISTEN", listen.as_str())]).await;
    assert_eq!(served.url, format!("http://{listen}/v1/widget-token"));
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    assert_eq!(
        status(&client, &served.url, "https://contoso.com").await,
        200
    );
    assert_eq!(served.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_switch_is_not_applied_by_a_reload() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("loopback-reload");
    dir.write("secret.txt", DEFAULT_CLIENT_SECRET);
    let config = dir.write("serve.toml", &config_text(&d, &["https://contoso.com"]));
    let served = spawn_serve_with(serve_args(&config, &[]), 0).await;
    // The switch and a loopback http origin arrive by reload: the switch
    // needs a restart (for the transport too), so the reload is refused
    // and says why.
    dir.write(
        "serve.toml",
        &format!(
            "{}allow-insecure-loopback = true\n",
            config_text(&d, &["https://contoso.com", "http://127.0.0.1:3000"])
        ),
    );
    served.signal("HUP");
    let line = served
        .wait_for_log("allow-insecure-loopback applies only after a restart")
        .await;
    assert!(line.contains("configuration reload refused"), "{line}");
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    assert_eq!(
        status(&client, &served.url, "http://127.0.0.1:3000").await,
        403
    );
    assert_eq!(
        status(&client, &served.url, "https://contoso.com").await,
        200
    );
    assert_eq!(served.stop().await, Some(0));
}

/// A metric's value from `serve`'s `/metrics` (0 when absent).
async fn metric(client: &ta_hyper::HyperTransport, base: &str, line_start: &str) -> u64 {
    let text = get(client, &format!("{base}/metrics")).await;
    String::from_utf8_lossy(text.body())
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_set_in_the_file_and_the_environment_and_changed_and_emptied_on_reload() {
    let d = deployment(EmulatorConfig::default()).await;
    let dir = TempDir::new("pool");
    dir.write("secret.txt", &format!("{DEFAULT_CLIENT_SECRET}\n"));
    let text = config_text(&d, &["https://contoso.com"]) + "pool-size = 5\npool-floor = 2\n";
    let config = dir.write("serve.toml", &text);
    let served = spawn_serve_with_env(
        serve_args(&config, &["--pool-max-total", "50"]),
        0,
        &[("TA_POOL_MAX_AGE", "600")],
    )
    .await;
    let line = served.wait_for_log("serving widget tokens").await;
    for field in [
        "pool_size=5",
        "pool_max_age_secs=600",
        "pool_floor=2",
        "pool_max_total=50",
    ] {
        assert!(line.contains(field), "{field}: {line}");
    }
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let base = served.base();
    let depth = "ta_pool_depth{origin=\"https://contoso.com\"}";
    eventually("the floor is pooled", || async {
        metric(&client, &base, depth).await == 2
    })
    .await;
    let body: serde_json::Value = serde_json::from_slice(
        post(&client, &served.url, "https://contoso.com")
            .await
            .body(),
    )
    .unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("psat="));
    assert_eq!(metric(&client, &base, "ta_pool_hits_total").await, 1);
    eventually("refilled", || async {
        metric(&client, &base, depth).await == 2
    })
    .await;
    // A reload with a higher floor: no token pooled before it is handed
    // out, and the new floor is kept.
    dir.write(
        "serve.toml",
        &(config_text(&d, &["https://contoso.com"]) + "pool-size = 5\npool-floor = 4\n"),
    );
    served.signal("HUP");
    let changed = served
        .wait_for_log("the token pool's settings changed")
        .await;
    assert!(changed.contains("pool_floor=4"), "{changed}");
    assert_eq!(served.log_count("apply only after a restart"), 0);
    assert_eq!(
        metric(&client, &base, "ta_pool_discarded_total{reason=\"reload\"}").await,
        2
    );
    eventually("refilled to the new floor after the reload", || async {
        metric(&client, &base, depth).await == 4
    })
    .await;
    // A reload with the pool's settings the same (the secret file written
    // again, as a rotation does): emptied all the same.
    dir.write("secret.txt", &format!("{DEFAULT_CLIENT_SECRET}\n"));
    served.signal("HUP");
    eventually("reloaded a second time", || async {
        served.log_count("configuration reloaded") == 2
    })
    .await;
    assert_eq!(served.log_count("the token pool's settings changed"), 1);
    assert_eq!(
        metric(&client, &base, "ta_pool_discarded_total{reason=\"reload\"}").await,
        6
    );
    eventually("refilled after the second reload", || async {
        metric(&client, &base, depth).await == 4
    })
    .await;
    assert_eq!(served.stop().await, Some(0));
}
