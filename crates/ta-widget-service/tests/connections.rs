//! The accept loop's bounds on connections: a cap held by clients that
//! never finish a request head still lets a legitimate request in (the
//! oldest unfinished heads are dropped first), a connection with no head in
//! time is closed (even one that sends nothing at all), one address holds
//! only its share unless exempt, and the gauge says how many are open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use ta_widget_service::Metrics;
use ta_widget_service::server::{Server, ServerLimits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A server of `/ok` and `/metrics` with these limits; its address.
async fn start(limits: ServerLimits, exempt: Vec<IpAddr>) -> (SocketAddr, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let router = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/metrics",
        get({
            let metrics = Arc::clone(&metrics);
            move || {
                let metrics = Arc::clone(&metrics);
                async move { metrics.encode() }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(listener, router)
        .limits(limits)
        .exempt(exempt)
        .metrics(Arc::clone(&metrics));
    tokio::spawn(server.serve(std::future::pending()));
    (addr, metrics)
}

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A connection that starts a request head and never finishes it.
async fn half_open(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let mut tcp = connect_from(from, addr).await;
    tcp.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tcp
}

/// A whole request on a new connection: the answer's status line.
async fn get_ok(from: Ipv4Addr, addr: SocketAddr, path: &str) -> (String, String) {
    let mut tcp = connect_from(from, addr).await;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, answer)
}

/// Whether the server closed `tcp` (a read gives end of file or a reset).
async fn closed(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, tcp.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// A metric's value from the Prometheus text (0 when absent).
fn value(metrics: &Metrics, line_start: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_held_by_unfinished_heads_still_serves_a_legitimate_request() {
    const CAP: usize = 20;
    // The head timeout is the default 10 s: here what makes room is the
    // cap's eviction, not the timeout.
    let limits = ServerLimits::default().with_connections(CAP, 0);
    let (addr, metrics) = start(limits, Vec::new()).await;
    let mut held = Vec::new();
    for _ in 0..CAP * 2 {
        held.push(half_open(LOCAL, addr).await);
    }
    // Give the loop the time to take them all.
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(&metrics, "ta_connections_dropped_total{reason=\"evicted\"}") < CAP as u64 {
        assert!(Instant::now() < deadline, "{}", metrics.encode());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(&metrics, "ta_connections_open "), CAP as u64);
    // The oldest were dropped: the first half is closed, the second held.
    for tcp in &mut held[..CAP] {
        assert!(
            closed(tcp, Duration::from_secs(2)).await,
            "an old head was kept"
        );
    }
    for tcp in &mut held[CAP..CAP + 3] {
        assert!(
            !closed(tcp, Duration::from_millis(100)).await,
            "a newer head was dropped"
        );
    }
    // A legitimate request gets in (taking the oldest unfinished place),
    // well within the head timeout.
    let started = Instant::now();
    let (status, answer) = tokio::time::timeout(Duration::from_secs(5), get_ok(LOCAL, addr, "/ok"))
        .await
        .expect("the legitimate request waited");
    assert!(status.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(value(&metrics, "ta_connections_open ") <= CAP as u64);
    let (_, exported) = get_ok(LOCAL, addr, "/metrics").await;
    assert!(exported.contains("ta_connections_open"), "{exported}");
    drop(held);
    // Closed by the clients: the gauge comes down.
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(&metrics, "ta_connections_open ") > 0 {
        assert!(Instant::now() < deadline, "{}", metrics.encode());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_no_request_head_in_time_is_closed() {
    let mut limits = ServerLimits::default();
    limits.head_timeout = Duration::from_millis(500);
    let (addr, metrics) = start(limits, Vec::new()).await;
    // One that starts a head, one that sends nothing at all (it never gets
    // past the HTTP version sniffing), one that is served and then idles.
    let mut started = half_open(LOCAL, addr).await;
    let mut silent = connect_from(LOCAL, addr).await;
    assert!(closed(&mut started, Duration::from_secs(5)).await);
    assert!(closed(&mut silent, Duration::from_secs(5)).await);
    assert!(
        value(
            &metrics,
            "ta_connections_dropped_total{reason=\"no_request_head\"}"
        ) >= 1
    );
    let (status, _) = get_ok(LOCAL, addr, "/ok").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_its_share_unless_exempt() {
    let exempt = Ipv4Addr::new(127, 0, 0, 3);
    let limits = ServerLimits::default().with_connections(100, 3);
    let (addr, metrics) = start(limits, vec![IpAddr::V4(exempt)]).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(half_open(LOCAL, addr).await);
    }
    let mut fourth = half_open(LOCAL, addr).await;
    assert!(
        closed(&mut fourth, Duration::from_secs(2)).await,
        "a 4th was kept"
    );
    assert_eq!(
        value(
            &metrics,
            "ta_connections_refused_total{reason=\"per_client\"}"
        ),
        1
    );
    // Another address is not held back, nor the exempt one.
    let (status, _) = get_ok(Ipv4Addr::new(127, 0, 0, 2), addr, "/ok").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut proxied = Vec::new();
    for _ in 0..6 {
        proxied.push(half_open(exempt, addr).await);
    }
    // All taken by the server: its three and the proxy's six.
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(&metrics, "ta_connections_open ") < 9 {
        assert!(Instant::now() < deadline, "{}", metrics.encode());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(&metrics, "ta_connections_open "), 9);
    for tcp in &mut proxied {
        assert!(!closed(tcp, Duration::from_millis(100)).await);
    }
    assert_eq!(
        value(
            &metrics,
            "ta_connections_refused_total{reason=\"per_client\"}"
        ),
        1
    );
    drop(mine);
}
