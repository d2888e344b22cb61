//! The API at a network distance: every request pays a round trip, a new
//! connection two more (TCP and TLS), the emulator's own routes none.
//! The round trips are counted exactly; the times only from below (a busy
//! machine may add, never remove).
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use ta_emulator::*;

const RTT: Duration = Duration::from_millis(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_connections_pay_the_round_trip() {
    let config = EmulatorConfig {
        network: NetworkDistance::new(150, 0),
        ..EmulatorConfig::default()
    };
    let (emulator, client) = start(config).await;
    let url = disco(&emulator, "/platformservice/discover");
    // A new connection: TCP, TLS, then the request.
    let started = Instant::now();
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    let first = started.elapsed();
    assert!(first >= RTT * 3, "{first:?}");
    assert_eq!(emulator.stats().network_round_trips, 3);
    // The same connection again: the request alone.
    let started = Instant::now();
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    let again = started.elapsed();
    assert!(again >= RTT, "{again:?}");
    assert_eq!(emulator.stats().network_round_trips, 4);
    // The emulator's own routes cross no distance.
    let stats_url = disco(&emulator, "/_emulator/stats");
    assert_eq!(get(&client, &stats_url, &[]).await.status, 200);
    assert_eq!(emulator.stats().network_round_trips, 4);
    // The emulator's own counters are not delayed; nothing counts as a fault.
    let stats = emulator.stats();
    assert!(stats.faults_fired.is_empty(), "{:?}", stats.faults_fired);
    assert_eq!(stats.requests(Route::Discovery), 2);
    assert_eq!(stats.connections_accepted, 1, "set up once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_distance_changes_while_running_and_is_checked() {
    let (emulator, client) = start(EmulatorConfig::default()).await;
    let url = disco(&emulator, "/platformservice/discover");
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    emulator
        .set_network_distance(NetworkDistance::new(150, 20))
        .unwrap();
    assert_eq!(emulator.network_distance(), NetworkDistance::new(150, 20));
    let started = Instant::now();
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(130));
    let error = emulator
        .set_network_distance(NetworkDistance::new(10, 20))
        .unwrap_err();
    assert!(error.contains("jitter_ms"), "{error}");
    assert_eq!(emulator.network_distance(), NetworkDistance::new(150, 20));
    emulator
        .set_network_distance(NetworkDistance::default())
        .unwrap();
    let error = EmulatorConfig {
        network: NetworkDistance::new(MAX_RTT_MS + 1, 0),
        ..EmulatorConfig::default()
    }
    .validate()
    .unwrap_err();
    assert!(error.to_string().contains("network.rtt_ms"), "{error}");
}
