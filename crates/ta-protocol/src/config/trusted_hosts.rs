//! The hosts the AAD bearer token may be sent to.

use std::collections::BTreeSet;
use std::net::IpAddr;

use url::{Host, Url};

use super::{ConfigError, REAL_SERVICE_HOSTS, is_domain_name};

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
            if !is_domain_name(&domain) {
                return Err(fail("not a valid domain after `*.`"));
            }
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
            Err(_) => match Host::parse(pattern) {
                // `%2a` decodes to a `*` the URL parser keeps (found by the
                // `urls` fuzz target).
                Ok(Host::Domain(domain)) if !is_domain_name(&domain) => {
                    return Err(fail("not a valid host name or address"));
                }
                Ok(host) => host,
                Err(_) => return Err(fail("not a valid host name or address")),
            },
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
