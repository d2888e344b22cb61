//! The listener: TLS with tokio-rustls, each connection served by hyper-util.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::app::{State, lowercase_path, router, widget_router};
use crate::chat_config::CallbackFaults;
use crate::config::{ConfigError, EmulatorConfig};
use crate::faults::FaultRule;
use crate::reset::ConnectionKill;
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::{TlsError, TlsMaterial};

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The signing key could not be loaded.
    #[error("{0}")]
    Keys(String),
}

/// A running emulator. Dropping it stops it (connections included).
///
/// ```no_run
/// # async fn example() -> Result<(), ta_emulator::StartError> {
/// let emulator = ta_emulator::Emulator::start(ta_emulator::EmulatorConfig::default()).await?;
/// println!("discover URL: {}", emulator.discover_url());
/// println!("token URL:    {}", emulator.token_url());
/// let trust_this = emulator.ca_pem(); // PEM of the emulator's fresh CA
/// # let _ = trust_this;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    widget_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    widget_accept: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds (loopback only), makes the TLS material, and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Self, StartError> {
        config.validate()?;
        crate::tokens::keys().map_err(StartError::Keys)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let widget_listener = if config.widget_http {
            let bind = SocketAddr::new(config.listen.ip(), 0);
            let listener = TcpListener::bind(bind)
                .await
                .map_err(|source| StartError::Bind { addr: bind, source })?;
            let addr = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr: bind, source })?;
            Some((listener, addr))
        } else {
            None
        };
        let widget_addr = widget_listener.as_ref().map(|(_, addr)| *addr);
        let tls = if config.tls {
            Some(TlsMaterial::generate()?)
        } else {
            None
        };
        let (callbacks, queue) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(State::new(
            config,
            addr.port(),
            widget_addr.map(|a| a.port()),
            callbacks,
        ));
        tokio::spawn(crate::app::deliver_callbacks(
            Arc::downgrade(&state),
            tls.as_ref().map(|t| t.ca_pem.clone()),
            queue,
        ));
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(
            listener,
            tls.as_ref()
                .map(|t| TlsAcceptor::from(Arc::clone(&t.server_config))),
            Arc::clone(&state),
            router(Arc::clone(&state)),
            stopped.clone(),
        ));
        let widget_accept = widget_listener.map(|(listener, _)| {
            tokio::spawn(accept_loop(
                listener,
                None,
                Arc::clone(&state),
                widget_router(Arc::clone(&state)),
                stopped,
            ))
        });
        Ok(Self {
            state,
            addr,
            widget_addr,
            ca_pem: tls.map(|t| t.ca_pem),
            stop,
            accept,
            widget_accept,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain-HTTP address of the widget-facing side, with
    /// [`EmulatorConfig::widget_http`].
    pub fn widget_addr(&self) -> Option<SocketAddr> {
        self.widget_addr
    }

    /// The discover URL (on `127.0.0.1`; the API's links point at
    /// `localhost`).
    pub fn discover_url(&self) -> String {
        self.state.discover_url()
    }

    /// The AAD v2 token URL of the tenant.
    pub fn token_url(&self) -> String {
        self.state.token_url()
    }

    /// The AAD v1 token URL of the tenant.
    pub fn token_url_v1(&self) -> String {
        self.state
            .token_url()
            .replace("/oauth2/v2.0/token", "/oauth2/token")
    }

    /// The audience tokens must be issued for.
    pub fn audience(&self) -> String {
        self.state.audience()
    }

    /// The PEM of the CA that signed the emulator's certificate (`None` when
    /// serving plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Writes the CA PEM to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> std::io::Result<()> {
        match &self.ca_pem {
            Some(pem) => std::fs::write(path, pem),
            None => Err(std::io::Error::other(
                "the emulator serves plain HTTP: no CA",
            )),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.state.snapshot()
    }

    /// Moves the emulator's clock forward (or back): token expiry is checked
    /// against it.
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.state.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Sets the SA's registered callback URL (http(s) on a loopback
    /// address), where the first callback of each visitor's chat goes.
    pub fn set_callback_url(&self, url: &str) -> Result<(), String> {
        self.state.set_callback_url(Some(url))
    }

    /// The chat's conversations open now (the visitors' and the
    /// meetings), one line each: how far each got. For a report of what a
    /// run left open.
    pub fn open_conversations(&self) -> Vec<String> {
        self.state.open_conversations()
    }

    /// The callback faults now (from [`ChatConfig`](crate::ChatConfig) at
    /// start).
    pub fn callback_faults(&self) -> CallbackFaults {
        self.state.callback_faults()
    }

    /// Puts the API at `distance` from now on (new requests and
    /// connections pay it); [`NetworkDistance::default`] takes it away.
    ///
    /// # Errors
    ///
    /// When `distance` is out of range ([`NetworkDistance::validate`]); the
    /// distance in force is then unchanged.
    ///
    /// [`NetworkDistance::default`]: crate::NetworkDistance
    /// [`NetworkDistance::validate`]: crate::NetworkDistance::validate
    pub fn set_network_distance(&self, distance: crate::NetworkDistance) -> Result<(), String> {
        distance.validate()?;
        self.state.network.set(distance);
        Ok(())
    }

    /// The network distance in force.
    pub fn network_distance(&self) -> crate::NetworkDistance {
        self.state.network.get()
    }

    /// Changes the callback faults while running: callbacks delivered from
    /// now on are duplicated, reordered or delayed accordingly
    /// ([`clear_faults`](Self::clear_faults) leaves them as they are).
    pub fn set_callback_faults(&self, faults: CallbackFaults) {
        self.state.set_callback_faults(faults);
    }

    /// Rotates the platform's callback signing key: callbacks are signed
    /// with its second key from now on, which the keys document now lists
    /// too.
    pub fn rotate_callback_key(&self) {
        self.state.rotate_callback_key();
    }

    /// The identity provider's keys document, which callback tokens check
    /// against (`…/<tenant>/discovery/keys`).
    pub fn callback_keys_url(&self) -> String {
        format!(
            "{}/{}/discovery/keys",
            self.audience(),
            self.state.config.tenant
        )
    }

    /// The issuer of callback tokens: `https://sts.windows.net/<tenant id>/`.
    pub fn callback_issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.state.config.tenant_id)
    }

    /// Adds a fault rule while running.
    pub fn inject(&self, rule: FaultRule) {
        self.state.faults.add(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Stops accepting, closes every connection, and waits for the listener
    /// task to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut this = self;
        let _ = (&mut this.accept).await;
        if let Some(widget) = this.widget_accept.as_mut() {
            let _ = widget.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
        if let Some(widget) = &self.widget_accept {
            widget.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
) {
    // Dropping the set (when this task ends or is aborted) aborts every
    // connection.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors or a reset before accept: keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        Stats::bump(&state.stats.connections_accepted);
        let kill = ConnectionKill::default();
        let service = TowerToHyperService::new(router.clone().map_request({
            let kill = kill.clone();
            move |request| {
                let mut request = lowercase_path::<hyper::body::Incoming>(request);
                request.extensions_mut().insert(kill.clone());
                request
            }
        }));
        let state = Arc::clone(&state);
        let tls = tls.clone();
        connections.spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            // The handshakes cross the network: TCP's, then TLS's.
            state.network.cross(if tls.is_some() { 2 } else { 1 }).await;
            // A fault may ask for the connection to be reset unanswered.
            let stream = kill.guard(stream);
            let killed = kill.killed();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    Stats::bump(&state.stats.tls_handshakes);
                    tokio::select! {
                        _ = builder.serve_connection(TokioIo::new(stream), service) => {}
                        () = killed => {}
                    }
                }
                None => {
                    tokio::select! {
                        _ = builder.serve_connection(TokioIo::new(stream), service) => {}
                        () = killed => {}
                    }
                }
            }
        });
    }
}
