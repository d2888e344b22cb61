//! `serve` out of file descriptors: run with a small `ulimit -n` and held
//! past it by connections that never finish a request head, it neither
//! spins nor exits. It says so once, sheds the oldest waiting connection to
//! free a descriptor, serves a legitimate request, and the metrics count it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "common/bin.rs"]
mod bin;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ta_emulator::EmulatorConfig;

/// The descriptors `serve` may have: a few dozen for itself, then the
/// connections.
const NOFILE: u32 = 64;

fn get(addr: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_it_backs_off_sheds_and_serves() {
    let d = bin::deployment(EmulatorConfig::default()).await;
    let mut args = vec!["serve".to_owned()];
    args.extend(bin::args(&d));
    args.extend(
        [
            "--allowed-origin",
            "https://contoso.com",
            "--listen",
            "127.0.0.1:0",
            "--max-connections-per-client",
            "0",
        ]
        .map(str::to_owned),
    );
    let served = bin::spawn_serve_command(bin::command_with_fd_limit(NOFILE), args, 0).await;
    let addr = served.base().trim_start_matches("http://").to_owned();
    // More half-open connections than the process has descriptors.
    let mut held = Vec::new();
    for _ in 0..(NOFILE * 2) {
        let mut tcp = TcpStream::connect(&addr).unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        held.push(tcp);
    }
    served.wait_for_log("accepting connections failed").await;
    // A legitimate request is served, within seconds, with all of those
    // still held by the client.
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || get(&addr, "/healthz")
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{answer:?} after {:?}; stderr:\n{}",
        started.elapsed(),
        served.stderr.lock().unwrap().join("\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served after {:?}",
        started.elapsed()
    );
    drop(held);
    // Said once, counted, and still running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served.log_count("accepting connections failed"), 1);
    let metrics = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || get(&addr, "/metrics")
    })
    .await
    .unwrap();
    let count = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("ta_accept_errors_total") >= 1, "{metrics}");
    assert!(
        count("ta_connections_dropped_total{reason=\"evicted\"}") >= 1,
        "{metrics}"
    );
    assert_eq!(served.stop().await, Some(0), "it did not exit cleanly");
}
