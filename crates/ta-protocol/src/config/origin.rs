//! Web origins and the `allowedOrigins` list of a mint: parsed, normalised
//! and checked in one place.

use std::fmt;

use url::{Host, Url};

use super::{MAX_ALLOWED_ORIGINS_CHARS, is_domain_name, is_loopback_http};

/// What is wrong with an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// The origin is not `scheme://host[:port]`, and why.
    #[error("allowed origin {origin:?}: {reason}")]
    Invalid {
        /// The origin as given (shortened).
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `http://` was given but not explicitly allowed.
    #[error(
        "allowed origin {origin:?}: plain http is not allowed (allow it explicitly, or use https)"
    )]
    HttpNotAllowed {
        /// The origin as given.
        origin: String,
    },
    /// No origin was given.
    #[error("at least one allowed origin is required")]
    Empty,
    /// The origins joined with `;` are longer than the service accepts.
    #[error(
        "allowed origins joined with `;` have {length} characters; the service accepts at most {MAX_ALLOWED_ORIGINS_CHARS}"
    )]
    TooLong {
        /// The joined length.
        length: usize,
    },
}

/// Which origins are acceptable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginPolicy {
    /// Accept `http://` origins (the service did; an SA should only on
    /// purpose).
    pub allow_http: bool,
    /// Accept `http://` origins on loopback hosts (`localhost`,
    /// `*.localhost`, 127.0.0.0/8, `[::1]`), for local development, even without
    /// `allow_http`.
    pub allow_loopback_http: bool,
}

impl OriginPolicy {
    /// A policy: `allow_http` accepts any `http://` origin,
    /// `allow_loopback_http` only loopback ones (development). The default
    /// accepts `https://` only.
    pub const fn new(allow_http: bool, allow_loopback_http: bool) -> Self {
        Self {
            allow_http,
            allow_loopback_http,
        }
    }
}

/// A web origin, `https://host[:port]`, normalized (lower-case scheme and
/// host, default port dropped) and compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    /// Parses a list of origins as a setting gives them (a repeated flag,
    /// an environment variable split on commas, a file's array): white
    /// space around entries and empty entries are ignored, duplicates
    /// (after normalization) dropped, the order kept. An empty list is
    /// [`OriginError::Empty`]; the first bad entry is its error. The one
    /// parser of origin lists: [`AllowedOrigins::parse_list`], the
    /// service's allowlist and the command line use it.
    pub fn parse_all<'a>(
        entries: impl IntoIterator<Item = &'a str>,
        policy: OriginPolicy,
    ) -> Result<Vec<Self>, OriginError> {
        let parsed = entries
            .into_iter()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| Self::parse(entry, policy))
            .collect::<Result<Vec<_>, _>>()?;
        distinct(parsed)
    }

    /// Validates and normalizes an origin.
    ///
    /// Refused: a path (even `/`), query, fragment, user info, wildcard,
    /// `null`, a scheme other than `https` (or `http` when the policy allows
    /// it), white space.
    pub fn parse(text: &str, policy: OriginPolicy) -> Result<Self, OriginError> {
        let fail = |reason| OriginError::Invalid {
            origin: text.chars().take(120).collect(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("is empty"));
        }
        if text.eq_ignore_ascii_case("null") {
            return Err(fail("`null` is not an origin a token can be bound to"));
        }
        if text.contains('*') {
            return Err(fail("wildcards are not allowed; list each origin"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("must not contain white space or control characters"));
        }
        let Some((scheme, authority)) = text.split_once("://") else {
            return Err(fail("must be scheme://host[:port]"));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(fail("the scheme must be https (or http)"));
        }
        if let Some(c) = authority
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '\\'))
        {
            return Err(fail(match c {
                '?' => "must not have a query",
                '#' => "must not have a fragment",
                _ => "must not have a path (not even a trailing `/`)",
            }));
        }
        if authority.contains('@') {
            return Err(fail("must not have user info"));
        }
        if authority.is_empty() {
            return Err(fail("has no host"));
        }
        let url = Url::parse(&format!("{scheme}://{authority}"))
            .map_err(|_| fail("the host or port is not valid"))?;
        match url.host() {
            None => return Err(fail("has no host")),
            // `;` would split an origin in two where a list is joined
            // (the token's `ao` claim): found by the `origin` fuzz target.
            Some(Host::Domain(domain)) if !is_domain_name(domain) => {
                return Err(fail(
                    "the host is not a domain name (labels of 1 to 63 letters, digits, `-` or `_`; 253 characters in all)",
                ));
            }
            Some(_) => {}
        }
        let loopback_ok = policy.allow_loopback_http && is_loopback_http(&url);
        if scheme == "http" && !policy.allow_http && !loopback_ok {
            return Err(OriginError::HttpNotAllowed {
                origin: text.to_owned(),
            });
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// The normalized origin, as a browser sends it in `Origin`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The origins without duplicates, in their order; none is
/// [`OriginError::Empty`].
fn distinct(origins: impl IntoIterator<Item = Origin>) -> Result<Vec<Origin>, OriginError> {
    let mut list: Vec<Origin> = Vec::new();
    for origin in origins {
        if !list.contains(&origin) {
            list.push(origin);
        }
    }
    if list.is_empty() {
        return Err(OriginError::Empty);
    }
    Ok(list)
}

/// One or more distinct origins whose `;`-joined form fits the service's
/// 500-character limit: the `allowedOrigins` of a mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<Origin>);

impl AllowedOrigins {
    /// Checks the list: not empty, duplicates (after normalization) dropped,
    /// joined length within the limit.
    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Result<Self, OriginError> {
        let list = distinct(origins)?;
        let length = list.iter().map(|o| o.as_str().len()).sum::<usize>() + list.len() - 1;
        if length > MAX_ALLOWED_ORIGINS_CHARS {
            return Err(OriginError::TooLong { length });
        }
        Ok(Self(list))
    }

    /// Parses a `;`-separated list (white space around entries and empty
    /// entries are ignored).
    pub fn parse_list(text: &str, policy: OriginPolicy) -> Result<Self, OriginError> {
        Self::new(Origin::parse_all(text.split(';'), policy)?)
    }

    /// The origins, in order.
    pub fn as_slice(&self) -> &[Origin] {
        &self.0
    }

    /// Whether `origin` is one of them (exact comparison).
    pub fn contains(&self, origin: &Origin) -> bool {
        self.0.contains(origin)
    }

    /// The wire form: the origins joined with `;`.
    pub fn joined(&self) -> String {
        let mut out = String::new();
        for (i, origin) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(origin.as_str());
        }
        out
    }
}
