//! The errors of a flow, sorted by who is at fault.

use std::fmt;
use std::time::Duration;

use hal_model::{ErrorBody, ParseError};
use http::{HeaderMap, Method, StatusCode};
use url::Url;

use crate::aad::TokenError;
use crate::challenge::Challenge;
use crate::request::{X_MS_CORRELATION_ID, X_MS_DIAGNOSTICS, X_MS_SERVER_FQDN};
use crate::secret::redact;
use crate::transport::TransportError;

/// The step of the call flow a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// `GET <discover URL>` (unauthenticated).
    Discovery,
    /// `GET <applications>?endpointId=…` (the 401 challenge, then the token).
    Applications,
    /// `GET <application>`: the capabilities.
    Application,
    /// `POST <anonApplicationTokens>`: the widget token.
    Mint,
    /// The chat client's `GET <anonymous discover link>` with `Origin`.
    AnonymousDiscovery,
    /// `POST <AAD token endpoint>`: the client credentials grant
    /// ([`TokenFlow`](crate::aad::TokenFlow)).
    AadToken,
    /// One of the SA's chat requests ([`Flow::chat_call`](crate::Flow::chat_call)).
    Chat(crate::chat::ChatCallKind),
}

impl Step {
    /// A stable, lower-case name (`discovery`, `applications`,
    /// `application`, `mint`, `anonymous_discovery`, `aad_token`): for
    /// metric labels and machine-read logs. `Display` is for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Applications => "applications",
            Self::Application => "application",
            Self::Mint => "mint",
            Self::AnonymousDiscovery => "anonymous_discovery",
            Self::AadToken => "aad_token",
            Self::Chat(kind) => kind.label(),
        }
    }

    /// Whether this step's requests carry the AAD token.
    pub fn is_authenticated(self) -> bool {
        matches!(
            self,
            Self::Applications | Self::Application | Self::Mint | Self::Chat(_)
        )
    }

    /// Whether a request of this step may be repeated when it may have
    /// reached the server: every step of the bootstrap (GETs, and the mint
    /// with the same `applicationSessionId`); of the chat's, only those
    /// that end or refuse.
    pub fn is_idempotent(self) -> bool {
        match self {
            Self::Chat(kind) => kind.is_idempotent(),
            _ => true,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discovery => "discovery",
            Self::Applications => "applications",
            Self::Application => "application (capabilities)",
            Self::Mint => "anonApplicationTokens (mint)",
            Self::AnonymousDiscovery => "anonymous discovery",
            Self::AadToken => "Azure AD token",
            Self::Chat(kind) => return write!(f, "chat: {kind}"),
        })
    }
}

/// A URL made safe to show: the values of query parameters that carry a
/// token are masked.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayUrl(String);

impl DisplayUrl {
    /// Masks `url`'s token-bearing parts.
    pub fn new(url: &Url) -> Self {
        Self(redact(url.as_str()))
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DisplayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The failure of a flow.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server misbehaved: it sent something this client cannot use.
    #[error(transparent)]
    Server(Box<ServerError>),
    /// The server understood the request and said no.
    #[error(transparent)]
    Rejected(Box<ApiError>),
    /// Authentication failed (the API refused the token twice, or no token
    /// could be had).
    #[error(transparent)]
    Auth(Box<AuthError>),
    /// The client refused to send the AAD token where it was led (an
    /// untrusted host, or plain http).
    #[error(transparent)]
    Untrusted(Box<UntrustedError>),
    /// The transport failed and retrying was not possible.
    #[error("{step}: {source}")]
    Transport {
        /// The step.
        step: Step,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// Every retry failed, or the retry budget ran out; `last` is the last
    /// failure.
    #[error("{step}: gave up after {attempts} attempts in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// The step.
        step: Step,
        /// Requests sent.
        attempts: u32,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
        /// The last failure.
        last: Box<Self>,
    },
    /// The caller drove the flow wrongly.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A broken invariant of this crate: a bug in it, never the server's or
    /// the caller's fault. Please report it.
    #[error("internal error (a bug in ta-protocol): {0}")]
    Internal(&'static str),
}

impl Error {
    /// The step that failed, if the failure belongs to one.
    pub fn step(&self) -> Option<Step> {
        match self {
            Self::Server(e) => Some(e.step),
            Self::Rejected(e) => Some(e.step),
            Self::Auth(e) => Some(e.step),
            Self::Untrusted(e) => Some(e.step),
            Self::Transport { step, .. } | Self::RetriesExhausted { step, .. } => Some(*step),
            Self::Usage(_) | Self::Internal(_) => None,
        }
    }

    /// The API's error answer behind this failure, if there is one (looking
    /// through [`Error::RetriesExhausted`] and [`Error::Auth`]).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Rejected(e) => Some(e),
            Self::Auth(e) => match &e.kind {
                AuthErrorKind::Rejected { answer, .. } => Some(answer),
                _ => None,
            },
            Self::RetriesExhausted { last, .. } => last.api_error(),
            _ => None,
        }
    }

    /// The HTTP status of the answer behind this failure, if any.
    pub fn status(&self) -> Option<StatusCode> {
        self.api_error().map(|e| e.status)
    }
}

/// The server sent something this client cannot use.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {kind} (from {url}{})", .status.map(|s| format!(", status {s}")).unwrap_or_default())]
#[non_exhaustive]
pub struct ServerError {
    /// The step.
    pub step: Step,
    /// The URL of the request (token-bearing parts masked).
    pub url: DisplayUrl,
    /// The answer's status, if there was an answer.
    pub status: Option<StatusCode>,
    /// What was wrong.
    pub kind: ServerErrorKind,
    /// The answer's correlation headers.
    pub correlation: Correlation,
}

/// What was wrong with the server's answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// The body is not the expected HAL+JSON (with the JSON path).
    #[error("{0}")]
    Body(ParseError),
    /// A link the flow needs is absent.
    #[error("the answer has no `{rel}` link (looked for `service:{rel}` and `ms:rtc:saas:{rel}`)")]
    MissingLink {
        /// The rel's local name.
        rel: &'static str,
    },
    /// A link is malformed: not a URL, not absolute where it must be, or not
    /// https.
    #[error("the `{rel}` link is unusable: {reason}")]
    BadLink {
        /// The rel's local name.
        rel: &'static str,
        /// Why (hrefs are masked where they may carry a token).
        reason: String,
    },
    /// A member the flow needs is absent or empty.
    #[error("the answer's `{member}` is missing or empty")]
    MissingMember {
        /// The member's name.
        member: &'static str,
    },
    /// A redirect without a usable `Location`.
    #[error("redirect without a valid Location header")]
    BadRedirect,
    /// More redirects than allowed.
    #[error("more than {max} redirects")]
    TooManyRedirects {
        /// The limit.
        max: u8,
    },
    /// An answer status this step does not expect (a 3xx other than
    /// 307/308, or a 1xx).
    #[error("unexpected status")]
    UnexpectedStatus,
}

/// Correlation headers of an answer: what a support request needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Correlation {
    /// `X-MS-Correlation-Id`.
    pub correlation_id: Option<String>,
    /// `X-MS-Server-Fqdn`.
    pub server_fqdn: Option<String>,
    /// `X-Ms-diagnostics` (a numeric code and a reason).
    pub diagnostics: Option<String>,
}

impl Correlation {
    /// Reads the headers of an answer.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(300).collect::<String>())
        };
        Self {
            correlation_id: get(&X_MS_CORRELATION_ID),
            server_fqdn: get(&X_MS_SERVER_FQDN),
            diagnostics: get(&X_MS_DIAGNOSTICS),
        }
    }
}

impl fmt::Display for Correlation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, value) in [
            ("correlation id", &self.correlation_id),
            ("server", &self.server_fqdn),
            ("diagnostics", &self.diagnostics),
        ] {
            if let Some(value) = value {
                write!(f, "{sep}{name} {value}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {method} {url} answered {status}{}{}{}",
    .body.as_ref().map(|b| format!(" {}{}", b.code, b.subcode.as_deref().map(|s| format!("/{s}")).unwrap_or_default())).unwrap_or_default(),
    .body.as_ref().and_then(|b| b.message.as_deref()).map(|m| format!(": {}", redact(m))).unwrap_or_default(),
    { let c = self.correlation.to_string(); if c.is_empty() { c } else { format!(" ({c})") } })]
#[non_exhaustive]
pub struct ApiError {
    /// The step.
    pub step: Step,
    /// The request method.
    pub method: Method,
    /// The request URL (token-bearing parts masked).
    pub url: DisplayUrl,
    /// The status.
    pub status: StatusCode,
    /// The parsed error body, if it was one.
    pub body: Option<ErrorBody>,
    /// The start of the body, if it was not an error body (masked).
    pub body_excerpt: Option<String>,
    /// Correlation headers.
    pub correlation: Correlation,
    /// The wait the answer's `Retry-After` asked for, if it had a usable
    /// one (a 429 or a 503, usually): when the last retry failed too, the
    /// caller's own next attempt should wait at least this long.
    pub retry_after: Option<Duration>,
}

/// The documented reasons an API request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 403 `ApplicationNotFound`: the endpoint id is not registered for the
    /// tenant, or the token's application does not match.
    ApplicationNotFound,
    /// 403 for missing consent: the tenant admin has not consented (yet).
    ConsentMissing,
    /// 409 `AlreadyExists`: the session id was used before.
    AlreadyExists,
    /// 409 `TooManyGroups`.
    TooManyGroups,
    /// 410 `CannotRedirect`.
    CannotRedirect,
    /// 500 `CallbackChannelError`.
    CallbackChannelError,
    /// 500 `ServiceFailure`.
    ServiceFailure,
    /// Anything else.
    Other,
}

impl ApiError {
    /// Which documented refusal this is.
    pub fn kind(&self) -> ApiErrorKind {
        let subcode = self.body.as_ref().and_then(|b| b.subcode.as_deref());
        let code = self.body.as_ref().map(|b| b.code.as_str());
        match (self.status.as_u16(), subcode, code) {
            (_, Some("ApplicationNotFound"), _) => ApiErrorKind::ApplicationNotFound,
            (403, Some(s), _) if s.to_ascii_lowercase().contains("consent") => {
                ApiErrorKind::ConsentMissing
            }
            (_, Some("AlreadyExists"), _) => ApiErrorKind::AlreadyExists,
            (_, Some("TooManyGroups"), _) => ApiErrorKind::TooManyGroups,
            (_, Some("CannotRedirect"), _) => ApiErrorKind::CannotRedirect,
            (_, Some("CallbackChannelError"), _) => ApiErrorKind::CallbackChannelError,
            (_, _, Some("ServiceFailure")) => ApiErrorKind::ServiceFailure,
            _ => ApiErrorKind::Other,
        }
    }

    /// What an operator should check, for the refusals that have a usual
    /// cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self.kind() {
            ApiErrorKind::ApplicationNotFound => Some(
                "register the application endpoint (the sip: URI) for this tenant and check that the AAD application is the one the tenant consented to",
            ),
            ApiErrorKind::ConsentMissing => {
                Some("a tenant admin must consent to the application and its capabilities")
            }
            ApiErrorKind::AlreadyExists => {
                Some("use a fresh applicationSessionId for each widget session")
            }
            _ => None,
        }
    }
}

/// Authentication failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {kind}")]
#[non_exhaustive]
pub struct AuthError {
    /// The step.
    pub step: Step,
    /// What failed.
    pub kind: AuthErrorKind,
}

/// How authentication failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The API answered 401 again after a fresh token was sent.
    #[error(
        "the API refused the AAD token ({answer}); check the application's consent, the token audience and the tenant"
    )]
    Rejected {
        /// The last 401 answer.
        answer: Box<ApiError>,
        /// Its challenges.
        challenges: Vec<Challenge>,
    },
    /// A 401 offered no Bearer challenge.
    #[error("the API asked for authentication without offering a Bearer challenge (schemes offered: {})", if .schemes.is_empty() { "none".to_owned() } else { .schemes.join(", ") })]
    NoBearerChallenge {
        /// The schemes offered.
        schemes: Vec<String>,
    },
    /// The token source failed.
    #[error(transparent)]
    TokenUnavailable(TokenError),
    /// The token source's token cannot go in a header.
    #[error("the access token contains characters that cannot go in an HTTP header")]
    InvalidToken,
}

/// The client refused to send the token where it was led.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{step}: refused to {reason} ({url}); add the host to the trusted hosts if it is genuinely part of the deployment"
)]
#[non_exhaustive]
pub struct UntrustedError {
    /// The step.
    pub step: Step,
    /// The URL refused (masked).
    pub url: DisplayUrl,
    /// Why.
    pub reason: UntrustedReason,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UntrustedReason {
    /// The host is not in the trusted set.
    UntrustedHost,
    /// A redirect led to a host not in the trusted set.
    UntrustedRedirect,
    /// The URL is plain http (and not an allowed loopback one).
    Insecure,
}

impl fmt::Display for UntrustedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UntrustedHost => "send the AAD token to a host that is not trusted",
            Self::UntrustedRedirect => "follow a redirect to a host that is not trusted",
            Self::Insecure => "use plain http",
        })
    }
}

/// The caller drove a flow wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An answer was handed in for a request that is not outstanding.
    #[error("no outstanding request has id {0}")]
    UnknownRequest(u64),
    /// A token was handed in that was not asked for.
    #[error("the flow did not ask for a token")]
    UnexpectedToken,
    /// A client assertion was handed in that was not asked for.
    #[error("the flow did not ask for a client assertion")]
    UnexpectedAssertion,
    /// The flow has already finished.
    #[error("the flow has already finished")]
    Finished,
    /// The flow was polled while it waits for an answer or a token.
    #[error("the flow is waiting for {0}; hand it in before polling again")]
    Waiting(&'static str),
}
