//! `serve`: the widget-token service.
//!
//! Settings come from flags, environment variables and the `--config` file.
//! On SIGHUP (and, with `--watch-config`, when a file changes) they are read
//! again: a new client secret or certificate is used for the next AAD
//! token request, a new allowlist for the next request, a new TLS pair for
//! the next connection. A reload that does not validate is refused as a
//! whole and logged; the running configuration keeps serving.
//!
//! The pieces, in the order they run: [`settings`] resolves and checks
//! what to run with; [`start`] builds and binds the service (and, under
//! `--emulator`, [`embedded`] starts the embedded emulator and its demo
//! sites); [`reload`]
//! applies SIGHUP and file changes while it serves; [`shutdown`] waits for
//! the signal to stop and stops everything in order.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;
use ta_widget_service::server::{Server, ServerLimits};

use super::config_error;
use super::upstream::UpstreamArgs;

mod chat;
mod embedded;
mod reload;
mod settings;
mod shutdown;
mod start;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    chat: chat::ChatArgs,
    /// Serves against an embedded emulator, with a demo widget site on two
    /// more origins (one on the allowlist, one not); needs no other flag.
    /// The deployment settings (flags, `TA_*` variables, `--config`) and
    /// the chat's are not used; `serve`'s own flags and variables are
    /// (`--listen`, the rates, the pool, TLS, the connection caps,
    /// `--renew-after-fraction`, `--mint-ticket-key-file`).
    #[arg(long)]
    emulator: bool,
    /// With --emulator: how long the embedded emulator's widget tokens
    /// live, in seconds (the demo widget renews a token after the service's
    /// `renewAfter`, three quarters of its life by default) [default: 120].
    #[arg(
        long,
        requires = "emulator",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(15..=86_400)
    )]
    emulator_token_lifetime: Option<u64>,
    /// With --emulator: how long the embedded emulator holds a chat's
    /// event poll when there is nothing to say, in seconds (UCWA held one
    /// for 180 s; shorter shows a page's poll loop sooner) [default: 180].
    #[arg(
        long,
        requires = "emulator",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=1_800)
    )]
    emulator_long_poll: Option<u64>,
    /// With --emulator: the embedded emulator's configuration file (TOML,
    /// as the `emulator` command's `--config`: applications, agents and
    /// their scripts, chat timers, faults). Its first application's client
    /// id, secret and endpoint are the SA's; its listen address and TLS
    /// are the embedded ones. The flags above override it; without
    /// --emulator-token-lifetime its token lifetime is the file's.
    #[arg(long, requires = "emulator", value_name = "FILE")]
    emulator_config: Option<PathBuf>,
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
    /// Connections open at most; at the cap a new one takes the place of
    /// the oldest with no complete request head, else the oldest idle one
    /// [default: 4096].
    #[arg(long, env = "TA_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_connections: Option<u64>,
    /// Connections open at most from one client address (the TCP peer's;
    /// --trusted-proxy addresses are spared); 0 for no such cap
    /// [default: 256].
    #[arg(long, env = "TA_MAX_CONNECTIONS_PER_CLIENT", value_parser = clap::value_parser!(u64).range(0..=65_536))]
    max_connections_per_client: Option<u64>,
    /// Keeps a pool of pre-minted widget tokens, at most this many per
    /// allowed origin, so that a widget gets its token without waiting for
    /// the API (each minted for its origin alone, with its own session id,
    /// handed to one widget); 0 for none [default: 0].
    #[arg(long, env = "TA_POOL_SIZE", value_name = "N", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pool_size: Option<u64>,
    /// The most age a pooled token may have when it is handed out, in
    /// seconds (it is never handed out past half its life either)
    /// [default: 300].
    #[arg(long, env = "TA_POOL_MAX_AGE", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pool_max_age: Option<u64>,
    /// The tokens pooled per origin at zero demand (at most --pool-size)
    /// [default: 1 with a pool].
    #[arg(long, env = "TA_POOL_FLOOR", value_name = "N", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pool_floor: Option<u64>,
    /// The most tokens pooled (or being minted for the pool) across all
    /// origins [default: 1000].
    #[arg(long, env = "TA_POOL_MAX_TOTAL", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pool_max_total: Option<u64>,
    /// When widgets should renew their token, as a fraction of its
    /// remaining life: the answer's `renewAfter` is this fraction of
    /// `expiresIn` (above 0 and below 1) [default: 0.75].
    #[arg(long, env = "TA_RENEW_AFTER_FRACTION", value_name = "FRACTION")]
    renew_after_fraction: Option<f64>,
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
    /// A file holding the key of the site's widget tickets (at least 32
    /// bytes; surrounding whitespace is dropped): each widget-token request
    /// must then carry a ticket the site's backend signed with it for the
    /// page's origin (`{"ticket": "…"}`; see docs/operations.md). Read at
    /// start.
    #[arg(long, env = "TA_MINT_TICKET_KEY_FILE", value_name = "FILE")]
    mint_ticket_key_file: Option<PathBuf>,
    /// Reloads when the configuration file, the secret or certificate
    /// file, or the TLS files change (checked every 2 s), as on SIGHUP.
    #[arg(long, env = "TA_WATCH_CONFIG")]
    watch_config: bool,
}

/// Runs `serve` until SIGINT or SIGTERM; the process exit code.
pub(crate) async fn run(args: ServeArgs) -> u8 {
    // SIGHUP's default action ends the process: take it over before
    // anything else, so that a reload asked for during start-up (or under
    // --emulator, which has nothing to reload) cannot stop the service.
    let hangups = reload::Hangups::take_over();
    let start::Started {
        settings,
        service,
        tls,
        running,
        listener,
        mut background,
    } = match start::start(&args).await {
        Ok(started) => started,
        Err(e) => return config_error(e),
    };
    let limits = ServerLimits::default().with_connections(
        settings.max_connections,
        settings.max_connections_per_client,
    );
    let proxies = settings.trusted_proxies.clone();
    background.add_task(reload::spawn(args, settings, running, hangups));
    // On the signal, open chats are ended first (their meetings
    // terminated upstream) while the service still answers, then the
    // service drains.
    let switchboard = service.switchboard().cloned();
    let stop = async move {
        shutdown::signal().await;
        if let Some(switchboard) = switchboard {
            shutdown::end_chats(&switchboard).await;
        }
    };
    let served = Server::new(listener, service.router())
        .tls(tls)
        .limits(limits)
        .exempt(proxies)
        .metrics(service.metrics())
        .serve(stop)
        .await;
    background.shut_down(served).await;
    0
}
