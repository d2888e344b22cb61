//! The peers the conformance checks talk to: HTTPS servers on loopback,
//! each with one job.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::server::StartError;
use crate::tls::Authority;

/// The header that tells the HTTP version the server saw.
pub(super) const SEEN_VERSION: &str = "x-conformance-version";

/// What the good servers answer (the same on each):
/// - `GET /headers`: the request's headers, one `name: value` line each;
/// - `POST /echo`: the request's body;
/// - `GET /redirect`: 307 to `/headers`;
/// - `GET /big?n=N`: N bytes with a `Content-Length`; `/big-chunked?n=N`:
///   N bytes without one;
/// - `GET /hang`: no answer, ever.
async fn answer(request: hyper::Request<Incoming>) -> Result<hyper::Response<Out>, Infallible> {
    let version = format!("{:?}", request.version());
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let size = query
        .strip_prefix("n=")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(64 << 20);
    let response = hyper::Response::builder().header(SEEN_VERSION, version);
    let response = match path.as_str() {
        "/headers" => {
            let mut lines = String::new();
            for (name, value) in request.headers() {
                lines.push_str(name.as_str());
                lines.push_str(": ");
                lines.push_str(&String::from_utf8_lossy(value.as_bytes()));
                lines.push('\n');
            }
            response.body(full(Bytes::from(lines)))
        }
        "/echo" => {
            let content_type = request.headers().get(http::header::CONTENT_TYPE).cloned();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut response = response;
            if let Some(content_type) = content_type {
                response = response.header(http::header::CONTENT_TYPE, content_type);
            }
            response.body(full(body))
        }
        "/redirect" => response
            .status(307)
            .header(http::header::LOCATION, "/headers")
            .body(full(Bytes::new())),
        "/big" => response.body(full(Bytes::from(vec![b'x'; size]))),
        "/big-chunked" => response.body(
            Unsized(Some(Bytes::from(vec![b'x'; size])))
                .map_err(|never| match never {})
                .boxed(),
        ),
        "/hang" => {
            std::future::pending::<()>().await;
            response.body(full(Bytes::new()))
        }
        _ => response.status(404).body(full(Bytes::new())),
    };
    Ok(response.unwrap_or_else(|_| hyper::Response::new(full(Bytes::new()))))
}

type Out = BoxBody<Bytes, Infallible>;

fn full(bytes: Bytes) -> Out {
    http_body_util::Full::new(bytes).boxed()
}

/// A body whose length is not told in advance (HTTP/1.1 sends it chunked).
struct Unsized(Option<Bytes>);

impl Body for Unsized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
    }
}

/// Which HTTP versions a server speaks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Versions {
    Both,
    Http1,
    Http2,
}

impl Versions {
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Self::Both => &[b"h2", b"http/1.1"],
            Self::Http1 => &[b"http/1.1"],
            Self::Http2 => &[b"h2"],
        }
    }
}

/// The running servers. Dropping it stops them.
#[derive(Debug)]
pub(super) struct Servers {
    pub(super) ca_pem: String,
    pub(super) both: SocketAddr,
    pub(super) http1: SocketAddr,
    pub(super) http2: SocketAddr,
    pub(super) untrusted: SocketAddr,
    pub(super) mismatch: SocketAddr,
    pub(super) reset: SocketAddr,
    pub(super) refused: SocketAddr,
    _tasks: JoinSet<()>,
}

const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

impl Servers {
    pub(super) async fn start() -> Result<Self, StartError> {
        let trusted = Authority::generate("ta-emulator conformance CA")?;
        let stranger = Authority::generate("a CA nobody trusts")?;
        let mut tasks = JoinSet::new();
        let both = serve(
            &mut tasks,
            trusted.server_config(&NAMES, Versions::Both.alpn())?,
            Versions::Both,
        )
        .await?;
        let http1 = serve(
            &mut tasks,
            trusted.server_config(&NAMES, Versions::Http1.alpn())?,
            Versions::Http1,
        )
        .await?;
        let http2 = serve(
            &mut tasks,
            trusted.server_config(&NAMES, Versions::Http2.alpn())?,
            Versions::Http2,
        )
        .await?;
        let untrusted = serve(
            &mut tasks,
            stranger.server_config(&NAMES, Versions::Both.alpn())?,
            Versions::Both,
        )
        .await?;
        let mismatch = serve(
            &mut tasks,
            trusted.server_config(&["conformance.invalid"], Versions::Both.alpn())?,
            Versions::Both,
        )
        .await?;
        let reset = reset_mid_body(
            &mut tasks,
            trusted.server_config(&NAMES, Versions::Http1.alpn())?,
        )
        .await?;
        // A port that was free a moment ago: nothing listens there.
        let refused = bind().await?.local_addr().map_err(bind_error)?;
        Ok(Self {
            ca_pem: trusted.pem().to_owned(),
            both,
            http1,
            http2,
            untrusted,
            mismatch,
            reset,
            refused,
            _tasks: tasks,
        })
    }
}

fn bind_error(source: std::io::Error) -> StartError {
    StartError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    }
}

async fn bind() -> Result<TcpListener, StartError> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(bind_error)
}

/// Serves [`answer`] over TLS with `config`, speaking `versions`.
async fn serve(
    tasks: &mut JoinSet<()>,
    config: Arc<ServerConfig>,
    versions: Versions,
) -> Result<SocketAddr, StartError> {
    let listener = bind().await?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let acceptor = TlsAcceptor::from(config);
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut builder = Builder::new(TokioExecutor::new());
                builder = match versions {
                    Versions::Both => builder,
                    Versions::Http1 => builder.http1_only(),
                    Versions::Http2 => builder.http2_only(),
                };
                let service = hyper::service::service_fn(answer);
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            // Finished connections are reaped as new ones come.
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(addr)
}

/// Answers every request with the head of a 512-byte body and 16 bytes
/// of it, then resets the connection.
async fn reset_mid_body(
    tasks: &mut JoinSet<()>,
    config: Arc<ServerConfig>,
) -> Result<SocketAddr, StartError> {
    let listener = bind().await?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let acceptor = TlsAcceptor::from(config);
    tasks.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // SO_LINGER 0: closing sends a reset at once (it never blocks).
            let _ = stream.set_zero_linger();
            let Ok(mut stream) = acceptor.accept(stream).await else {
                continue;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 512\r\n\r\n0123456789abcdef")
                .await;
            let _ = stream.flush().await;
            drop(stream);
        }
    });
    Ok(addr)
}
