//! Failures sorted for people: what kind, what to check.

use ta_protocol::aad::{AadError, TokenError};
use ta_protocol::chat::CallFailure;
use ta_protocol::{
    ApiErrorKind, AuthErrorKind, Error, ServerErrorKind, TransportErrorKind, UntrustedReason,
};

use crate::BootstrapError;

/// Whose move a failure is: what an operator checks first. A command line
/// maps each kind to an exit code, a service to an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The configuration is wrong (a URL, a trusted host, a key).
    Config,
    /// Authentication failed: AAD refused, or the API refused the token.
    Authentication,
    /// Not found or not consented: the endpoint, the application, or a
    /// capability.
    NotFound,
    /// The service misbehaved, refused for another reason, or could not be
    /// reached.
    Upstream,
    /// A bug in this library (a broken invariant, a flow driven wrongly):
    /// nobody's configuration and no server is at fault. Please report it.
    Internal,
}

impl FailureKind {
    /// A stable, machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Authentication => "authentication",
            Self::NotFound => "not_found",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }
}

fn protocol_kind(error: &Error) -> FailureKind {
    match error {
        Error::Auth(auth) => match &auth.kind {
            AuthErrorKind::TokenUnavailable(token) => token_kind(token),
            _ => FailureKind::Authentication,
        },
        Error::Rejected(api) => match (api.kind(), api.status.as_u16()) {
            (ApiErrorKind::ApplicationNotFound | ApiErrorKind::ConsentMissing, _) => {
                FailureKind::NotFound
            }
            (_, 401) => FailureKind::Authentication,
            (_, 403 | 404 | 410) => FailureKind::NotFound,
            _ => FailureKind::Upstream,
        },
        Error::Server(server) => match server.kind {
            ServerErrorKind::MissingLink {
                rel: "anonApplicationTokens",
            } => FailureKind::NotFound,
            _ => FailureKind::Upstream,
        },
        Error::Untrusted(_) => FailureKind::Config,
        Error::RetriesExhausted { last, .. } => protocol_kind(last),
        Error::Internal(_) | Error::Usage(_) => FailureKind::Internal,
        _ => FailureKind::Upstream,
    }
}

fn token_kind(error: &TokenError) -> FailureKind {
    match error {
        TokenError::Transport(_) => FailureKind::Upstream,
        // AAD itself failing (5xx, 429, or an answer that is not AAD's) is
        // not an authentication failure of the caller.
        TokenError::Aad(aad)
            if matches!(aad.as_ref(), AadError::Malformed { .. })
                || aad
                    .status()
                    .is_some_and(|s| s.is_server_error() || s.as_u16() == 429) =>
        {
            FailureKind::Upstream
        }
        TokenError::Signer(_) => FailureKind::Config,
        TokenError::Usage(_) => FailureKind::Internal,
        _ => FailureKind::Authentication,
    }
}

fn protocol_hint(error: &Error) -> Option<&'static str> {
    match error {
        Error::Rejected(api) => api.hint(),
        Error::Auth(auth) => match &auth.kind {
            AuthErrorKind::TokenUnavailable(token) => token_hint(token),
            AuthErrorKind::Rejected { .. } => Some(
                "the API refused the AAD token: check that the tenant admin consented to the application and that the token's audience is the discover URL's host",
            ),
            _ => None,
        },
        Error::Server(server) => match server.kind {
            ServerErrorKind::MissingLink {
                rel: "anonApplicationTokens",
            } => Some(
                "the tenant has not consented to anonymous application tokens (anonApplicationTokens) for this application endpoint",
            ),
            _ => None,
        },
        Error::Untrusted(untrusted) => match untrusted.reason {
            UntrustedReason::Insecure => Some("use https URLs"),
            _ => {
                Some("if that host genuinely belongs to the deployment, add it with --trusted-host")
            }
        },
        Error::Transport { source, .. } => transport_hint(source.kind()),
        Error::RetriesExhausted { last, .. } => protocol_hint(last),
        _ => None,
    }
}

fn transport_hint(kind: TransportErrorKind) -> Option<&'static str> {
    match kind {
        TransportErrorKind::Tls => Some(
            "the server's certificate is not trusted: pass its CA with --ca-file, or check the host name",
        ),
        TransportErrorKind::Connect => Some("check the URL, the port and the network path"),
        TransportErrorKind::Timeout => Some("the service is slow or unreachable; try again later"),
        _ => None,
    }
}

fn token_hint(error: &TokenError) -> Option<&'static str> {
    match error {
        TokenError::Aad(aad) => match aad.aadsts() {
            Some(7_000_215) => Some(
                "the client secret is wrong: use the secret's value (not its id), and check that it has not expired",
            ),
            Some(700_016) => Some("the application was not found: check --client-id and --tenant"),
            Some(500_011) => Some(
                "the resource (audience) was not found in the tenant: the discover URL's scheme and host must be the API the tenant consented to",
            ),
            Some(90_002) => Some("the tenant was not found: check --tenant or --token-url"),
            Some(7_000_218) => Some("pass --client-secret or --client-certificate"),
            Some(700_027 | 700_024 | 700_021 | 50_027) => Some(
                "the certificate credential was refused: check that this certificate is registered for the application and that the clock is right",
            ),
            _ => None,
        },
        TokenError::Transport(transport) => transport_hint(transport.kind()),
        _ => None,
    }
}

fn protocol_status(error: &Error) -> Option<ta_protocol::http::StatusCode> {
    match error {
        Error::Auth(auth) => match &auth.kind {
            AuthErrorKind::TokenUnavailable(token) => token_status(token),
            _ => error.status(),
        },
        Error::RetriesExhausted { last, .. } => protocol_status(last),
        _ => error.status(),
    }
}

fn token_status(error: &TokenError) -> Option<ta_protocol::http::StatusCode> {
    match error {
        TokenError::Aad(aad) => aad.status(),
        _ => None,
    }
}

fn protocol_retry_after(error: &Error) -> Option<std::time::Duration> {
    match error {
        Error::Rejected(answer) => answer.retry_after,
        Error::RetriesExhausted { last, .. } => protocol_retry_after(last),
        _ => None,
    }
}

impl BootstrapError {
    /// The wait the API's last answer asked for in its `Retry-After`, if it
    /// was an error answer with one: a caller that tries again on its own
    /// (a background refill, say) waits at least this long.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Protocol(error) => protocol_retry_after(error),
            Self::Token(_) => None,
        }
    }

    /// The status of the error answer behind the failure, from the API or
    /// from Azure AD, if it was one (a service tells "busy, come back
    /// later" by 429 and 503).
    pub fn upstream_status(&self) -> Option<ta_protocol::http::StatusCode> {
        match self {
            Self::Protocol(error) => protocol_status(error),
            Self::Token(error) => token_status(error),
        }
    }

    /// Whether the failure may pass on its own: the upstream service busy
    /// or failing (a 5xx or 429 answer, or none: the connection broke, or
    /// the answer could not be used), as opposed to a refusal (another 4xx),
    /// a configuration or authentication problem, or a bug.
    pub fn is_transient(&self) -> bool {
        self.kind() == FailureKind::Upstream
            && self.upstream_status().is_none_or(|s| {
                s.is_server_error() || s == ta_protocol::http::StatusCode::TOO_MANY_REQUESTS
            })
    }

    /// What this failure of a chat call says about sending it again
    /// ([`Bridge::handle_failure`](ta_protocol::chat::Bridge::handle_failure)):
    /// [`Transient`](CallFailure::Transient) when it may pass on its own
    /// ([`is_transient`](Self::is_transient)), [`Gone`](CallFailure::Gone)
    /// on a 404 or a 410 (what the call acts on is over), else
    /// [`Refused`](CallFailure::Refused).
    pub fn call_failure(&self) -> CallFailure {
        use ta_protocol::http::StatusCode;
        if self.is_transient() {
            CallFailure::Transient
        } else if matches!(
            self.upstream_status(),
            Some(StatusCode::NOT_FOUND | StatusCode::GONE)
        ) {
            CallFailure::Gone
        } else {
            CallFailure::Refused
        }
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Protocol(error) => protocol_kind(error),
            Self::Token(error) => token_kind(error),
        }
    }

    /// What an operator should check, when there is a usual cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Protocol(error) => protocol_hint(error),
            Self::Token(error) => token_hint(error),
        }
    }

    /// One line for people: the failure with the server's codes and
    /// correlation ids, then the hint. No token or secret is in it.
    pub fn report_line(&self) -> String {
        let mut line = self.to_string();
        if let Some(hint) = self.hint() {
            line.push_str(" (hint: ");
            line.push_str(hint);
            line.push(')');
        }
        // One line, whatever the server put in its messages.
        line.replace(['\r', '\n'], " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_is_nobodys_configuration_and_no_servers_fault() {
        let internal = BootstrapError::Protocol(Error::Internal("a broken invariant"));
        assert_eq!(internal.kind(), FailureKind::Internal);
        assert_eq!(internal.kind().code(), "internal");
        let misdriven =
            BootstrapError::Token(TokenError::Usage(ta_protocol::UsageError::UnexpectedToken));
        assert_eq!(misdriven.kind(), FailureKind::Internal);
        let usage = BootstrapError::Protocol(Error::Usage(ta_protocol::UsageError::Finished));
        assert_eq!(usage.kind(), FailureKind::Internal);
    }
}
