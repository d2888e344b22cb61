//! The identity provider's keys document (a JWKS): the RSA public keys a
//! callback token may be signed with, by key id.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// One RSA public key: modulus and exponent, big-endian.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaKey {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.len() * 8)
    }
}

/// The RSA signing keys of a keys document, by `kid` (and by `x5t`, which
/// AAD set to the same value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: HashMap<String, RsaKey>,
}

/// Why a keys document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON object with a `keys` array.
    #[error("the keys document is not a JWKS: {0}")]
    NotJwks(String),
    /// It lists no usable RSA signing key.
    #[error("the keys document lists no RSA signing key with a kid")]
    NoKeys,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    x5t: Option<String>,
    n: String,
    e: String,
}

impl KeySet {
    /// Reads a keys document. Keys that are not RSA signing keys, or that
    /// do not decode, are skipped; a document with none is an error.
    pub fn parse(body: &[u8]) -> Result<Self, KeySetError> {
        let doc: Document =
            serde_json::from_slice(body).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for value in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if jwk.kty != "RSA" || jwk.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let (Ok(n), Ok(e)) = (
                URL_SAFE_NO_PAD.decode(&jwk.n),
                URL_SAFE_NO_PAD.decode(&jwk.e),
            ) else {
                continue;
            };
            let key = RsaKey { n, e };
            for id in [jwk.kid, jwk.x5t].into_iter().flatten() {
                keys.entry(id).or_insert_with(|| key.clone());
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// The key named `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&RsaKey> {
        self.keys.get(kid)
    }

    /// Whether it has a key named `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// How many key ids it knows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it knows none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
