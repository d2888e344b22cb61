//! Authenticating the platform's callbacks, as the real API's were: each
//! carries `Authorization: Bearer <JWT>`, an RS256 token the identity
//! provider issued for the SA's App ID URI, signed with a key its keys
//! document (a JWKS) publishes.
//!
//! [`CallbackVerifier`] checks the signature with `ring` against the keys
//! (fetched again, at most once per [`CallbackAuth::min_key_refetch`],
//! when a token names a key it does not know: a key rotation works), then
//! the audience, the issuer, the calling application (`appid`) and the
//! time window, with the time passed in. What it refuses is a [`Refusal`],
//! sorted by reason for the logs and metrics; the token itself is never
//! logged.

mod jwks;
mod keys;
mod verify;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use jwks::{KeySet, KeySetError};
pub use keys::{CallbackVerifier, KeySource, TransportKeySource};
pub use verify::{CallbackClaims, key_id};

/// What a callback token must say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackAuth {
    /// The SA's App ID URI: the token's `aud`.
    pub audience: String,
    /// The tenant's issuer (`https://sts.windows.net/<tenant id>/`): the
    /// token's `iss`.
    pub issuer: String,
    /// The calling application's id (`appid`); `None` skips the check.
    /// The platform's by default ([`hal_model::PLATFORM_APP_ID`]).
    pub platform_app_id: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The least time between two fetches of the keys document (a token
    /// naming an unknown key fetches it again, at most this often).
    pub min_key_refetch: Duration,
    /// The longest the keys are used before they are fetched again, so
    /// that a key the provider withdrew stops being accepted.
    pub max_key_age: Duration,
}

impl CallbackAuth {
    /// Tokens for `audience` from `issuer`, from the platform's
    /// application, with 60 s of leeway; the keys fetched again at most
    /// every 5 minutes for an unknown key, and at least every 24 hours.
    pub fn new(audience: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            issuer: issuer.into(),
            platform_app_id: Some(hal_model::PLATFORM_APP_ID.to_owned()),
            leeway: Duration::from_secs(60),
            min_key_refetch: Duration::from_secs(300),
            max_key_age: Duration::from_secs(24 * 3600),
        }
    }

    /// Sets the least time between two key fetches (builder style).
    pub fn with_min_key_refetch(mut self, interval: Duration) -> Self {
        self.min_key_refetch = interval;
        self
    }

    /// Sets the longest the keys are used (builder style).
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Sets the leeway (builder style).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Checks one callback token against `keys` at `now`: the pure core of
    /// [`CallbackVerifier`], for a caller that holds the keys itself.
    ///
    /// # Errors
    ///
    /// The [`Refusal`]: malformed, unsigned, unknown key, bad signature,
    /// then (signed) wrong audience, issuer or application, or out of its
    /// time window.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: SystemTime,
    ) -> Result<CallbackClaims, Refusal> {
        verify::verify(token, keys, self, now)
    }
}

/// Why a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No `Authorization: Bearer` token.
    Missing,
    /// Not a JWT (three base64url parts of JSON).
    Malformed,
    /// Not signed with RS256 (`alg` `none`, HS256, …).
    Unsigned,
    /// Its key is not in the keys document, even fetched again.
    UnknownKey,
    /// The signature does not check against the key.
    BadSignature,
    /// `aud` is not the SA's App ID URI.
    WrongAudience,
    /// `iss` is not the tenant's issuer.
    WrongIssuer,
    /// `appid` is not the platform's.
    WrongApplication,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// The keys document could not be fetched: the callback cannot be
    /// checked (the SA's fault, not the caller's: 503).
    KeysUnavailable,
}

impl Refusal {
    /// A stable, lower-case name, for metric labels and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unsigned => "unsigned",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongApplication => "wrong_application",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "the callback has no bearer token",
            Self::Malformed => "the callback's token is not a JWT",
            Self::Unsigned => "the callback's token is not signed with RS256",
            Self::UnknownKey => {
                "the callback's token names a key the identity provider does not publish"
            }
            Self::BadSignature => "the callback's token signature does not check",
            Self::WrongAudience => "the callback's token is for another audience",
            Self::WrongIssuer => "the callback's token is from another issuer",
            Self::WrongApplication => "the callback's token is from another application",
            Self::Expired => "the callback's token has expired",
            Self::NotYetValid => "the callback's token is not valid yet",
            Self::KeysUnavailable => "the identity provider's keys could not be fetched",
        })
    }
}

impl std::error::Error for Refusal {}
