//! The platform's callbacks are never starved by a flood: while another
//! address keeps the service's connection cap full of connections that
//! never finish a request head (each new one taking the oldest one's
//! place), a whole chat still runs. Its callbacks arrive on new
//! connections too, and each takes the place of the oldest unfinished
//! head.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "chat/rig.rs"]
mod rig;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rig::*;
use ta_widget_service::server::ServerLimits;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpSocket;

/// The cap the flood holds.
const CAP: usize = 24;

/// Opens connections from 127.0.0.9 that start a head and never finish
/// it, keeping about `CAP` of them (and more) until `stop`; counts them.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, opened: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        let mut held = std::collections::VecDeque::new();
        while !stop.load(Ordering::Relaxed) {
            let socket = TcpSocket::new_v4().unwrap();
            socket
                .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 0))
                .unwrap();
            if let Ok(mut tcp) = socket.connect(addr).await {
                let _ = tcp
                    .write_all(b"POST /v1/callback HTTP/1.1\r\nHost: x\r\n")
                    .await;
                held.push_back(tcp);
                opened.fetch_add(1, Ordering::Relaxed);
            }
            if held.len() > 2 * CAP {
                held.pop_front();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_runs_while_the_cap_is_held_by_unfinished_heads() {
    let limits = ServerLimits::default().with_connections(CAP, 0);
    let rig = Rig::start_limited(quick_chat(), limits).await;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    flood(rig.addr, Arc::clone(&stop), Arc::clone(&opened));
    // The cap is full before the widget comes.
    let secs = Duration::from_secs(10);
    let end = tokio::time::Instant::now() + secs;
    while opened.load(Ordering::Relaxed) < 2 * CAP && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rig.metrics_text()
            .contains(&format!("ta_connections_open {CAP}"))
    );

    let mut widget = rig.widget().await;
    widget.open_chat(secs).await;
    rig.until(secs, |s| s.chat.agents_joined == 1).await;
    assert_eq!(widget.say("Where is my order?").await, 201);
    widget
        .poll_until(secs, |e| is_message(e, "Hi, I'm Anna. How can I help?"))
        .await;
    assert_eq!(widget.post("stopMessaging").await, 204);
    let stats = rig.until(secs, |s| s.chat.conversations_open == 0).await;
    stop.store(true, Ordering::Relaxed);

    assert_eq!(stats.chat.conversations_open, 0, "{:?}", stats.chat);
    assert_eq!(stats.chat.callbacks_refused, 0, "{:?}", stats.chat);
    assert_eq!(stats.chat.callbacks_failed, 0, "{:?}", stats.chat);
    assert!(
        stats.chat.callbacks_delivered >= 3,
        "the platform's callbacks: {:?}",
        stats.chat
    );
    let metrics = rig.metrics_text();
    assert!(metrics.contains("ta_chats_bridged_total 1"), "{metrics}");
    let evicted = metrics
        .lines()
        .find(|l| l.starts_with("ta_connections_dropped_total{reason=\"evicted\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        evicted as usize >= opened.load(Ordering::Relaxed) - 2 * CAP,
        "the flood's heads were taken by eviction: {evicted}\n{metrics}"
    );
}
