//! Randomness, injected so that tests control it: the one
//! [`ta_protocol::Entropy`] trait, made fresh for each flow.

use std::sync::Arc;

use ring::rand::SecureRandom as _;
use ta_protocol::{ClientRequestId, Entropy};

/// Makes the [`Entropy`] each flow, token fetch and session draws from: the
/// bootstrapper and the token provider call it once per use. The default is
/// [`RandomEntropy`]. What it makes must never repeat an id across calls
/// (AAD refuses a replayed assertion `jti`, the API a reused session id):
/// a test that wants reproducible ids seeds each one differently.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ta_bootstrap::EntropySource;
/// use ta_protocol::{Entropy, SeededEntropy};
///
/// let next = AtomicU64::new(1);
/// let seeded: EntropySource = Arc::new(move || {
///     Box::new(SeededEntropy::new(next.fetch_add(1, Ordering::Relaxed))) as Box<dyn Entropy>
/// });
/// assert_ne!(seeded().unique_id(), seeded().unique_id());
/// ```
pub type EntropySource = Arc<dyn Fn() -> Box<dyn Entropy> + Send + Sync>;

/// The default [`EntropySource`]: a [`RandomEntropy`] each time.
pub(crate) fn random_entropy() -> EntropySource {
    Arc::new(|| Box::new(RandomEntropy::new()) as Box<dyn Entropy>)
}

/// UUID v4 ids (request ids, `jti`s and session ids) and jitter from the
/// system's random source.
#[derive(Debug)]
pub struct RandomEntropy {
    random: ring::rand::SystemRandom,
}

impl RandomEntropy {
    /// The system's random source.
    pub fn new() -> Self {
        Self {
            random: ring::rand::SystemRandom::new(),
        }
    }
}

impl Default for RandomEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl Entropy for RandomEntropy {
    #[allow(clippy::expect_used)] // 36 visible ASCII characters always pass
    fn client_request_id(&mut self) -> ClientRequestId {
        ClientRequestId::new(&uuid::Uuid::new_v4().to_string())
            .expect("a hyphenated UUID is a valid request id")
    }

    fn jitter(&mut self) -> f64 {
        let mut bytes = [0u8; 8];
        if self.random.fill(&mut bytes).is_err() {
            return 0.5;
        }
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn unique_id(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_uuids_and_jitter_is_in_range() {
        let mut entropy = RandomEntropy::new();
        let a = entropy.session_id();
        let b = entropy.session_id();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert_ne!(entropy.unique_id(), entropy.unique_id());
        for _ in 0..100 {
            let j = entropy.jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
