//! Serving a router over HTTP or HTTPS: the accept loop of `serve`.
//!
//! `axum::serve` has no TLS and no limits on request heads, so the service
//! runs its own loop: tokio-rustls for TLS (optional, reloadable), hyper's
//! auto builder (HTTP/1.1 and HTTP/2) with bounded request heads and a
//! header read timeout, the peer address as `ConnectInfo`, and a graceful
//! shutdown that lets requests in flight finish for a bounded time.
//!
//! Connections are bounded ([`ServerLimits::max_connections`], and per
//! client address): at the cap a new connection takes the place of the
//! oldest one still waiting for its first request head, else of the oldest
//! idle one, so that clients which open connections and never finish a
//! request cannot starve the others. A connection that has sent no
//! complete request head within [`ServerLimits::head_timeout`] of its
//! accept (or of its TLS handshake) is closed. When accepting fails (out
//! of file descriptors), the loop says so (at most once a minute), sheds
//! the oldest waiting connection to free a descriptor, backs off and goes
//! on.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::Metrics;

mod connections;
mod tls;

use connections::{Activity, Registry};
pub use tls::{ServerTls, TlsError};

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Largest request head (request line and headers) over HTTP/1.1, and
    /// largest header list over HTTP/2. Larger heads are refused (431).
    pub max_head_bytes: usize,
    /// Longest time to receive a request head, and to finish a TLS
    /// handshake.
    pub head_timeout: Duration,
    /// How long requests in flight may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
    /// Open connections at most (at least 1). At the cap a new connection
    /// takes the place of the oldest one with no complete request head
    /// yet, else of the oldest idle one; with every one busy it is closed.
    pub max_connections: usize,
    /// Open connections at most from one client address (the TCP peer's:
    /// behind a proxy, the proxy's, which [`Server::exempt`] can spare);
    /// 0 for no such cap.
    pub max_connections_per_client: usize,
}

impl ServerLimits {
    /// These limits with at most `max` connections, `per_client` from one
    /// address (0: no such cap).
    #[must_use]
    pub fn with_connections(mut self, max: usize, per_client: usize) -> Self {
        self.max_connections = max;
        self.max_connections_per_client = per_client;
        self
    }
}

impl Default for ServerLimits {
    /// 16 KiB heads, 10 s to send one, 10 s grace at shutdown, 4096
    /// connections, 256 from one address.
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_client: 256,
        }
    }
}

/// How a [`serve`] loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// Every connection finished within the grace period.
    Drained,
    /// Connections still open after the grace period were dropped.
    GraceExpired {
        /// How many.
        dropped: usize,
    },
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` completes; then stops accepting, asks open connections to
/// finish (HTTP/1.1 closes after the response in flight, HTTP/2 sends
/// GOAWAY) and waits for them at most `limits.shutdown_grace`. The same as
/// [`Server`] with these settings.
///
/// Requests carry the peer address as
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerTls>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    Server::new(listener, router)
        .tls(tls)
        .limits(limits)
        .serve(shutdown)
        .await
}

/// An accept loop, configured: [`serve`] with more settings.
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, router: axum::Router,
/// #     metrics: std::sync::Arc<ta_widget_service::Metrics>) {
/// use ta_widget_service::server::{Server, ServerLimits};
/// let stopped = Server::new(listener, router)
///     .limits(ServerLimits::default().with_connections(1024, 64))
///     .metrics(metrics)
///     .serve(std::future::pending())
///     .await;
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerTls>>,
    limits: ServerLimits,
    exempt: Vec<IpAddr>,
    metrics: Option<Arc<Metrics>>,
}

impl Server {
    /// `router` on `listener`, over plain HTTP, with the default limits.
    pub fn new(listener: TcpListener, router: Router) -> Self {
        Self {
            listener,
            router,
            tls: None,
            limits: ServerLimits::default(),
            exempt: Vec::new(),
            metrics: None,
        }
    }

    /// Over TLS when given.
    pub fn tls(mut self, tls: Option<Arc<ServerTls>>) -> Self {
        self.tls = tls;
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Addresses spared the per-client cap (a reverse proxy's, whose
    /// connections carry many clients).
    pub fn exempt(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.exempt = addresses.into_iter().collect();
        self
    }

    /// Counts connections in these metrics (`ta_connections_open`,
    /// `ta_connections_refused_total`, `ta_connections_dropped_total`,
    /// `ta_accept_errors_total`).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves until `shutdown` completes, then drains (see [`serve`]).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Stopped {
        let Self {
            listener,
            router,
            tls,
            limits,
            exempt,
            metrics,
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper refuses buffers under 8 KiB.
        let head = limits.max_head_bytes.max(8192);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.head_timeout)
            .max_buf_size(head);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
        let builder = Arc::new(builder);
        let registry = Registry::new(
            limits.max_connections,
            limits.max_connections_per_client,
            exempt,
            metrics.map(|m| m.connections.clone()),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // One task per connection; finished ones are reaped as we go.
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut failing = AcceptFailures::default();
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => {
                    failing.recovered();
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors and the like: say it (at most
                    // once a minute), free a descriptor held for nothing
                    // (once per accept that works, and only when they ran
                    // out), and back off rather than spin.
                    registry.count_accept_error();
                    let shed = failing.may_shed(&e) && registry.shed_waiting();
                    let wait = failing.failed(&e, shed);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            };
            let ticket = match registry.admit(peer.ip()) {
                Ok(ticket) => ticket,
                Err(why) => {
                    debug!(%peer, reason = why.label(), "connection refused at accept");
                    // Dropped: closed at once.
                    drop(tcp);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let activity = ticket.activity();
            let service = hyper_util::service::TowerToHyperService::new(
                router
                    .clone()
                    .map_request(
                        move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(ConnectInfo(peer));
                            request
                        },
                    )
                    .map_future({
                        let activity = Arc::clone(&activity);
                        move |answer| {
                            // Busy from the request's head until its
                            // response's body is sent, or until either is
                            // given up (a reset HTTP/2 stream, a panic).
                            let guard = activity.request_began();
                            async move {
                                let response: axum::response::Response = answer.await?;
                                Ok::<_, std::convert::Infallible>(response.map(|body| {
                                    axum::body::Body::new(http_body_util::BodyExt::map_err(
                                        body,
                                        move |e| {
                                            let _busy = &guard;
                                            e
                                        },
                                    ))
                                }))
                            }
                        }
                    }),
            );
            let builder = Arc::clone(&builder);
            let mut stop = stop_rx.clone();
            let acceptor = tls
                .as_ref()
                .map(|tls| tokio_rustls::TlsAcceptor::from(tls.current()));
            let head_timeout = limits.head_timeout;
            let registry_for_task = Arc::clone(&registry);
            let id = ticket.id();
            while connections.try_join_next().is_some() {}
            let abort = connections.spawn(async move {
                // Its place is freed when the task ends, however it ends.
                let _ticket = ticket;
                let served = async {
                    match acceptor {
                        None => {
                            first_head_within(
                                head_timeout,
                                &activity,
                                drive(&builder, TokioIo::new(tcp), service, &mut stop),
                            )
                            .await
                        }
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(head_timeout, acceptor.accept(tcp));
                            let stream = tokio::select! {
                                done = handshake => match done {
                                    Ok(Ok(stream)) => stream,
                                    Ok(Err(e)) => {
                                        debug!(%peer, error = %e, "TLS handshake failed");
                                        return true;
                                    }
                                    Err(_) => {
                                        debug!(%peer, "TLS handshake timed out");
                                        return false;
                                    }
                                },
                                _ = stop.changed() => return true,
                            };
                            first_head_within(
                                head_timeout,
                                &activity,
                                drive(&builder, TokioIo::new(stream), service, &mut stop),
                            )
                            .await
                        }
                    }
                };
                if !served.await {
                    debug!(%peer, "closed: no request head in time");
                    registry_for_task.count_dropped("no_request_head");
                }
            });
            registry.set_abort(id, &abort);
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(limits.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        match drained {
            Ok(()) => Stopped::Drained,
            Err(_) => {
                let dropped = connections.len();
                connections.abort_all();
                while connections.join_next().await.is_some() {}
                Stopped::GraceExpired { dropped }
            }
        }
    }
}

/// Runs `connection` unless no request head is complete on it within
/// `timeout`: whether it ran (false: closed for want of a head).
async fn first_head_within(
    timeout: Duration,
    activity: &Activity,
    connection: impl Future<Output = ()>,
) -> bool {
    let deadline = async {
        tokio::time::sleep(timeout).await;
        if activity.started() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = connection => true,
        () = deadline => false,
    }
}

/// Accept failures: said at most once a minute (with how many there were),
/// and waited out: briefly when a waiting connection was shed to free a
/// descriptor, else with a backoff that doubles from 50 ms to 1 s.
#[derive(Debug, Default)]
struct AcceptFailures {
    in_a_row: u32,
    warned_at: Option<std::time::Instant>,
    unreported: u64,
    /// When a waiting connection was last shed.
    shed_at: Option<std::time::Instant>,
    /// Whether one was shed since the last accept that worked.
    shed_since_accept: bool,
}

/// With no accept working in between, at most this often is a waiting
/// connection shed (the descriptor freed may have gone to another of the
/// process's sockets; a burst may not empty the table).
const SHED_EVERY: Duration = Duration::from_millis(100);

impl AcceptFailures {
    /// Whether to shed a waiting connection for `error`: when the process
    /// or the system is out of descriptors (`EMFILE`, `ENFILE`), once per
    /// accept that worked since (each queued connection then takes the
    /// place of a waiting one), else at most once per [`SHED_EVERY`].
    fn may_shed(&mut self, error: &std::io::Error) -> bool {
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        let out_of_descriptors = matches!(error.raw_os_error(), Some(ENFILE | EMFILE));
        let due =
            !self.shed_since_accept || self.shed_at.is_none_or(|at| at.elapsed() >= SHED_EVERY);
        let may = out_of_descriptors && due;
        if may {
            self.shed_at = Some(std::time::Instant::now());
            self.shed_since_accept = true;
        }
        may
    }

    /// How long to wait after this failure.
    fn failed(&mut self, error: &std::io::Error, shed: bool) -> Duration {
        self.unreported = self.unreported.saturating_add(1);
        let due = self
            .warned_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            warn!(
                error = %error,
                failures = self.unreported,
                shed_a_waiting_connection = shed,
                "accepting connections failed; backing off (said at most once a minute)"
            );
            self.warned_at = Some(std::time::Instant::now());
            self.unreported = 0;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        if shed {
            // A descriptor is being freed: try again soon.
            return Duration::from_millis(10);
        }
        // Out of descriptors, the next shed is due soon: no longer a wait.
        let exponent = self.in_a_row.saturating_sub(1).min(5);
        let backoff = Duration::from_millis(50u64 << exponent).min(Duration::from_secs(1));
        if self.shed_at.is_some() && matches!(error.raw_os_error(), Some(23 | 24)) {
            backoff.min(SHED_EVERY)
        } else {
            backoff
        }
    }

    fn recovered(&mut self) {
        self.shed_since_accept = false;
        if self.in_a_row > 0 {
            debug!(failures = self.in_a_row, "accepting connections again");
            self.in_a_row = 0;
        }
    }
}

async fn drive<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // No upgrades: an upgraded connection would leave the registry's count.
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
