//! RSA signing keys that sign RS256 JWTs and publish their public half as
//! a JWK: the emulator's AAD tokens, psat tokens and the platform's
//! callback tokens.

use std::fmt;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// The fixed development key the platform signs callback tokens with.
const DEV_CALLBACK_KEY: &str = include_str!("../keys/dev-callback-signing-key.pem");
/// The key a rotation switches to.
const DEV_CALLBACK_ROTATED_KEY: &str = include_str!("../keys/dev-callback-rotated-key.pem");

/// An RSA private key with its key id (`kid` = `x5t`, base64url of the
/// SHA-1 of its public key, as AAD's keys had).
pub struct SigningKey {
    pair: ring::signature::RsaKeyPair,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from a single-block PKCS#8 PEM.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, String> {
        let der = crate::tokens::pem_body(pem).ok_or("the key is not PEM")?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("the key is not an RSA PKCS#8 key: {e}"))?;
        let public = ring::signature::KeyPair::public_key(&pair).as_ref();
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, public);
        Ok(Self {
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            pair,
        })
    }

    /// The key id (also its `x5t`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// An RS256 JWT over `claims`, its header `typ` JWT with `x5t` and
    /// `kid` naming this key.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let header =
            serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid});
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = self.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }

    /// An RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| format!("signing: {e}"))?;
        Ok(signature)
    }

    /// The public key as a JWK (`kty` RSA, `use` sig, `kid`, `x5t`, `n`,
    /// `e`), as AAD's keys document lists it.
    pub fn jwk(&self) -> serde_json::Value {
        let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        })
    }
}

/// A keys document (`{"keys": [...]}`) listing `keys`.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> serde_json::Value {
    let keys: Vec<_> = keys.into_iter().map(SigningKey::jwk).collect();
    serde_json::json!({ "keys": keys })
}

static CALLBACK_KEYS: LazyLock<Result<[SigningKey; 2], String>> = LazyLock::new(|| {
    Ok([
        SigningKey::from_pkcs8_pem(DEV_CALLBACK_KEY)?,
        SigningKey::from_pkcs8_pem(DEV_CALLBACK_ROTATED_KEY)?,
    ])
});

/// The platform's two fixed development keys for callback tokens: the one
/// it signs with, and the one a key rotation switches to (see
/// `keys/README.md`). Published on purpose; they open nothing but the
/// emulator.
pub fn dev_callback_keys() -> Result<&'static [SigningKey; 2], String> {
    CALLBACK_KEYS.as_ref().map_err(Clone::clone)
}
