//! Validated configuration and inputs: the discover URL and the
//! [`Config`] (here), the application endpoint id, audience and session ids
//! ([`ids`]), allowed origins ([`origin`]), and the hosts the AAD token may
//! be sent to ([`trusted_hosts`]).

use std::net::IpAddr;
use std::sync::Arc;

use url::{Host, Url};

use crate::retry::RetryPolicy;

mod ids;
mod origin;
mod trusted_hosts;

pub use ids::{ApplicationSessionId, Audience, EndpointId, SessionIdError};
pub use origin::{AllowedOrigins, Origin, OriginError, OriginPolicy};
pub use trusted_hosts::TrustedHosts;

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

/// Whether a domain, as the URL parser gives it (IDNA done, lower case),
/// is a host name: labels of 1 to 63 letters, digits, `-` and `_`, 253
/// characters in all (a trailing dot aside). The parser also takes `;`,
/// `,`, `*`, `!`, `$`, … (from the text or percent-decoded), empty labels
/// and labels of any length, which no browser's origin and no real host has
/// (found by the `origin` and `urls` fuzz targets: a `;` splits a joined
/// list, and a 510-character host made one origin longer than a mint's
/// whole `allowedOrigins`).
pub(crate) fn is_domain_name(domain: &str) -> bool {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}

/// Whether `url` is `http` to a loopback host (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http" && url.host().is_some_and(is_loopback_host)
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
    loopback_http_widget_links: bool,
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
            loopback_http_widget_links: false,
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

    /// Whether plain `http` to a loopback host is allowed for the links
    /// handed to the widget (see
    /// [`ConfigBuilder::loopback_http_widget_links`]).
    pub fn loopback_http_widget_links(&self) -> bool {
        self.loopback_http_widget_links
    }

    /// Whether a link handed to the widget (the minted anonymous discover
    /// link) is acceptable: what [`is_secure_enough`](Self::is_secure_enough)
    /// accepts, or `http` to a loopback host when
    /// [`loopback_http_widget_links`](Self::loopback_http_widget_links).
    /// This client never sends its AAD token to such a link: only the
    /// browser follows it, with the psat token it carries.
    pub fn is_widget_link_acceptable(&self, url: &Url) -> bool {
        self.is_secure_enough(url) || (self.loopback_http_widget_links && is_loopback_http(url))
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
    loopback_http_widget_links: bool,
    trust_real_service_hosts: bool,
    extra_hosts: Vec<String>,
    retry: RetryPolicy,
    max_redirects: u8,
}

impl ConfigBuilder {
    /// Allows plain `http` to loopback hosts (`localhost`, `*.localhost`, 127.0.0.0/8,
    /// `::1`), for development and tests. Off by default.
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback = allow;
        self
    }

    /// Accepts plain `http` to a loopback host for the links handed to the
    /// widget only (the minted anonymous discover link), not for any link
    /// this client follows with its AAD token, which stay `https` unless
    /// [`allow_insecure_loopback`](Self::allow_insecure_loopback). For a
    /// local emulator whose browser-facing side is plain http on loopback
    /// (a secure context to browsers, with no certificate to trust). Off
    /// by default.
    pub fn loopback_http_widget_links(mut self, allow: bool) -> Self {
        self.loopback_http_widget_links = allow;
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
            loopback_http_widget_links: self.loopback_http_widget_links,
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
