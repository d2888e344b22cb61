//! Validated configuration and inputs: the discover URL, the application
//! endpoint id, allowed origins, session ids, and the hosts the AAD token may
//! be sent to.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use url::{Host, Url};

use crate::retry::RetryPolicy;

/// The default discover URL of the (retired) public service.
pub const DEFAULT_DISCOVER_URL: &str = "https://api.skypeforbusiness.com/platformservice/discover";

/// The hosts of the real service, trusted with the AAD token by default.
pub const REAL_SERVICE_HOSTS: [&str; 3] = [
    "api.skypeforbusiness.com",
    "*.resources.lync.com",
    "*.infra.lync.com",
];

/// The most characters `allowedOrigins` may have, `;` separators included.
pub const MAX_ALLOWED_ORIGINS_CHARS: usize = 500;

/// The most characters an `applicationSessionId` may have.
pub const MAX_SESSION_ID_CHARS: usize = 100;

/// The default number of redirects followed for one request.
pub const DEFAULT_MAX_REDIRECTS: u8 = 3;

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The discover URL is unusable.
    #[error("discover URL {url:?}: {reason}")]
    DiscoverUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The application endpoint id is not a `sip:` URI.
    #[error("application endpoint id {value:?}: {reason}")]
    EndpointId {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A trusted-host pattern is not a host name, an IP address or `*.domain`.
    #[error("trusted host {pattern:?}: {reason}")]
    TrustedHost {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An allowed origin is not acceptable.
    #[error(transparent)]
    Origin(#[from] OriginError),
    /// The session id is not acceptable.
    #[error(transparent)]
    SessionId(#[from] SessionIdError),
    /// A setting is out of its range.
    #[error("{setting}: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn is_loopback_host(host: Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
    }
}

/// Whether `url` is `http` to a loopback host (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http" && url.host().is_some_and(is_loopback_host)
}

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
    /// 127.0.0.0/8, `[::1]`), for local development, even without
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
        let mut list: Vec<Self> = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let origin = Self::parse(entry, policy)?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        if list.is_empty() {
            return Err(OriginError::Empty);
        }
        Ok(list)
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
        if url.host().is_none() {
            return Err(fail("has no host"));
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

/// One or more distinct origins whose `;`-joined form fits the service's
/// 500-character limit: the `allowedOrigins` of a mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<Origin>);

impl AllowedOrigins {
    /// Checks the list: not empty, duplicates (after normalization) dropped,
    /// joined length within the limit.
    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Result<Self, OriginError> {
        let mut list: Vec<Origin> = Vec::new();
        for origin in origins {
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        if list.is_empty() {
            return Err(OriginError::Empty);
        }
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

/// The hosts the AAD bearer token may be sent to: exact host names or IP
/// addresses, and `*.domain` patterns (any subdomain of `domain`, not
/// `domain` itself). Compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedHosts {
    exact: BTreeSet<String>,
    suffixes: BTreeSet<String>,
}

impl TrustedHosts {
    /// No host at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// The real service's hosts ([`REAL_SERVICE_HOSTS`]).
    pub fn real_service() -> Self {
        let mut hosts = Self::new();
        for pattern in REAL_SERVICE_HOSTS {
            // These constants are valid patterns.
            let _ = hosts.add(pattern);
        }
        hosts
    }

    /// Adds a host name, an IP address (`[::1]` or `::1`), or `*.domain`.
    pub fn add(&mut self, pattern: &str) -> Result<(), ConfigError> {
        let fail = |reason| ConfigError::TrustedHost {
            pattern: pattern.chars().take(120).collect(),
            reason,
        };
        if let Some(domain) = pattern.strip_prefix("*.") {
            let host = Host::parse(domain).map_err(|_| fail("not a valid domain after `*.`"))?;
            let Host::Domain(domain) = host else {
                return Err(fail(
                    "`*.` must be followed by a domain name, not an address",
                ));
            };
            if !domain.contains('.') {
                return Err(fail("`*.` needs a domain with at least two labels"));
            }
            self.suffixes.insert(format!(".{domain}"));
            return Ok(());
        }
        if pattern.contains('*') {
            return Err(fail("a wildcard is only allowed as a leading `*.`"));
        }
        let bare = pattern.trim_start_matches('[').trim_end_matches(']');
        let host = match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Host::<String>::Ipv4(ip),
            Ok(IpAddr::V6(ip)) => Host::<String>::Ipv6(ip),
            Err(_) => Host::parse(pattern).map_err(|_| fail("not a valid host name or address"))?,
        };
        self.exact.insert(host.to_string());
        Ok(())
    }

    /// Adds the host of `url`, if it has one.
    pub fn add_url_host(&mut self, url: &Url) {
        if let Some(host) = url.host() {
            self.exact.insert(host.to_owned().to_string());
        }
    }

    /// Whether the token may be sent to `url`'s host.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host() else {
            return false;
        };
        let host = host.to_owned().to_string().to_ascii_lowercase();
        self.exact.contains(&host)
            || (matches!(url.host(), Some(Host::Domain(_)))
                && self
                    .suffixes
                    .iter()
                    .any(|suffix| host.ends_with(suffix.as_str())))
    }

    /// Every entry, patterns as `*.domain`.
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.exact
            .iter()
            .cloned()
            .chain(self.suffixes.iter().map(|s| format!("*{s}")))
    }

    /// Adds every entry of `other`.
    pub fn extend(&mut self, other: &Self) {
        self.exact.extend(other.exact.iter().cloned());
        self.suffixes.extend(other.suffixes.iter().cloned());
    }
}

/// The validated configuration of a Service Application's flow.
///
/// Built with [`Config::builder`]; immutable afterwards and shared by every
/// flow (`Arc<Config>`).
#[derive(Debug, Clone)]
pub struct Config {
    discover_url: Url,
    endpoint_id: EndpointId,
    audience: Audience,
    trusted_hosts: TrustedHosts,
    allow_insecure_loopback: bool,
    retry: RetryPolicy,
    max_redirects: u8,
}

impl Config {
    /// Starts a configuration for a discover URL and an application endpoint
    /// id; both are checked by [`ConfigBuilder::build`].
    pub fn builder(discover_url: &str, endpoint_id: &str) -> ConfigBuilder {
        ConfigBuilder {
            discover_url: discover_url.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            allow_insecure_loopback: false,
            trust_real_service_hosts: true,
            extra_hosts: Vec::new(),
            retry: RetryPolicy::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }

    /// The discover URL.
    pub fn discover_url(&self) -> &Url {
        &self.discover_url
    }

    /// The application endpoint id.
    pub fn endpoint_id(&self) -> &EndpointId {
        &self.endpoint_id
    }

    /// The token audience: scheme and host of the discover URL.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// The hosts trusted before discovery (the discover URL's host, the real
    /// service's hosts unless turned off, and those added explicitly).
    pub fn trusted_hosts(&self) -> &TrustedHosts {
        &self.trusted_hosts
    }

    /// Whether plain `http` to loopback hosts is allowed (development and
    /// tests only).
    pub fn allow_insecure_loopback(&self) -> bool {
        self.allow_insecure_loopback
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// How many redirects one request may follow.
    pub fn max_redirects(&self) -> u8 {
        self.max_redirects
    }

    /// Whether a URL's scheme is acceptable for this client: `https`, or
    /// `http` to a loopback host when that is allowed.
    pub fn is_secure_enough(&self, url: &Url) -> bool {
        url.scheme() == "https" || (self.allow_insecure_loopback && is_loopback_http(url))
    }

    /// Wraps the configuration for sharing between flows.
    pub fn into_shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// Builds a [`Config`]; every value is checked by [`ConfigBuilder::build`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    discover_url: String,
    endpoint_id: String,
    allow_insecure_loopback: bool,
    trust_real_service_hosts: bool,
    extra_hosts: Vec<String>,
    retry: RetryPolicy,
    max_redirects: u8,
}

impl ConfigBuilder {
    /// Allows plain `http` to loopback hosts (`localhost`, 127.0.0.0/8,
    /// `::1`), for development and tests. Off by default.
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback = allow;
        self
    }

    /// Whether the real service's hosts are trusted with the token (on by
    /// default).
    pub fn trust_real_service_hosts(mut self, trust: bool) -> Self {
        self.trust_real_service_hosts = trust;
        self
    }

    /// Trusts one more host (`host`, an IP address, or `*.domain`).
    pub fn trust_host(mut self, pattern: impl Into<String>) -> Self {
        self.extra_hosts.push(pattern.into());
        self
    }

    /// Sets the retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets how many redirects one request may follow (0 to 10).
    pub fn max_redirects(mut self, max: u8) -> Self {
        self.max_redirects = max;
        self
    }

    /// Checks everything and builds the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let discover_url = parse_discover_url(&self.discover_url, self.allow_insecure_loopback)?;
        let endpoint_id = EndpointId::new(&self.endpoint_id)?;
        let mut trusted_hosts = if self.trust_real_service_hosts {
            TrustedHosts::real_service()
        } else {
            TrustedHosts::new()
        };
        trusted_hosts.add_url_host(&discover_url);
        for pattern in &self.extra_hosts {
            trusted_hosts.add(pattern)?;
        }
        if self.max_redirects > 10 {
            return Err(ConfigError::Setting {
                setting: "max_redirects",
                reason: "must be at most 10",
            });
        }
        self.retry.validate()?;
        Ok(Config {
            audience: Audience::for_discover_url(&discover_url),
            discover_url,
            endpoint_id,
            trusted_hosts,
            allow_insecure_loopback: self.allow_insecure_loopback,
            retry: self.retry,
            max_redirects: self.max_redirects,
        })
    }
}

fn parse_discover_url(text: &str, allow_insecure_loopback: bool) -> Result<Url, ConfigError> {
    let fail = |reason: &str| ConfigError::DiscoverUrl {
        url: text.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text).map_err(|e| fail(&format!("not a valid absolute URL ({e})")))?;
    if !url.has_host() {
        return Err(fail("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail("must not carry user info"));
    }
    if url.fragment().is_some() {
        return Err(fail("must not have a fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_http(&url) && allow_insecure_loopback => Ok(url),
        "http" if is_loopback_http(&url) => Err(fail(
            "plain http is refused; allow insecure loopback explicitly for local development",
        )),
        "http" => Err(fail(
            "must be https (plain http only to loopback hosts, when allowed)",
        )),
        _ => Err(fail("the scheme must be https")),
    }
}
