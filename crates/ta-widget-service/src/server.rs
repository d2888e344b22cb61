//! Serving a router over HTTP or HTTPS: the accept loop of `serve`.
//!
//! `axum::serve` has no TLS and no limits on request heads, so the service
//! runs its own loop: tokio-rustls for TLS (optional, reloadable), hyper's
//! auto builder (HTTP/1.1 and HTTP/2) with bounded request heads and a
//! header read timeout, the peer address as `ConnectInfo`, and a graceful
//! shutdown that lets requests in flight finish for a bounded time.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// Why a TLS certificate or key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block.
    #[error("{path}: no certificate found (expected PEM `CERTIFICATE` blocks, the leaf first)")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "{path}: no private key found (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
    )]
    NoKey {
        /// The file.
        path: String,
    },
    /// rustls refused the pair (the key does not match the certificate, or
    /// its algorithm is not supported).
    #[error("the certificate and key cannot be used together: {reason}")]
    Rejected {
        /// What rustls said.
        reason: String,
    },
}

/// The listener's TLS settings, read from a certificate chain and a key
/// (PEM files), and read again on [`reload`](Self::reload): connections
/// accepted after a reload use the new pair; open connections keep theirs.
#[derive(Debug)]
pub struct ServerTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and the private key.
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let config = Self::load(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            config: RwLock::new(config),
        })
    }

    /// Builds a rustls configuration from PEM text (`h2` and `http/1.1`
    /// offered by ALPN).
    pub fn config_from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_origin: &str,
        key_origin: &str,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_origin.to_owned(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey {
            path: key_origin.to_owned(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Rejected {
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        Self::config_from_pem(
            &cert,
            &key,
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
        )
    }

    /// Reads the two files again; on an error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Self::load(&self.cert_path, &self.key_path)?;
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// The certificate and key files.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.cert_path, &self.key_path)
    }

    fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

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
}

impl Default for ServerLimits {
    /// 16 KiB heads, 10 s to send one, 10 s grace at shutdown.
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
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
/// GOAWAY) and waits for them at most `limits.shutdown_grace`.
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // One task per connection; finished ones are reaped as we go.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let builder = Arc::clone(&builder);
        let mut stop = stop_rx.clone();
        let acceptor = tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.current()));
        let head_timeout = limits.head_timeout;
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            match acceptor {
                None => drive(&builder, TokioIo::new(tcp), service, &mut stop).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(head_timeout, acceptor.accept(tcp));
                    let stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = stop.changed() => return,
                    };
                    drive(&builder, TokioIo::new(stream), service, &mut stop).await;
                }
            }
        });
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
    let connection = builder.serve_connection_with_upgrades(io, service);
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
