//! Checking one callback token: RS256 over the identity provider's keys,
//! the audience, the issuer, the calling application and the time window.
//! Pure: the keys and the time are passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{CallbackAuth, KeySet, Refusal};

/// What a verified callback token says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackClaims {
    /// The tenant (`tid`), when given.
    pub tenant: Option<String>,
    /// The calling application (`appid`).
    pub app_id: Option<String>,
    /// When it expires (seconds since the epoch).
    pub expires: u64,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    x5t: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
}

/// The key id a token's header names (`kid`, else `x5t`), if its header is
/// base64url-encoded JSON: to know whether the keys must be fetched again.
pub fn key_id(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.kid.or(header.x5t)
}

/// Verifies `token` against `keys` and `auth`'s expectations at `now`.
pub(crate) fn verify(
    token: &str,
    keys: &KeySet,
    auth: &CallbackAuth,
    now: SystemTime,
) -> Result<CallbackClaims, Refusal> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed);
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| Refusal::Malformed)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(Refusal::Unsigned);
    }
    let kid = header.kid.or(header.x5t).ok_or(Refusal::UnknownKey)?;
    let key = keys.get(&kid).ok_or(Refusal::UnknownKey)?;
    let signature = decode(signature_b64)?;
    let signed = token
        .len()
        .checked_sub(signature_b64.len() + 1)
        .and_then(|end| token.get(..end))
        .ok_or(Refusal::Malformed)?;
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| Refusal::BadSignature)?;
    // Signed by the provider: now the claims are worth reading.
    let claims: Claims =
        serde_json::from_slice(&decode(claims_b64)?).map_err(|_| Refusal::Malformed)?;
    let audience_ok = match &claims.aud {
        Some(Audience::One(aud)) => *aud == auth.audience,
        Some(Audience::Many(all)) => all.contains(&auth.audience),
        None => false,
    };
    if !audience_ok {
        return Err(Refusal::WrongAudience);
    }
    if claims.iss.as_deref() != Some(auth.issuer.as_str()) {
        return Err(Refusal::WrongIssuer);
    }
    if let Some(expected) = &auth.platform_app_id
        && claims.appid.as_deref() != Some(expected.as_str())
    {
        return Err(Refusal::WrongApplication);
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let leeway = auth.leeway.as_secs();
    let exp = claims.exp.ok_or(Refusal::Expired)?;
    if exp.saturating_add(leeway) <= now {
        return Err(Refusal::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(Refusal::NotYetValid);
    }
    Ok(CallbackClaims {
        tenant: claims.tid,
        app_id: claims.appid,
        expires: exp,
    })
}
