//! `serve`: the widget-token service.
//!
//! Settings come from flags, environment variables and the `--config` file.
//! On SIGHUP (and, with `--watch-config`, when a file changes) they are read
//! again: a new client secret or certificate is used for the next AAD
//! token request, a new allowlist for the next request, a new TLS pair for
//! the next connection. A reload that does not validate is refused as a
//! whole and logged; the running configuration keeps serving.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ta_bootstrap::ClientCredentialsProvider;
use ta_widget_service::server::{ServerLimits, ServerTls, Stopped};
use ta_widget_service::{Metrics, ServiceConfig, WidgetService};

use crate::demo_site::DemoSite;
use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};
use ta_protocol::{Origin, OriginPolicy};
use tracing::{error, info, warn};

use super::config_error;
use super::config_file::{FileConfig, fill, fill_list};
use super::upstream::{SecretArg, UpstreamArgs};

/// The default listening address.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How often `--watch-config` looks at the files.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// The psat lifetime of the embedded emulator: short, so that the demo
/// widget's renewal shows within minutes.
const EMULATOR_PSAT_LIFETIME_SECS: u64 = 120;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Serves against an embedded emulator, with a demo widget site on two
    /// more origins (one on the allowlist, one not); needs no other flag.
    /// The deployment settings (flags, `TA_*` variables, `--config`) are
    /// not used; `--listen` and the rates are.
    #[arg(long)]
    emulator: bool,
    /// With --emulator: how long the embedded emulator's widget tokens
    /// live, in seconds (the demo widget renews a token at three quarters of
    /// its life or 10 s before it expires, whichever is sooner, and at least
    /// 5 s after it got it) [default: 120].
    #[arg(
        long,
        requires = "emulator",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(15..=86_400)
    )]
    emulator_token_lifetime: Option<u64>,
    /// The address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Requests per minute one client address may make [default: 60].
    #[arg(long, env = "TA_PER_CLIENT_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    per_client_rate: Option<u32>,
    /// Requests per second all clients together may make [default: 200].
    #[arg(long, env = "TA_GLOBAL_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    global_rate: Option<u32>,
    /// Mints in flight at most; more callers get 503 at once [default: 256].
    #[arg(long, env = "TA_MAX_MINTS_IN_FLIGHT")]
    max_mints_in_flight: Option<usize>,
    /// A reverse proxy whose X-Forwarded-For / Forwarded is believed
    /// (repeatable; an IP address).
    #[arg(
        long = "trusted-proxy",
        env = "TA_TRUSTED_PROXIES",
        value_delimiter = ';'
    )]
    trusted_proxies: Vec<IpAddr>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Read again on reload.
    #[arg(long, env = "TA_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "TA_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Reloads when the configuration file, the secret or certificate
    /// file, or the TLS files change (checked every 2 s), as on SIGHUP.
    #[arg(long, env = "TA_WATCH_CONFIG")]
    watch_config: bool,
}

/// Everything `serve` runs with, resolved and checked.
#[derive(Debug, Clone)]
struct Settings {
    upstream: UpstreamArgs,
    allowlist: Vec<Origin>,
    listen: SocketAddr,
    per_client_rate: u32,
    global_rate: u32,
    max_mints_in_flight: usize,
    trusted_proxies: Vec<IpAddr>,
    tls: Option<(PathBuf, PathBuf)>,
}

impl ServeArgs {
    /// Reads the configuration file (if any) and checks everything but the
    /// credential, which [`UpstreamArgs::credential`] reads.
    fn resolve(&self) -> Result<Settings, String> {
        let (upstream, file) = self.upstream.with_config_file()?;
        self.resolve_with(upstream, &file, false)
    }

    fn resolve_with(
        &self,
        upstream: UpstreamArgs,
        file: &FileConfig,
        loopback_http: bool,
    ) -> Result<Settings, String> {
        let allowlist =
            allowlist_for(&upstream, loopback_http || upstream.allow_insecure_loopback)?;
        let mut listen = self.listen;
        fill(&mut listen, &file.listen);
        let mut per_client_rate = self.per_client_rate;
        fill(&mut per_client_rate, &file.per_client_rate);
        let mut global_rate = self.global_rate;
        fill(&mut global_rate, &file.global_rate);
        let mut max_mints_in_flight = self.max_mints_in_flight;
        fill(&mut max_mints_in_flight, &file.max_mints_in_flight);
        let mut trusted_proxies = self.trusted_proxies.clone();
        fill_list(&mut trusted_proxies, &file.trusted_proxies);
        let (mut tls_cert, mut tls_key) = (self.tls_cert.clone(), self.tls_key.clone());
        if tls_cert.is_none() && tls_key.is_none() {
            tls_cert.clone_from(&file.tls_cert);
            tls_key.clone_from(&file.tls_key);
        }
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".to_owned()),
        };
        let positive = |value: Option<u32>, default: u32, name: &str| match value {
            Some(0) => Err(format!("{name} must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        // The service's own defaults: they are written once, there.
        let defaults = ServiceConfig::new(Vec::new());
        let max_mints_in_flight = match max_mints_in_flight {
            Some(0) => return Err("max-mints-in-flight must be at least 1".to_owned()),
            Some(v) => v,
            None => defaults.max_mints_in_flight,
        };
        Ok(Settings {
            allowlist,
            listen: listen.unwrap_or(DEFAULT_LISTEN),
            per_client_rate: positive(
                per_client_rate,
                defaults.per_client_per_minute,
                "per-client-rate",
            )?,
            global_rate: positive(global_rate, defaults.global_per_second, "global-rate")?,
            max_mints_in_flight,
            trusted_proxies,
            tls,
            upstream,
        })
    }

    /// The files whose change `--watch-config` reacts to.
    fn watched_files(&self, settings: &Settings) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [
            self.upstream.config.clone(),
            settings.upstream.client_secret_file.clone(),
            settings.upstream.client_certificate.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some((cert, key)) = &settings.tls {
            files.push(cert.clone());
            files.push(key.clone());
        }
        files
    }
}

/// The site allowlist of `upstream`'s origins, loopback `http` origins
/// admitted when `loopback_http`.
fn allowlist_for(upstream: &UpstreamArgs, loopback_http: bool) -> Result<Vec<Origin>, String> {
    let policy = OriginPolicy::new(upstream.allow_http_origins, loopback_http);
    WidgetService::allowlist(&upstream.allowed_origins, policy).map_err(|e| {
        format!("site allowlist (--allowed-origin, TA_ALLOWED_ORIGINS or `allowed-origins`): {e}")
    })
}

/// Settings that only a restart applies, named as the keys.
fn restart_needed(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let (a, b) = (&old.upstream, &new.upstream);
    let mut changed = Vec::new();
    let mut check = |same: bool, name: &'static str| {
        if !same {
            changed.push(name);
        }
    };
    check(a.discover_url == b.discover_url, "discover-url");
    check(a.endpoint_id == b.endpoint_id, "endpoint-id");
    check(a.tenant == b.tenant, "tenant");
    check(a.client_id == b.client_id, "client-id");
    check(a.token_url == b.token_url, "token-url");
    check(a.ca_file == b.ca_file, "ca-file");
    check(a.trusted_hosts == b.trusted_hosts, "trusted-hosts");
    check(
        a.allow_insecure_loopback == b.allow_insecure_loopback,
        "allow-insecure-loopback",
    );
    check(old.listen == new.listen, "listen");
    check(
        old.per_client_rate == new.per_client_rate,
        "per-client-rate",
    );
    check(old.global_rate == new.global_rate, "global-rate");
    check(
        old.max_mints_in_flight == new.max_mints_in_flight,
        "max-mints-in-flight",
    );
    check(
        old.trusted_proxies == new.trusted_proxies,
        "trusted-proxies",
    );
    check(
        old.tls.is_some() == new.tls.is_some() && old.tls == new.tls,
        "tls-cert/tls-key",
    );
    changed
}

/// What a reload changes in the running service.
struct Running {
    service: WidgetService,
    tokens: Arc<ClientCredentialsProvider>,
    tls: Option<Arc<ServerTls>>,
}

/// Reads the configuration again and applies what can change while
/// running; all or nothing.
fn reload(args: &ServeArgs, current: &mut Settings, running: &Running) {
    let outcome = args.resolve().and_then(|mut new| {
        // `allow-insecure-loopback` applies only after a restart (it is
        // warned about below), to the allowlist as to the transport.
        let loopback = current.upstream.allow_insecure_loopback;
        new.allowlist = allowlist_for(&new.upstream, loopback).map_err(|e| {
            if new.upstream.allow_insecure_loopback == loopback {
                e
            } else {
                format!("{e} (allow-insecure-loopback applies only after a restart)")
            }
        })?;
        let credential = new.upstream.credential()?;
        // TLS last: it is the one step that applies itself when it works.
        if let Some(tls) = &running.tls {
            if new.tls == current.tls {
                tls.reload().map_err(|e| format!("TLS: {e}"))?;
            }
        }
        Ok((new, credential))
    });
    let (new, credential) = match outcome {
        Ok(applied) => applied,
        Err(e) => {
            error!(error = %e, "configuration reload refused; the running configuration stays");
            return;
        }
    };
    let needs_restart = restart_needed(current, &new);
    if !needs_restart.is_empty() {
        warn!(
            settings = needs_restart.join(", "),
            "these settings changed but apply only after a restart"
        );
    }
    let rotated = match &credential {
        ta_bootstrap::Credential::Certificate(_) => "client certificate",
        _ => "client secret",
    };
    running.tokens.set_credential(credential);
    if running
        .service
        .set_allowlist(new.allowlist.clone())
        .is_err()
    {
        // `resolve` refuses an empty allowlist; kept for safety.
        error!("configuration reload: empty allowlist ignored");
    }
    info!(
        credential = rotated,
        allowed_origins = new.allowlist.len(),
        "configuration reloaded"
    );
    running.service.retry_warm_up_now();
    // Only what was applied: settings that need a restart keep warning.
    let (old, new_upstream) = (&mut current.upstream, new.upstream);
    old.client_secret = new_upstream.client_secret;
    old.client_secret_file = new_upstream.client_secret_file;
    old.client_certificate = new_upstream.client_certificate;
    old.allowed_origins = new_upstream.allowed_origins;
    old.allow_http_origins = new_upstream.allow_http_origins;
    current.allowlist = new.allowlist;
}

/// Snapshots of the watched files (a read error is a snapshot too).
fn snapshot(files: &[PathBuf]) -> Vec<Result<Vec<u8>, std::io::ErrorKind>> {
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| e.kind()))
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Waits for the next SIGHUP (never, where there is none).
#[cfg(unix)]
async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Waits for the next SIGHUP (never, where there is none).
#[cfg(not(unix))]
async fn hangup(_: &mut Option<()>) {
    std::future::pending::<()>().await;
}

/// The embedded emulator and the two demo sites of `--emulator`.
struct EmulatorMode {
    emulator: Emulator,
    allowed: tokio::net::TcpListener,
    refused: tokio::net::TcpListener,
}

async fn start_emulator_mode(args: &ServeArgs) -> Result<(EmulatorMode, Settings), String> {
    let config = EmulatorConfig {
        psat_lifetime_secs: args
            .emulator_token_lifetime
            .unwrap_or(EMULATOR_PSAT_LIFETIME_SECS),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config)
        .await
        .map_err(|e| format!("starting the embedded emulator: {e}"))?;
    let bind = || async {
        tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("listening for the demo site: {e}"))
    };
    let allowed = bind().await?;
    let refused = bind().await?;
    let origin = |l: &tokio::net::TcpListener| {
        l.local_addr()
            .map(|a| format!("http://{a}"))
            .map_err(|e| e.to_string())
    };
    let upstream = UpstreamArgs {
        config: None,
        discover_url: Some(emulator.discover_url()),
        endpoint_id: Some(DEFAULT_ENDPOINT.to_owned()),
        tenant: None,
        client_id: Some(DEFAULT_CLIENT_ID.to_owned()),
        client_secret: Some(SecretArg::new(DEFAULT_CLIENT_SECRET)),
        client_secret_file: None,
        client_certificate: None,
        token_url: Some(emulator.token_url()),
        allowed_origins: vec![origin(&allowed)?],
        allow_http_origins: false,
        ca_file: None,
        trusted_hosts: Vec::new(),
        allow_insecure_loopback: false,
        extra_roots_pem: emulator.ca_pem().map(str::to_owned),
    };
    let settings = args.resolve_with(upstream, &FileConfig::default(), true)?;
    Ok((
        EmulatorMode {
            emulator,
            allowed,
            refused,
        },
        settings,
    ))
}

pub(crate) async fn run(args: ServeArgs) -> u8 {
    // SIGHUP's default action ends the process: take it over before
    // anything else, so that a reload asked for during start-up (or under
    // --emulator, which has nothing to reload) cannot stop the service.
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hup: Option<()> = None;
    let (mode, settings) = if args.emulator {
        if let Some(path) = &args.upstream.config {
            // Likely a TA_CONFIG left in the environment: say so, and go on.
            warn!(
                config = %path.display(),
                "--emulator: the configuration file is not read; the embedded emulator is the deployment"
            );
        }
        match start_emulator_mode(&args).await {
            Ok((mode, settings)) => (Some(mode), settings),
            Err(e) => return config_error(e),
        }
    } else {
        match args.resolve() {
            Ok(settings) => (None, settings),
            Err(e) => return config_error(e),
        }
    };
    let metrics = Arc::new(Metrics::new());
    // One upstream call gives up after 10 s, a whole mint (retries and a
    // cold cache included) after the service's 25 s upstream deadline,
    // inside its 30 s request deadline: a browser gets a typed 504.
    let limits = ta_hyper::Limits::default()
        .with_connect_timeout(Duration::from_secs(3))
        .with_request_timeout(Duration::from_secs(8))
        .with_call_timeout(Duration::from_secs(10));
    let upstream = match settings
        .upstream
        .build_with(Some(Arc::clone(&metrics) as _), Some(limits))
    {
        Ok(upstream) => upstream,
        Err(e) => return config_error(e),
    };
    let tls = match &settings.tls {
        Some((cert, key)) => match ServerTls::from_files(cert, key) {
            Ok(tls) => Some(Arc::new(tls)),
            Err(e) => return config_error(format!("TLS: {e}")),
        },
        None => None,
    };
    let mut config = ServiceConfig::new(settings.allowlist.clone());
    config.per_client_per_minute = settings.per_client_rate;
    config.global_per_second = settings.global_rate;
    config.max_mints_in_flight = settings.max_mints_in_flight;
    config.trusted_proxies.clone_from(&settings.trusted_proxies);
    let service = WidgetService::new(upstream.bootstrapper, config, metrics);
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(listener) => listener,
        Err(e) => return config_error(format!("listening on {}: {e}", settings.listen)),
    };
    let address = listener.local_addr().unwrap_or(settings.listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let service_base = format!("{scheme}://{address}");
    // Printed on stdout so that scripts and tests can find the port.
    out!("serving widget tokens on {service_base}/v1/widget-token");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop_signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut demo_sites = Vec::new();
    let emulator = match mode {
        Some(mode) => {
            let origin_of = |l: &tokio::net::TcpListener| {
                l.local_addr()
                    .map_or_else(|_| "?".to_owned(), |a| format!("http://{a}/"))
            };
            out!("demo widget (allowed origin): {}", origin_of(&mode.allowed));
            out!(
                "demo widget (origin not on the allowlist): {}",
                origin_of(&mode.refused)
            );
            eprintln!(
                "The embedded emulator serves the API and Azure AD at {} (its development CA is not trusted by browsers: the demo page links to it if the browser refuses it).",
                mode.emulator.discover_url()
            );
            let sites = [
                (
                    mode.allowed,
                    DemoSite::new(service_base.clone())
                        .with_note("This origin is on the service's allowlist."),
                ),
                (
                    mode.refused,
                    DemoSite::new(service_base.clone()).with_note(
                        "This origin is NOT on the service's allowlist: the service refuses it.",
                    ),
                ),
            ];
            for (listener, site) in sites {
                demo_sites.push(tokio::spawn(ta_widget_service::server::serve(
                    listener,
                    site.router(),
                    None,
                    ServerLimits::default(),
                    stop_signal(),
                )));
            }
            Some(mode.emulator)
        }
        None => None,
    };
    info!(%address, tls = tls.is_some(), allowed_origins = settings.allowlist.len(), "serving widget tokens");
    let warm = service.clone();
    let warming = tokio::spawn(async move { warm.keep_warm().await });
    let running = Running {
        service: service.clone(),
        tokens: Arc::clone(&upstream.tokens),
        tls: tls.clone(),
    };
    // Reloads: on SIGHUP, and with --watch-config when a file changes.
    let reloading = if args.emulator {
        tokio::spawn(async move {
            loop {
                hangup(&mut hup).await;
                info!("SIGHUP: nothing to reload under --emulator");
            }
        })
    } else {
        let mut current = settings.clone();
        tokio::spawn(async move {
            let mut files = args.watched_files(&current);
            let mut seen = snapshot(&files);
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = hangup(&mut hup) => {
                        info!("SIGHUP: reloading the configuration");
                    }
                    _ = tick.tick(), if args.watch_config => {
                        let now = snapshot(&files);
                        if now == seen {
                            continue;
                        }
                        info!("a configuration file changed: reloading");
                    }
                }
                reload(&args, &mut current, &running);
                files = args.watched_files(&current);
                seen = snapshot(&files);
            }
        })
    };
    let served = ta_widget_service::server::serve(
        listener,
        service.router(),
        tls,
        ServerLimits::default(),
        shutdown_signal(),
    )
    .await;
    let _ = stop.send(true);
    for site in demo_sites {
        let _ = site.await;
    }
    warming.abort();
    reloading.abort();
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    if let Stopped::GraceExpired { dropped } = served {
        eprintln!(
            "stopping: {dropped} connection(s) still open after the grace period were dropped"
        );
    }
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// The settings of `serve` with these flags, whatever `TA_*` variables
    /// the environment running the test has.
    fn settings(args: &[&str]) -> Result<Settings, String> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Wrapper::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(
                ["serve", "--allowed-origin", "https://contoso.com"]
                    .iter()
                    .chain(args),
            )
            .map_err(|e| e.to_string())?;
        let serve = Wrapper::from_arg_matches(&matches)
            .map_err(|e| e.to_string())?
            .serve;
        serve.resolve_with(serve.upstream.clone(), &FileConfig::default(), false)
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (s.per_client_rate, s.global_rate, s.max_mints_in_flight),
            (60, 200, 256)
        );
        assert!(s.trusted_proxies.is_empty() && s.tls.is_none());
    }

    #[test]
    fn loopback_http_origins_are_refused_without_the_switch() {
        let refused = settings(&["--allowed-origin", "http://127.0.0.1:3000"]).unwrap_err();
        assert!(refused.contains("site allowlist"), "{refused}");
        let allowed = settings(&[
            "--allowed-origin",
            "http://127.0.0.1:3000",
            "--allow-insecure-loopback",
        ])
        .unwrap();
        assert_eq!(allowed.allowlist.len(), 2);
        assert!(
            settings(&[
                "--allowed-origin",
                "http://contoso.com",
                "--allow-insecure-loopback"
            ])
            .is_err()
        );
        assert!(
            settings(&["--tls-cert", "cert.pem"]).is_err(),
            "a certificate needs its key"
        );
    }
}
