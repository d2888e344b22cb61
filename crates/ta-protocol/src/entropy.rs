//! The values a flow must not make up itself: request ids, unique ids,
//! session ids and jitter.

use std::fmt;

use http::HeaderValue;

use crate::config::{ApplicationSessionId, MAX_SESSION_ID_CHARS};

/// A `client-request-id`: one fresh value per request, for tracing on both
/// sides.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientRequestId(HeaderValue);

/// A `client-request-id` that cannot go in a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client-request-id must be 1 to 200 visible ASCII characters")]
pub struct InvalidRequestId;

impl ClientRequestId {
    /// Checks that `id` is 1 to 200 visible ASCII characters.
    pub fn new(id: &str) -> Result<Self, InvalidRequestId> {
        if id.is_empty() || id.len() > 200 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidRequestId);
        }
        HeaderValue::from_str(id)
            .map(Self)
            .map_err(|_| InvalidRequestId)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is accepted, so this cannot fail.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for ClientRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ClientRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Supplies what a flow needs that is random: a fresh `client-request-id`
/// per request and a jitter value per backoff.
///
/// The orchestrator implements it with UUID v4s and a real random source;
/// tests use [`SeededEntropy`] for reproducible runs.
pub trait Entropy: Send {
    /// A fresh, unique request id.
    fn client_request_id(&mut self) -> ClientRequestId;
    /// A value in `[0, 1)` for backoff jitter.
    fn jitter(&mut self) -> f64;
    /// A fresh, unique id for anything else that must never repeat (a
    /// client assertion's `jti`). By default, a fresh request id's text.
    fn unique_id(&mut self) -> String {
        self.client_request_id().as_str().to_owned()
    }
    /// A fresh widget session id (`applicationSessionId`), never reused for
    /// another session. By default, a [`unique_id`](Self::unique_id), or a
    /// request id's text when that is not a valid session id.
    fn session_id(&mut self) -> ApplicationSessionId {
        ApplicationSessionId::new(self.unique_id()).unwrap_or_else(|_| {
            let id = self.client_request_id();
            let text: String = id.as_str().chars().take(MAX_SESSION_ID_CHARS).collect();
            // Visible ASCII, at most the limit: always a valid session id.
            ApplicationSessionId::new(text).unwrap_or_else(|_| fallback_session())
        })
    }
}

fn fallback_session() -> ApplicationSessionId {
    #[allow(clippy::expect_used)] // a constant that passes the check
    ApplicationSessionId::new("00000000-0000-4000-8000-000000000000".to_owned())
        .expect("a UUID is a valid session id")
}

/// Deterministic [`Entropy`] from a seed (SplitMix64): ids are UUID-shaped
/// and unique within one instance. For tests and simulations; production
/// drivers use real randomness.
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn client_request_id(&mut self) -> ClientRequestId {
        let a = self.next_u64();
        let b = self.next_u64();
        let text = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        );
        // Always 36 visible ASCII characters.
        ClientRequestId::new(&text).unwrap_or_else(|_| Self::fallback())
    }

    fn jitter(&mut self) -> f64 {
        // 53 random bits → [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl SeededEntropy {
    fn fallback() -> ClientRequestId {
        ClientRequestId(HeaderValue::from_static(
            "00000000-0000-4000-8000-000000000000",
        ))
    }
}
