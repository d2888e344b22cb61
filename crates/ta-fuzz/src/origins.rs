//! What an operator configures and a browser sends: origins and
//! allowlists, the discover URL, the AAD token endpoint and tenant, trusted
//! host patterns.

use ta_protocol::aad::TokenEndpoint;
use ta_protocol::{AllowedOrigins, Config, Origin, OriginPolicy, TrustedHosts};

fn split(data: &[u8]) -> Option<(u8, &str)> {
    let (&first, rest) = data.split_first()?;
    Some((first, std::str::from_utf8(rest).ok()?))
}

fn policy(bits: u8) -> OriginPolicy {
    OriginPolicy::new(bits & 1 != 0, bits & 2 != 0)
}

/// An origin reads back to itself; a list joined reads back to the same
/// list; an origin alone is an allowlist of one.
pub fn origin(data: &[u8]) {
    let Some((bits, text)) = split(data) else {
        return;
    };
    let policy = policy(bits);
    if let Ok(origin) = Origin::parse(text, policy) {
        assert_eq!(Origin::parse(origin.as_str(), policy).as_ref(), Ok(&origin));
        let list = AllowedOrigins::new([origin.clone()])
            .unwrap_or_else(|e| panic!("{origin:?} alone is not a list: {e}"));
        assert_eq!(
            AllowedOrigins::parse_list(&list.joined(), policy).as_ref(),
            Ok(&list),
            "{origin:?} joined reads as another list"
        );
    }
    if let Ok(list) = AllowedOrigins::parse_list(text, policy) {
        assert_eq!(
            AllowedOrigins::parse_list(&list.joined(), policy).as_ref(),
            Ok(&list)
        );
        for origin in list.as_slice() {
            assert!(list.contains(origin));
        }
    }
}

/// The discover URL, the token endpoint and the tenant: what is taken reads
/// back to the same.
pub fn urls(data: &[u8]) {
    let Some((bits, text)) = split(data) else {
        return;
    };
    let loopback = bits & 1 != 0;
    if let Ok(config) = Config::builder(text, "sip:helpdesk@contoso.com")
        .allow_insecure_loopback(loopback)
        .build()
    {
        let again = Config::builder(config.discover_url().as_str(), "sip:helpdesk@contoso.com")
            .allow_insecure_loopback(loopback)
            .build()
            .unwrap_or_else(|e| panic!("{text:?}: its URL is refused: {e}"));
        assert_eq!(again.discover_url(), config.discover_url());
    }
    if let Ok(endpoint) = TokenEndpoint::parse(text, loopback) {
        let again = TokenEndpoint::parse(endpoint.url().as_str(), loopback);
        assert_eq!(again.as_ref(), Ok(&endpoint), "{text:?}");
        let _ = endpoint.tenant();
    }
    if let Ok(endpoint) = TokenEndpoint::for_tenant(text) {
        assert_eq!(endpoint.tenant(), Some(text), "the tenant {text:?} is lost");
    }
    let mut hosts = TrustedHosts::new();
    for pattern in text.split(',') {
        let _ = hosts.add(pattern);
    }
    let mut again = TrustedHosts::new();
    for entry in hosts.entries() {
        again
            .add(&entry)
            .unwrap_or_else(|e| panic!("the entry {entry:?} is refused: {e}"));
    }
    let entries = |h: &TrustedHosts| h.entries().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(entries(&again), entries(&hosts));
}
