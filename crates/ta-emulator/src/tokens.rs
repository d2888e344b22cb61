//! The tokens the emulator issues and checks: AAD access tokens and psat
//! tokens, RS256 JWTs signed with a fixed development key.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The fixed development key the emulator signs with (see `keys/README.md`).
/// Published on purpose; it opens nothing but the emulator.
const DEV_TOKEN_SIGNING_KEY: &str = include_str!("../keys/dev-token-signing-key.pem");

/// The development key of the default application certificate.
pub const DEV_CLIENT_CERTIFICATE_KEY: &str = include_str!("../keys/dev-client-certificate-key.pem");

/// The signing keys, parsed once per process.
pub(crate) struct Keys {
    /// Signs (ring: several times faster than the pure-Rust RSA that
    /// jsonwebtoken's `rust_crypto` backend would use).
    signing: crate::signing::SigningKey,
    /// Verifies, with jsonwebtoken's validation.
    decoding: DecodingKey,
}

static KEYS: LazyLock<Result<Keys, String>> = LazyLock::new(|| {
    let signing = crate::signing::SigningKey::from_pkcs8_pem(DEV_TOKEN_SIGNING_KEY)
        .map_err(|e| format!("development signing key: {e}"))?;
    let der = pem_body(DEV_TOKEN_SIGNING_KEY).ok_or("development signing key is not PEM")?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("development signing key: {e}"))?;
    let public = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    Ok(Keys {
        signing,
        decoding: DecodingKey::from_rsa_der(&public),
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

/// A psat token the emulator signed, as its claims say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedPsat {
    /// The application session id (`asi`).
    pub session_id: String,
    /// The allowed origins (`ao`, split on `;`).
    pub allowed_origins: Vec<String>,
    /// The application endpoint (`aeu`).
    pub endpoint: String,
    /// Not before (`nbf`), Unix seconds.
    pub not_before: u64,
    /// The expiry (`exp`), Unix seconds.
    pub expires: u64,
}

/// Checks that `token` (`psat=<JWT>` or the JWT) is signed with the
/// emulator's token key (one fixed development key, the same in every
/// process) and reads its claims. Its times are not checked: compare
/// [`VerifiedPsat::expires`] with the clock.
///
/// # Errors
///
/// When the key cannot be loaded, or the token is not one the emulator
/// signed.
pub fn verify_psat(token: &str) -> Result<VerifiedPsat, String> {
    let jwt = token.strip_prefix("psat=").unwrap_or(token);
    let claims: PsatClaims = keys()?
        .verify(jwt)
        .ok_or("not a psat token signed with the emulator's key")?;
    Ok(VerifiedPsat {
        session_id: claims.asi,
        allowed_origins: claims.ao.split(';').map(str::to_owned).collect(),
        endpoint: claims.aeu,
        not_before: claims.nbf,
        expires: claims.exp,
    })
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
    /// An RS256 JWT (`typ` JWT, `x5t` and `kid` of the key) over `claims`.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        self.signing.sign_jwt(claims)
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

/// The default application's development certificate (PEM), made once per
/// process from [`DEV_CLIENT_CERTIFICATE_KEY`] (RSA, signed by itself).
///
/// Use it with [`crate::EmulatorConfig::with_dev_client_certificate`] and
/// sign client assertions with the key.
pub fn dev_client_certificate_pem() -> Result<&'static str, String> {
    static CERT: LazyLock<Result<String, String>> = LazyLock::new(|| {
        let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
            DEV_CLIENT_CERTIFICATE_KEY,
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| format!("development client key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "ta-emulator development application",
        );
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        params
            .self_signed(&key)
            .map(|cert| cert.pem())
            .map_err(|e| format!("development client certificate: {e}"))
    });
    CERT.as_deref().map_err(Clone::clone)
}

/// The SHA-1 thumbprint of a certificate's DER, base64url (a JWT's `x5t`).
pub(crate) fn x5t_of(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Why a client assertion was refused: the AADSTS code and message.
pub(crate) type AssertionRefusal = (u64, String);

/// The claims AAD checks in a client assertion.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
}

/// Verifies a client assertion against the registered certificate: RS256
/// signature, `x5t`, `aud` (the token endpoint), `iss` = `sub` = client id,
/// the time window; returns the `jti` and `exp` (for replay detection, for
/// as long as the assertion is valid).
pub(crate) fn verify_assertion(
    assertion: &str,
    certificate_pem: &str,
    client_id: &str,
    token_url: &str,
    now: u64,
) -> Result<(String, u64), AssertionRefusal> {
    let malformed = || (50027, "JWT token is invalid or malformed.".to_owned());
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
        return Err((
            700027,
            "Client assertion failed signature validation: only RS256 is accepted.".to_owned(),
        ));
    }
    let der = pem_body(certificate_pem).ok_or((
        700027,
        "The registered certificate cannot be read.".to_owned(),
    ))?;
    let x5t = header
        .get("x5t")
        .and_then(|x| x.as_str())
        .unwrap_or_default();
    if x5t != x5t_of(&der) {
        return Err((
            700027,
            format!(
                "Client assertion failed signature validation: no registered certificate has thumbprint (x5t) '{x5t}'."
            ),
        ));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
    let cert_der = rustls_pki_types::CertificateDer::from(der);
    let cert = webpki::EndEntityCert::try_from(&cert_der).map_err(|_| {
        (
            700027,
            "The registered certificate cannot be read.".to_owned(),
        )
    })?;
    let signed = assertion
        .rsplit_once('.')
        .map(|(signed, _)| signed)
        .unwrap_or_default();
    cert.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| {
        (
            700027,
            "Client assertion failed signature validation.".to_owned(),
        )
    })?;
    let claims: AssertionClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(malformed)?;
    if !claims.aud.eq_ignore_ascii_case(token_url) {
        return Err((
            50027,
            format!(
                "The client assertion's audience '{}' is not this token endpoint '{token_url}'.",
                claims.aud
            ),
        ));
    }
    if claims.iss != client_id || claims.sub != client_id {
        return Err((
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter."
                .to_owned(),
        ));
    }
    if claims.exp <= now || claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(300)) {
        return Err((
            700024,
            "Client assertion is not within its valid time range.".to_owned(),
        ));
    }
    if claims.jti.is_empty() {
        return Err(malformed());
    }
    Ok((claims.jti, claims.exp))
}
