//! Reloading while serving: on SIGHUP, and with `--watch-config` when a
//! watched file changes, the settings are read again and what can change
//! while running is applied, all or nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ta_bootstrap::ClientCredentialsProvider;
use ta_widget_service::WidgetService;
use ta_widget_service::server::ServerTls;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::ServeArgs;
use super::settings::{Settings, allowlist_for, restart_needed};

/// How often `--watch-config` looks at the files.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The process's SIGHUPs, taken over from their default action (which ends
/// the process).
pub(super) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Takes SIGHUP over; from now on it no longer ends the process.
    pub(super) fn take_over() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Waits for the next SIGHUP (never, where there is none).
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

/// Applies reloads until aborted: under `--emulator`, only says there is
/// nothing to reload.
pub(super) fn spawn(
    args: ServeArgs,
    settings: Settings,
    running: Running,
    mut hangups: Hangups,
) -> JoinHandle<()> {
    if args.emulator {
        return tokio::spawn(async move {
            loop {
                hangups.next().await;
                info!("SIGHUP: nothing to reload under --emulator");
            }
        });
    }
    let mut current = settings;
    tokio::spawn(async move {
        let mut files = args.watched_files(&current);
        let mut seen = snapshot(&files);
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = hangups.next() => {
                    info!("SIGHUP: reloading the configuration");
                }
                _ = tick.tick(), if args.watch_config => {
                    if snapshot(&files) == seen {
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
}

/// What a reload changes in the running service.
pub(super) struct Running {
    pub(super) service: WidgetService,
    pub(super) tokens: Arc<ClientCredentialsProvider>,
    pub(super) tls: Option<Arc<ServerTls>>,
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
    // No token pooled under the old credential or allowlist is handed out:
    // the pool is emptied, with its new settings if they changed, once and
    // before the new allowlist wakes the refills (so that none is thrown
    // away for nothing).
    if !apply_pool(running, current, &new) {
        running.service.empty_pool();
    }
    if running
        .service
        .set_allowlist(new.allowlist.clone())
        .is_err()
    {
        // `resolve` refuses an empty allowlist; kept for safety.
        error!("configuration reload: empty allowlist ignored");
    }
    running.service.retry_warm_up_now();
    apply_routes(running, current, &new);
    info!(
        credential = rotated,
        allowed_origins = new.allowlist.len(),
        "configuration reloaded"
    );
    // Only what was applied: settings that need a restart keep warning.
    let (old, new_upstream) = (&mut current.upstream, new.upstream);
    old.client_secret = new_upstream.client_secret;
    old.client_secret_file = new_upstream.client_secret_file;
    old.client_certificate = new_upstream.client_certificate;
    old.allowed_origins = new_upstream.allowed_origins;
    old.allow_http_origins = new_upstream.allow_http_origins;
    current.allowlist = new.allowlist;
}

/// The pool's new settings, when they changed and the pool stays on
/// (`resolve` checked them): whether they were applied, emptying the pool.
fn apply_pool(running: &Running, current: &mut Settings, new: &Settings) -> bool {
    if new.pool == current.pool || !new.pool.is_on() || !current.pool.is_on() {
        return false;
    }
    if let Err(e) = running.service.set_pool_config(new.pool.clone()) {
        error!(error = %e, "the token pool's settings could not be changed");
        return false;
    }
    let pool = &new.pool;
    info!(
        pool_size = pool.size(),
        pool_max_age_secs = pool.max_age().as_secs(),
        pool_floor = pool.floor(),
        pool_max_total = pool.max_total(),
        pool_refill_in_flight = pool.refill_in_flight(),
        "the token pool's settings changed"
    );
    current.pool = new.pool.clone();
    true
}

/// Replicas added or removed: the others' addresses, at once (`resolve`
/// checked them).
fn apply_routes(running: &Running, current: &mut Settings, new: &Settings) {
    let (Some(chat), Some(replicas)) = (&new.chat, running.service.replicas()) else {
        return;
    };
    match chat.apply_routes(replicas) {
        Ok(true) => {
            info!(replicas = ?replicas, "the other replicas' addresses changed");
            let known = current.chat.as_mut().and_then(|c| c.replicas.as_mut());
            if let (Some(known), Some(applied)) = (known, &chat.replicas) {
                known.peers.clone_from(&applied.peers);
                known.template.clone_from(&applied.template);
            }
        }
        Ok(false) => {}
        Err(e) => error!(error = %e, "the other replicas' addresses could not be changed"),
    }
}

/// Snapshots of the watched files (a read error is a snapshot too).
fn snapshot(files: &[PathBuf]) -> Vec<Result<Vec<u8>, std::io::ErrorKind>> {
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| e.kind()))
        .collect()
}
