//! `serve`: the widget-token service.

use std::net::SocketAddr;

use clap::Args;
use std::future::IntoFuture as _;
use std::sync::Arc;

use ta_bootstrap::{Metrics, ServiceConfig, WidgetService};
use ta_protocol::OriginPolicy;

use super::config_error;
use super::upstream::UpstreamArgs;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// The address to listen on (plain HTTP; put TLS in front, or see the
    /// operations guide).
    #[arg(long, env = "TA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Requests per minute one client address may make.
    #[arg(long, env = "TA_PER_CLIENT_RATE", default_value_t = 60)]
    per_client_rate: u32,
    /// Requests per second all clients together may make.
    #[arg(long, env = "TA_GLOBAL_RATE", default_value_t = 200)]
    global_rate: u32,
    /// Mints in flight at most (more callers get 503 at once).
    #[arg(long, env = "TA_MAX_MINTS_IN_FLIGHT", default_value_t = 256)]
    max_mints_in_flight: usize,
    /// A reverse proxy whose X-Forwarded-For / Forwarded is believed
    /// (repeatable; an IP address).
    #[arg(
        long = "trusted-proxy",
        env = "TA_TRUSTED_PROXIES",
        value_delimiter = ';'
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
}

/// How long requests in flight may take to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

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

pub(crate) async fn run(args: ServeArgs) -> u8 {
    // The site allowlist takes the same flag as `token`.
    let policy = OriginPolicy {
        allow_http: args.upstream.allow_http_origins,
        allow_loopback_http: false,
    };
    let allowlist = match WidgetService::allowlist(&args.upstream.allowed_origins, policy) {
        Ok(allowlist) => allowlist,
        Err(e) => return config_error(format!("site allowlist (--allowed-origin): {e}")),
    };
    let metrics = Arc::new(Metrics::new());
    // Upstream calls give up well before the service's own 30 s deadline,
    // so that a browser gets a typed 504 rather than a cut connection.
    let limits = ta_hyper::Limits::default()
        .with_connect_timeout(std::time::Duration::from_secs(3))
        .with_request_timeout(std::time::Duration::from_secs(8))
        .with_call_timeout(std::time::Duration::from_secs(10));
    let upstream = match args
        .upstream
        .build_with(Some(Arc::clone(&metrics)), Some(limits))
    {
        Ok(upstream) => upstream,
        Err(e) => return config_error(e),
    };
    let mut config = ServiceConfig::new(allowlist);
    config.per_client_per_minute = args.per_client_rate;
    config.global_per_second = args.global_rate;
    config.max_mints_in_flight = args.max_mints_in_flight;
    config.trusted_proxies = args.trusted_proxies;
    let service = WidgetService::new(upstream.bootstrapper, config, metrics);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => return config_error(format!("listening on {}: {e}", args.listen)),
    };
    let address = listener.local_addr().map_or(args.listen, |a| a);
    // Printed on stdout so that scripts and tests can find the port.
    out!("serving widget tokens on http://{address}/v1/widget-token");
    let warm = service.clone();
    let warming = tokio::spawn(async move { warm.keep_warm().await });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        service
            .router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let mut stopped = stopped;
        let _ = stopped.changed().await;
    });
    let mut server = std::pin::pin!(server.into_future());
    let served = tokio::select! {
        served = &mut server => served,
        () = shutdown_signal() => {
            // Let requests in flight finish, but not forever (a client that
            // never finishes its request must not hold the process).
            let _ = stop.send(true);
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    eprintln!("stopping: requests still open after {SHUTDOWN_GRACE:?} were dropped");
                    Ok(())
                }
            }
        }
    };
    warming.abort();
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: upstream: the service stopped: {e}");
            5
        }
    }
}
