//! Starting: the settings resolved (or, under `--emulator`, the embedded
//! emulator started and its settings made), the upstream client and the
//! service built, the listener bound and announced, and what runs beside
//! the service spawned (the warm-up loop; under `--emulator`, the demo
//! sites).

use std::sync::Arc;
use std::time::Duration;

use ta_widget_service::mint_check::SignedTicketCheck;
use ta_widget_service::server::ServerTls;
use ta_widget_service::{Metrics, WidgetService};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::ServeArgs;
use super::embedded::start_emulator_mode;
use super::reload::Running;
use super::settings::Settings;
use super::shutdown::Background;

/// A started service, about to serve.
pub(super) struct Started {
    pub(super) settings: Settings,
    pub(super) service: WidgetService,
    pub(super) tls: Option<Arc<ServerTls>>,
    /// What a reload changes.
    pub(super) running: Running,
    pub(super) listener: TcpListener,
    pub(super) background: Background,
}

/// Starts everything but the accept loop; a configuration error otherwise.
pub(super) async fn start(args: &ServeArgs) -> Result<Started, String> {
    let (demo, settings) = if args.emulator {
        if let Some(path) = &args.upstream.config {
            // Likely a TA_CONFIG left in the environment: say so, and go on.
            warn!(
                config = %path.display(),
                "--emulator: the configuration file is not read; the embedded emulator is the deployment"
            );
        }
        let (demo, settings) = start_emulator_mode(args).await?;
        (Some(demo), settings)
    } else {
        (None, args.resolve()?)
    };
    let metrics = Arc::new(Metrics::new());
    // One upstream call gives up after 10 s, a whole mint (retries and a
    // cold cache included) after the service's 25 s upstream deadline,
    // inside its 30 s request deadline: a browser gets a typed 504.
    let limits = ta_hyper::Limits::default()
        .with_connect_timeout(Duration::from_secs(3))
        .with_request_timeout(Duration::from_secs(8))
        .with_call_timeout(Duration::from_secs(10));
    let upstream = settings
        .upstream
        .build_with(Some(Arc::clone(&metrics) as _), Some(limits))?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(Arc::new(
            ServerTls::from_files(cert, key).map_err(|e| format!("TLS: {e}"))?,
        )),
        None => None,
    };
    let mut service = WidgetService::new(
        upstream.bootstrapper.clone(),
        settings.service_config(),
        metrics,
    );
    if let Some(path) = &settings.mint_ticket_key_file {
        service = service.with_mint_check(ticket_check(path)?);
    }
    if let Some(chat) = &settings.chat {
        service = service
            .with_chat(chat.endpoint(&upstream.bootstrapper, Arc::clone(&upstream.transport))?);
    }
    warn_if_descriptors_run_out_first(settings.max_connections);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", settings.listen))?;
    let address = listener.local_addr().unwrap_or(settings.listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let service_base = format!("{scheme}://{address}");
    // Printed on stdout so that scripts and tests can find the port.
    out!("serving widget tokens on {service_base}/v1/widget-token");
    let mut background = Background::new();
    if let Some(demo) = demo {
        // The emulated platform calls the service back on loopback.
        let port = address.port();
        let callback = format!("{scheme}://127.0.0.1:{port}/v1/callback");
        if let Err(e) = demo.emulator.set_callback_url(&callback) {
            warn!(error = %e, "the embedded emulator cannot call the service back");
        }
        demo.serve(&service_base, &mut background);
    }
    if settings.chat.is_some() {
        // After the demo sites' lines, which scripts read by position.
        out!("taking the platform's callbacks on {service_base}/v1/callback");
    }
    let pool = &settings.pool;
    info!(
        %address,
        tls = tls.is_some(),
        allowed_origins = settings.allowlist.len(),
        pool_size = pool.size(),
        pool_max_age_secs = pool.max_age().as_secs(),
        pool_floor = pool.floor(),
        pool_max_total = pool.max_total(),
        "serving widget tokens"
    );
    let warm = service.clone();
    background.add_task(tokio::spawn(async move { warm.keep_warm().await }));
    if service.pool_config().is_on() {
        let pool = service.clone();
        background.add_task(tokio::spawn(async move { pool.keep_pool().await }));
    }
    let running = Running {
        service: service.clone(),
        tokens: Arc::clone(&upstream.tokens),
        tls: tls.clone(),
    };
    Ok(Started {
        settings,
        service,
        tls,
        running,
        listener,
        background,
    })
}

/// The check of the site's widget tickets, with the key in `path`; the
/// error names the file, never its content.
fn ticket_check(path: &std::path::Path) -> Result<SignedTicketCheck, String> {
    let key = std::fs::read(path)
        .map_err(|e| format!("--mint-ticket-key-file {}: {e}", path.display()))?;
    let key = key.trim_ascii();
    SignedTicketCheck::new(key)
        .map_err(|e| format!("--mint-ticket-key-file {}: {e}", path.display()))
}

/// Descriptors the process keeps for itself beyond its connections
/// (listeners, upstream connections, files).
const DESCRIPTORS_KEPT: u64 = 64;

/// Warns when the process may open fewer descriptors than the connection
/// cap needs: the cap would then never be reached, and accepts would fail
/// first (they are survived, but the cap is what sheds idle connections).
fn warn_if_descriptors_run_out_first(max_connections: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(soft_open_files)
    else {
        return;
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(DESCRIPTORS_KEPT);
    if needed > limit {
        warn!(
            max_connections,
            open_files_limit = limit,
            "the process may open fewer files than --max-connections needs: raise its limit (ulimit -n, LimitNOFILE=) or lower --max-connections"
        );
    }
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_open_files_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(super::soft_open_files(limits), Some(1024));
        assert_eq!(
            super::soft_open_files("Max open files unlimited unlimited files"),
            None
        );
        assert_eq!(super::soft_open_files(""), None);
    }
}
