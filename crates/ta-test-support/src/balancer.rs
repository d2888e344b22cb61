//! A round-robin load balancer on loopback: each request goes to the next
//! backend in turn, as a balancer with no affinity spreads a platform's
//! callbacks over replicas.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use ta_protocol::Transport as _;

/// The balancer: its backends and what each got.
pub struct Balancer {
    backends: Vec<SocketAddr>,
    next: AtomicUsize,
    sent: Vec<AtomicUsize>,
    client: ta_hyper::HyperTransport,
}

impl Balancer {
    /// A balancer over `backends` (plain HTTP), listening on a loopback
    /// port: it and its address.
    pub async fn start(backends: Vec<SocketAddr>) -> (Arc<Self>, SocketAddr) {
        let balancer = Arc::new(Self {
            sent: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            backends,
            next: AtomicUsize::new(0),
            client: ta_hyper::HyperTransport::builder().build().unwrap(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(balance)
            .with_state(Arc::clone(&balancer));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (balancer, addr)
    }

    /// The requests each backend got so far.
    pub fn sent(&self) -> Vec<usize> {
        self.sent.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }
}

async fn balance(
    axum::extract::State(lb): axum::extract::State<Arc<Balancer>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let i = lb.next.fetch_add(1, Ordering::SeqCst) % lb.backends.len();
    if let Some(sent) = lb.sent.get(i) {
        sent.fetch_add(1, Ordering::SeqCst);
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = http::Request::builder()
        .method(parts.method)
        .uri(format!("http://{}{path}", lb.backends[i]));
    for (name, value) in &parts.headers {
        if name != http::header::HOST {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = lb.client.send(forwarded.body(body).unwrap()).await;
    match answer {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            axum::response::IntoResponse::into_response((parts.status, parts.headers, body))
        }
        Err(_) => axum::response::IntoResponse::into_response(http::StatusCode::BAD_GATEWAY),
    }
}
