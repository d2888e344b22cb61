//! The accept loop of `serve`: TLS pairs and their errors, the peer
//! address, and the graceful drain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use bytes::Bytes;
use ta_protocol::Transport as _;
use ta_widget_service::server::{ServerLimits, ServerTls, Stopped, TlsError, serve};

fn pair() -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (key.cert.pem(), key.signing_key.serialize_pem())
}

fn router() -> Router {
    Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
}

#[test]
fn tls_errors_say_what_is_wrong() {
    let (cert, key) = pair();
    let other_key = pair().1;
    let err =
        ServerTls::config_from_pem(key.as_bytes(), key.as_bytes(), "a.pem", "b.pem").unwrap_err();
    assert_eq!(
        err,
        TlsError::NoCertificate {
            path: "a.pem".to_owned()
        }
    );
    let err =
        ServerTls::config_from_pem(cert.as_bytes(), cert.as_bytes(), "a.pem", "b.pem").unwrap_err();
    assert_eq!(
        err,
        TlsError::NoKey {
            path: "b.pem".to_owned()
        }
    );
    let err = ServerTls::config_from_pem(cert.as_bytes(), other_key.as_bytes(), "a.pem", "b.pem")
        .unwrap_err();
    assert!(matches!(err, TlsError::Rejected { .. }), "{err:?}");
    let missing = std::env::temp_dir().join("ta-no-such-file.pem");
    let err = ServerTls::from_files(&missing, &missing).unwrap_err();
    assert!(err.to_string().contains("ta-no-such-file.pem"), "{err}");
    let config = ServerTls::config_from_pem(cert.as_bytes(), key.as_bytes(), "a", "b").unwrap();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[tokio::test]
async fn https_with_the_peer_address_and_a_drain_that_lets_requests_finish() {
    let (cert, key) = pair();
    let dir = std::env::temp_dir().join(format!("ta-server-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("c.pem"), &cert).unwrap();
    std::fs::write(dir.join("k.pem"), &key).unwrap();
    let tls = Arc::new(ServerTls::from_files(&dir.join("c.pem"), &dir.join("k.pem")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(),
        Some(tls),
        ServerLimits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = Arc::new(
        ta_hyper::HyperTransport::builder()
            .webpki_roots(false)
            .add_root_certificates_pem(cert.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let peer = client
        .send(
            http::Request::get(format!("https://{addr}/peer"))
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(peer.status(), 200);
    let peer: SocketAddr = std::str::from_utf8(peer.body()).unwrap().parse().unwrap();
    assert!(peer.ip().is_loopback());
    // A request in flight when shutdown starts gets its answer.
    let slow = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .send(
                    http::Request::get(format!("https://{addr}/slow"))
                        .body(Bytes::new())
                        .unwrap(),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.body().as_ref(), b"done");
    assert_eq!(server.await.unwrap(), Stopped::Drained);
    // And the listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let never = Router::new().route("/never", get(std::future::pending::<&'static str>));
    let mut limits = ServerLimits::default();
    limits.shutdown_grace = Duration::from_millis(300);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, never, None, limits, async move {
        let _ = stopped.await;
    }));
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let stuck = tokio::spawn(async move {
        client
            .send(
                http::Request::get(format!("http://{addr}/never"))
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap(), Stopped::GraceExpired { dropped: 1 });
    // The connection was really dropped: the client sees it closed.
    let outcome = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .expect("the dropped connection still hangs")
        .unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
}
