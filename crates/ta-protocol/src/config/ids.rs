//! The validated ids of the protocol: the application endpoint id, the
//! audience of the AAD token, and the session id of one widget.

use std::fmt;

use url::Url;

use super::{ConfigError, MAX_SESSION_ID_CHARS};

/// An application endpoint id: the `sip:` URI a tenant admin registered for
/// the application (for example `sip:helpdesk@contoso.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointId(String);

impl EndpointId {
    /// Validates a `sip:` URI with a user and a domain.
    pub fn new(value: &str) -> Result<Self, ConfigError> {
        let fail = |reason| ConfigError::EndpointId {
            value: value.chars().take(120).collect(),
            reason,
        };
        let rest = value
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("sip:"))
            .and_then(|_| value.get(4..))
            .ok_or_else(|| fail("must start with `sip:`"))?;
        if let Some(bad) = rest
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || "\"#&/<>?\\^`{|}%".contains(*c))
        {
            return Err(if bad.is_whitespace() {
                fail("must not contain white space")
            } else {
                fail(
                    "contains a character not allowed in a SIP URI (one of \" # & / < > ? \\ ^ ` { | } %, or a control character)",
                )
            });
        }
        let (user, domain) = rest
            .split_once('@')
            .ok_or_else(|| fail("must be `sip:user@domain`"))?;
        let domain = domain.split(';').next().unwrap_or_default();
        if user.is_empty() {
            return Err(fail("has no user part before `@`"));
        }
        if domain.is_empty() || domain.contains('@') {
            return Err(fail("must have exactly one `@` followed by a domain"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The URI as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The audience (AAD "resource") of the token the API accepts: the scheme and
/// host (and port, if not the default) of the **discover** URL, for example
/// `https://api.skypeforbusiness.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Audience(String);

impl Audience {
    /// The audience for a discover URL.
    pub fn for_discover_url(url: &Url) -> Self {
        Self(url.origin().ascii_serialization())
    }

    /// The audience text, as sent in `resource=` (AAD v1).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The v2 scope for this audience: `<audience>/.default`.
    pub fn default_scope(&self) -> String {
        format!("{}/.default", self.0)
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with an application session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionIdError {
    /// Empty, or longer than the service accepts.
    #[error(
        "applicationSessionId has {length} characters; it must have 1 to {MAX_SESSION_ID_CHARS}"
    )]
    Length {
        /// Its length in characters.
        length: usize,
    },
    /// It contains a control character.
    #[error("applicationSessionId must not contain control characters")]
    ControlCharacter,
}

/// A unique id for one widget session (1 to 100 characters), embedded in the
/// minted token. Never reuse one for another sign-in attempt; retries of the
/// same mint use the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApplicationSessionId(String);

impl ApplicationSessionId {
    /// Validates a session id.
    pub fn new(value: impl Into<String>) -> Result<Self, SessionIdError> {
        let value = value.into();
        let length = value.chars().count();
        if !(1..=MAX_SESSION_ID_CHARS).contains(&length) {
            return Err(SessionIdError::Length { length });
        }
        if value.chars().any(char::is_control) {
            return Err(SessionIdError::ControlCharacter);
        }
        Ok(Self(value))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
