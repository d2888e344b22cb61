//! A replica's peer that records the callbacks sent on to it (and answers
//! 409 with the headers the platform acts on, and one it must not see),
//! and a callback token as the platform's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};

/// What the recording peer answers: its body.
pub const ANSWER: &str = r#"{"from":"the owner"}"#;

/// A request the peer got.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its path and query.
    pub uri: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// The peer, on a loopback port.
pub struct RecordingPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingPeer {
    /// Starts it: every request is recorded and answered 409 [`ANSWER`],
    /// with `Retry-After: 7`, `WWW-Authenticate: Bearer` and `x-hop`.
    pub async fn start() -> Self {
        let got: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Arc::clone(&got);
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push(Recorded {
                    uri: uri.to_string(),
                    headers,
                    body,
                });
                (
                    StatusCode::CONFLICT,
                    [
                        ("content-type", "application/json"),
                        ("retry-after", "7"),
                        ("www-authenticate", "Bearer"),
                        ("x-hop", "not relayed"),
                    ],
                    ANSWER,
                )
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, got }
    }

    /// What it got so far.
    pub fn got(&self) -> Vec<Recorded> {
        self.got.lock().unwrap().clone()
    }
}

/// A callback token (`Bearer …`) as the platform's for the emulator's SA,
/// signed with the emulator's first callback key.
pub fn platform_token(emulator: &ta_emulator::Emulator) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"aud": ta_emulator::DEFAULT_APP_ID_URI,
        "iss": emulator.callback_issuer(), "tid": ta_emulator::DEFAULT_TENANT_ID,
        "appid": "00000004-0000-0ff1-ce00-000000000000", "iat": now, "nbf": now, "exp": now + 3900});
    let keys = ta_emulator::signing::dev_callback_keys().unwrap();
    format!("Bearer {}", keys[0].sign_jwt(&claims).unwrap())
}
