//! Ids and randomness, injected so that tests control them.

use std::fmt::Debug;
use std::sync::Arc;

use ring::rand::SecureRandom as _;
use ta_protocol::{ApplicationSessionId, ClientRequestId, Entropy};

/// Where the orchestrator gets fresh ids and jitter.
pub trait IdSource: Send + Sync + Debug {
    /// A new widget session id (unique; never reused for another session).
    fn session_id(&self) -> ApplicationSessionId;
    /// A new `client-request-id`.
    fn request_id(&self) -> ClientRequestId;
    /// A value in `[0, 1)`.
    fn jitter(&self) -> f64;
}

/// UUID v4 ids and the system's random source.
#[derive(Debug)]
pub struct RandomIds {
    random: ring::rand::SystemRandom,
}

impl RandomIds {
    /// The system's random source.
    pub fn new() -> Self {
        Self {
            random: ring::rand::SystemRandom::new(),
        }
    }
}

impl Default for RandomIds {
    fn default() -> Self {
        Self::new()
    }
}

impl IdSource for RandomIds {
    #[allow(clippy::expect_used)] // 36 visible ASCII characters always pass
    fn session_id(&self) -> ApplicationSessionId {
        ApplicationSessionId::new(uuid::Uuid::new_v4().to_string())
            .expect("a hyphenated UUID is a valid session id")
    }

    #[allow(clippy::expect_used)] // 36 visible ASCII characters always pass
    fn request_id(&self) -> ClientRequestId {
        ClientRequestId::new(&uuid::Uuid::new_v4().to_string())
            .expect("a hyphenated UUID is a valid request id")
    }

    fn jitter(&self) -> f64 {
        let mut bytes = [0u8; 8];
        if self.random.fill(&mut bytes).is_err() {
            return 0.5;
        }
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Lends an [`IdSource`] to a flow as its [`Entropy`].
#[derive(Debug)]
pub(crate) struct EntropyFrom(pub(crate) Arc<dyn IdSource>);

impl Entropy for EntropyFrom {
    fn client_request_id(&mut self) -> ClientRequestId {
        self.0.request_id()
    }

    fn jitter(&mut self) -> f64 {
        self.0.jitter()
    }
}
