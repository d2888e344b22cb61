//! What the benchmarks share: a widget's lean HTTP/1.1 connection to
//! `serve`, and percentiles.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use ta_protocol::OriginPolicy;
use ta_widget_service::{Metrics, ServiceConfig, WidgetService};

/// The widget-token service on `setup`'s bootstrapper for
/// `https://contoso.com`, its rate limits raised out of the way.
pub fn service(setup: &ta_test_support::Setup, metrics: Arc<Metrics>) -> WidgetService {
    service_with_pool(setup, metrics, ta_widget_service::PoolConfig::off())
}

/// The same with a pool of pre-minted tokens.
pub fn service_with_pool(
    setup: &ta_test_support::Setup,
    metrics: Arc<Metrics>,
    pool: ta_widget_service::PoolConfig,
) -> WidgetService {
    let allowlist =
        WidgetService::allowlist(&["https://contoso.com".to_owned()], OriginPolicy::default())
            .unwrap();
    let mut config = ServiceConfig::new(allowlist);
    config.per_client_per_minute = u32::MAX;
    config.global_per_second = u32::MAX;
    config.pool = pool;
    WidgetService::new(setup.bootstrapper.clone(), config, metrics)
}

/// `service` on the accept loop `serve` runs, on a loopback port: its
/// address.
pub async fn listen(service: &WidgetService) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ta_widget_service::server::serve(
        listener,
        service.router(),
        None,
        ta_widget_service::server::ServerLimits::default(),
        std::future::pending(),
    ));
    addr
}

/// A widget's kept-alive HTTP/1.1 connection to `serve`, as lean as a load
/// generator such as wrk: the request written as fixed bytes, the answer's
/// status line and `content-length` read, the body skipped. The widgets
/// stand for browsers, whose HTTP client does not run on the service's
/// cores; a lean client keeps their share of the two shared cores small.
pub struct WidgetConnection {
    addr: std::net::SocketAddr,
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl WidgetConnection {
    pub async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            addr,
            stream,
            buffer: Vec::with_capacity(8192),
        }
    }

    /// Sends `request` and reads the whole answer; its status. A connection
    /// that `serve` closed while it was idle (its head timeout, 10 s) is
    /// opened again, as browsers do.
    pub async fn call(&mut self, request: &[u8]) -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut chunk = [0u8; 4096];
        let first = match self.stream.write_all(request).await {
            Ok(()) => self.stream.read(&mut chunk).await.unwrap_or(0),
            Err(_) => 0,
        };
        let first = if first == 0 {
            *self = Self::open(self.addr).await;
            self.stream.write_all(request).await.unwrap();
            self.stream.read(&mut chunk).await.unwrap()
        } else {
            first
        };
        self.buffer.clear();
        self.buffer.extend_from_slice(&chunk[..first]);
        let (head_end, status, length) = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..at]).unwrap();
                let status: u16 = head[9..12].parse().unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .expect("an answer with a content-length");
                break (at + 4, status, length);
            }
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "serve closed the connection mid-answer");
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "serve closed the connection mid-body");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(self.buffer.len(), head_end + length, "one answer at a time");
        status
    }
}

/// The `p` quantile (0 to 1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// How a run's figure stands against its target, in the report.
pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
