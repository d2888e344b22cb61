//! Azure AD client credentials, as pure request builders and response
//! parsers.
//!
//! The API accepts app-only tokens obtained with the OAuth 2.0 client
//! credentials grant, either with a client secret or with a client assertion
//! (a JWT signed with the application's certificate key). Both AAD endpoint
//! versions are supported:
//!
//! - v2 `…/oauth2/v2.0/token` takes `scope=<audience>/.default`;
//! - v1 `…/oauth2/token` takes `resource=<audience>`.
//!
//! [`TokenFlow`] is the whole exchange as a state machine (retries, a fresh
//! assertion per attempt), driven like a [`Flow`](crate::Flow). Under it
//! are pure request builders and response parsers. Nothing here sends a
//! request, reads a clock or signs anything: the driver passes the time,
//! signs what it is asked to, runs each request over its
//! [`Transport`](crate::Transport) and hands the answer back.

mod grant;

pub use grant::{ASSERTION_LIFETIME, AssertionNeed, Proof, TokenFlow};

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::config::{Audience, ConfigError, is_loopback_http};
use crate::entropy::ClientRequestId;
use crate::secret::{AccessToken, ClientAssertion, ClientSecret, redact};
use crate::transport::TransportError;

/// The public cloud's AAD authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Which AAD token endpoint version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AadVersion {
    /// `/oauth2/token`, with `resource=`; `expires_in` is a string.
    V1,
    /// `/oauth2/v2.0/token`, with `scope=`; `expires_in` is a number.
    V2,
}

/// A validated AAD token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenEndpoint {
    url: Url,
    version: AadVersion,
}

impl TokenEndpoint {
    /// The public cloud's v2 endpoint for `tenant` (a tenant id or domain).
    pub fn for_tenant(tenant: &str) -> Result<Self, ConfigError> {
        // `.` and `..` would be path segments the URL folds away (found by
        // the `urls` fuzz target): the tenant must be a name.
        if tenant.is_empty()
            || tenant.bytes().all(|b| b == b'.')
            || !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(ConfigError::Setting {
                setting: "tenant",
                reason: "must be a tenant id or domain (letters, digits, `-`, `.`)",
            });
        }
        Self::parse(
            &format!("{DEFAULT_AUTHORITY}/{tenant}/oauth2/v2.0/token"),
            false,
        )
    }

    /// Parses a token endpoint URL; the version is read from its path
    /// (`/oauth2/v2.0/token` or `/oauth2/token`). `https` only, or `http` to
    /// a loopback host when `allow_insecure_loopback`.
    pub fn parse(url: &str, allow_insecure_loopback: bool) -> Result<Self, ConfigError> {
        let fail = |reason| ConfigError::Setting {
            setting: "token URL",
            reason,
        };
        let url = Url::parse(url).map_err(|_| fail("not a valid absolute URL"))?;
        let secure = url.scheme() == "https" || (allow_insecure_loopback && is_loopback_http(&url));
        if !secure {
            return Err(fail(
                "must be https (http only to loopback hosts, when allowed)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(fail("must not carry user info or a fragment"));
        }
        let path = url.path().trim_end_matches('/');
        let version = if path.ends_with("/oauth2/v2.0/token") {
            AadVersion::V2
        } else if path.ends_with("/oauth2/token") {
            AadVersion::V1
        } else {
            return Err(fail(
                "the path must end in /oauth2/v2.0/token or /oauth2/token",
            ));
        };
        Ok(Self { url, version })
    }

    /// The endpoint URL (also the `aud` of client assertions).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The endpoint version.
    pub fn version(&self) -> AadVersion {
        self.version
    }

    /// The tenant the URL names: the path segment before `oauth2`
    /// (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`), if
    /// there is one.
    pub fn tenant(&self) -> Option<&str> {
        let segments: Vec<&str> = self.url.path_segments()?.collect();
        let oauth2 = segments.iter().rposition(|s| *s == "oauth2")?;
        segments
            .get(oauth2.checked_sub(1)?)
            .copied()
            .filter(|s| !s.is_empty())
    }
}

/// An application (client) id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Checks that `id` is 1 to 200 visible ASCII characters.
    pub fn new(id: &str) -> Result<Self, ConfigError> {
        if id.is_empty() || id.len() > 200 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Setting {
                setting: "client id",
                reason: "must be 1 to 200 visible ASCII characters (usually a GUID)",
            });
        }
        Ok(Self(id.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the application proves its identity to AAD.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret.
    Secret(ClientSecret),
    /// A signed client assertion (see [`client_assertion`]).
    Assertion(ClientAssertion),
}

/// Builds the client credentials token request.
///
/// ```
/// # use ta_protocol::aad::*;
/// # use ta_protocol::{Audience, ClientRequestId, ClientSecret};
/// let endpoint = TokenEndpoint::for_tenant("contoso.onmicrosoft.com")?;
/// let audience = Audience::for_discover_url(&"https://api.skypeforbusiness.com/platformservice/discover".parse()?);
/// let request = token_request(
///     &endpoint,
///     &ClientId::new("00000000-0000-0000-0000-000000000001")?,
///     &audience,
///     &ClientCredential::Secret(ClientSecret::new("s3cret")),
///     &ClientRequestId::new("1")?,
/// );
/// assert_eq!(
///     std::str::from_utf8(request.body())?,
///     "grant_type=client_credentials&client_id=00000000-0000-0000-0000-000000000001\
///      &scope=https%3A%2F%2Fapi.skypeforbusiness.com%2F.default&client_secret=s3cret",
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn token_request(
    endpoint: &TokenEndpoint,
    client_id: &ClientId,
    audience: &Audience,
    credential: &ClientCredential,
    request_id: &ClientRequestId,
) -> http::Request<Bytes> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    form.append_pair("client_id", client_id.as_str());
    match endpoint.version {
        AadVersion::V2 => form.append_pair("scope", &audience.default_scope()),
        AadVersion::V1 => form.append_pair("resource", audience.as_str()),
    };
    match credential {
        ClientCredential::Secret(secret) => form.append_pair("client_secret", secret.expose()),
        ClientCredential::Assertion(assertion) => form
            .append_pair("client_assertion_type", JWT_BEARER_ASSERTION_TYPE)
            .append_pair("client_assertion", assertion.expose()),
    };
    let body = Bytes::from(form.finish());
    let mut request = http::Request::new(body);
    *request.method_mut() = Method::POST;
    // A parsed `Url` is always a valid URI.
    *request.uri_mut() = endpoint.url.as_str().parse().unwrap_or_default();
    let headers = request.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        crate::request::CLIENT_REQUEST_ID,
        request_id.header_value().clone(),
    );
    request
}

/// A token AAD issued.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The bearer token (opaque).
    pub access_token: AccessToken,
    /// Its lifetime from the moment the answer was received; compute the
    /// expiry from the local time of receipt.
    pub expires_in: Duration,
    /// AAD's extended lifetime, if given.
    pub ext_expires_in: Option<Duration>,
}

/// An error answer of AAD, or an answer that is not AAD's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AadError {
    /// AAD refused: `{"error": "invalid_client", "error_description": "AADSTS7000215: …"}`.
    #[error("Azure AD {} the token request ({status}): {error}{}{}",
        self.verb(),
        self.summary(),
        .correlation_id.as_deref().map(|c| format!(" (correlation id {c})")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: StatusCode,
        /// The OAuth error code (`invalid_client`, `unauthorized_client`, …).
        error: String,
        /// AAD's description, which starts with `AADSTSnnnn:`.
        description: Option<String>,
        /// AAD's numeric error codes.
        codes: Vec<u64>,
        /// AAD's correlation id.
        correlation_id: Option<String>,
        /// AAD's trace id.
        trace_id: Option<String>,
    },
    /// The answer is not an AAD token or error.
    #[error(
        "the token endpoint answered {status} with a body that is not an Azure AD answer: {reason}"
    )]
    Malformed {
        /// HTTP status.
        status: StatusCode,
        /// What did not fit.
        reason: String,
    },
    /// The token is not a bearer token.
    #[error("Azure AD issued a {token_type:?} token; a Bearer token is required")]
    UnsupportedTokenType {
        /// The `token_type` received.
        token_type: String,
    },
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

impl AadError {
    /// The `AADSTS` code: the first of `error_codes`, else the one the
    /// description starts with.
    pub fn aadsts(&self) -> Option<u64> {
        let Self::Rejected {
            codes, description, ..
        } = self
        else {
            return None;
        };
        codes.first().copied().or_else(|| {
            let rest = description.as_deref()?.strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// What AAD did: refused (4xx), or could not answer (5xx, 429).
    fn verb(&self) -> &'static str {
        match self.status() {
            Some(s) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                "could not answer"
            }
            _ => "refused",
        }
    }

    /// `: AADSTSnnnn: first line of the description`, the code written once.
    fn summary(&self) -> String {
        let Self::Rejected { description, .. } = self else {
            return String::new();
        };
        let line = description.as_deref().map(first_line).unwrap_or_default();
        match self.aadsts() {
            Some(code) if !line.starts_with("AADSTS") => format!(": AADSTS{code}: {line}"),
            _ if line.is_empty() => String::new(),
            _ => format!(": {line}"),
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Rejected { status, .. } | Self::Malformed { status, .. } => Some(*status),
            Self::UnsupportedTokenType { .. } => None,
        }
    }

    /// The OAuth error code, if AAD sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(u64),
        String(String),
    }
    match Option::<NumberOrString>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrString::Number(n)) => Ok(Some(n)),
        Some(NumberOrString::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom("expires_in is a string that is not a whole number of seconds")
        }),
    }
}

#[derive(Deserialize)]
struct SuccessBody {
    token_type: String,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    ext_expires_in: Option<u64>,
    access_token: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
}

/// Parses the token endpoint's answer.
///
/// `expires_in` is accepted as a number (v2) or a string (v1). A 200 without
/// `expires_in` is given AAD's usual one hour.
pub fn parse_token_response(response: &http::Response<Bytes>) -> Result<TokenResponse, AadError> {
    let status = response.status();
    let malformed = |reason: String| AadError::Malformed {
        status,
        reason: redact(&reason),
    };
    if status.is_success() {
        let body: SuccessBody =
            hal_model::from_slice(response.body()).map_err(|e| malformed(e.to_string()))?;
        if !body.token_type.eq_ignore_ascii_case("bearer") {
            return Err(AadError::UnsupportedTokenType {
                token_type: body.token_type.chars().take(40).collect(),
            });
        }
        if body.access_token.is_empty() {
            return Err(malformed("access_token is empty".to_owned()));
        }
        return Ok(TokenResponse {
            access_token: AccessToken::new(body.access_token),
            expires_in: Duration::from_secs(body.expires_in.unwrap_or(3600)),
            ext_expires_in: body.ext_expires_in.map(Duration::from_secs),
        });
    }
    if status.is_redirection() {
        // AAD never redirects a token request, and the client does not
        // follow one: the endpoint is not AAD's (a proxy, a portal).
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| format!(" to {}", l.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        return Err(malformed(format!(
            "a redirect{location}, which a token request does not follow"
        )));
    }
    let body: ErrorBody =
        hal_model::from_slice(response.body()).map_err(|e| malformed(e.to_string()))?;
    Err(AadError::Rejected {
        status,
        error: body.error,
        description: body.error_description,
        codes: body.error_codes,
        correlation_id: body.correlation_id,
        trace_id: body.trace_id,
    })
}

/// Why a token could not be had: what a token source hands to
/// [`Flow::handle_token`](crate::Flow::handle_token) on failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// AAD refused or answered nonsense.
    #[error(transparent)]
    Aad(Box<AadError>),
    /// AAD could not be reached.
    #[error("the Azure AD token endpoint could not be reached: {0}")]
    Transport(#[from] TransportError),
    /// The client assertion could not be signed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// Another failure of the token source.
    #[error("no token: {0}")]
    Other(String),
    /// The token flow was driven wrongly: a bug in its driver, not AAD's
    /// fault.
    #[error("internal error: the Azure AD token flow was driven wrongly: {0}")]
    Usage(#[from] crate::error::UsageError),
}

impl From<AadError> for TokenError {
    fn from(error: AadError) -> Self {
        Self::Aad(Box::new(error))
    }
}

/// A signing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing the client assertion failed: {0}")]
pub struct SignerError(String);

impl SignerError {
    /// A signing failure, and why (never the key or a secret).
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// Why signing failed.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

/// Signs client assertions with the application's certificate key.
///
/// Implemented by the caller with the crypto library of its choice (the
/// orchestrator uses `ring`).
pub trait AssertionSigner: Send + Sync {
    /// The SHA-1 digest of the certificate's DER encoding (its thumbprint).
    fn certificate_sha1(&self) -> [u8; 20];
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// What goes into a client assertion besides the key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AssertionClaims<'a> {
    /// The application (client) id: `iss` and `sub`.
    pub client_id: &'a ClientId,
    /// The token endpoint: `aud`.
    pub endpoint: &'a TokenEndpoint,
    /// A unique id for this assertion: `jti`.
    pub jti: &'a str,
    /// Now, in seconds since the Unix epoch: `nbf` and `iat`.
    pub issued_at: u64,
    /// How long the assertion is valid (a few minutes): `exp = iat + lifetime`.
    pub lifetime: Duration,
}

impl<'a> AssertionClaims<'a> {
    /// The claims of an assertion by `client_id` for `endpoint`, with the
    /// unique `jti`, issued at `issued_at` (seconds since the Unix epoch)
    /// and valid for `lifetime`.
    pub fn new(
        client_id: &'a ClientId,
        endpoint: &'a TokenEndpoint,
        jti: &'a str,
        issued_at: u64,
        lifetime: Duration,
    ) -> Self {
        Self {
            client_id,
            endpoint,
            jti,
            issued_at,
            lifetime,
        }
    }
}

/// The JWT signing input (`base64url(header).base64url(claims)`) of a client
/// assertion, with `x5t` = base64url of the certificate's SHA-1 thumbprint.
pub fn assertion_signing_input(
    claims: &AssertionClaims<'_>,
    certificate_sha1: &[u8; 20],
) -> String {
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5t": URL_SAFE_NO_PAD.encode(certificate_sha1),
    });
    let payload = serde_json::json!({
        "aud": claims.endpoint.url().as_str(),
        "iss": claims.client_id.as_str(),
        "sub": claims.client_id.as_str(),
        "jti": claims.jti,
        "nbf": claims.issued_at,
        "iat": claims.issued_at,
        "exp": claims.issued_at.saturating_add(claims.lifetime.as_secs()),
    });
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Builds and signs a client assertion.
pub fn client_assertion(
    signer: &dyn AssertionSigner,
    claims: &AssertionClaims<'_>,
) -> Result<ClientAssertion, SignerError> {
    let input = assertion_signing_input(claims, &signer.certificate_sha1());
    let signature = signer.sign_rs256(input.as_bytes())?;
    finish_assertion(&input, &signature)
}

/// A client assertion from its signing input and RS256 signature.
pub(crate) fn finish_assertion(
    signing_input: &str,
    signature: &[u8],
) -> Result<ClientAssertion, SignerError> {
    if signature.is_empty() {
        return Err(SignerError::new(
            "the signer returned an empty signature".to_owned(),
        ));
    }
    Ok(ClientAssertion::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}
