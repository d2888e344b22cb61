//! The tokens the emulator issues and checks: AAD access tokens and psat
//! tokens, RS256 JWTs signed with a fixed development key.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The fixed development key the emulator signs with (see `keys/README.md`).
/// Published on purpose; it opens nothing but the emulator.
const DEV_TOKEN_SIGNING_KEY: &str = include_str!("../keys/dev-token-signing-key.pem");

/// The development key of the default application certificate.
pub const DEV_CLIENT_CERTIFICATE_KEY: &str = include_str!("../keys/dev-client-certificate-key.pem");

/// The signing keys, parsed once per process.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// base64url SHA-1 "thumbprint" of the signing key's public part, sent as
    /// `x5t` like the real service did.
    x5t: String,
}

static KEYS: LazyLock<Result<Keys, String>> = LazyLock::new(|| {
    let encoding = EncodingKey::from_rsa_pem(DEV_TOKEN_SIGNING_KEY.as_bytes())
        .map_err(|e| format!("development signing key: {e}"))?;
    let der = pem_body(DEV_TOKEN_SIGNING_KEY).ok_or("development signing key is not PEM")?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("development signing key: {e}"))?;
    let public = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    let decoding = DecodingKey::from_rsa_der(&public);
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &public);
    Ok(Keys {
        encoding,
        decoding,
        x5t: URL_SAFE_NO_PAD.encode(digest.as_ref()),
    })
});

/// The DER inside a single-block PEM.
pub(crate) fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

pub(crate) fn keys() -> Result<&'static Keys, String> {
    KEYS.as_ref().map_err(Clone::clone)
}

/// The claims of an emulated AAD access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) tid: String,
    pub(crate) appid: String,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    pub(crate) jti: String,
    /// The emulator's issue counter (revocation revokes up to a number).
    #[serde(default)]
    pub(crate) seq: u64,
}

/// The claims of a psat token, as in the seed's example.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PsatClaims {
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    /// Application session id.
    pub(crate) asi: String,
    /// Application endpoint URI.
    pub(crate) aeu: String,
    /// Allowed origins, `;`-separated.
    pub(crate) ao: String,
    /// The application's id.
    pub(crate) app: String,
}

impl Keys {
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.x5t = Some(self.x5t.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Checks the signature and the shape; times are checked by the caller
    /// against the emulator's clock.
    pub(crate) fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str) -> Option<T> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}
