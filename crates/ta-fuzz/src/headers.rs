//! Header values from a server or a proxy: `WWW-Authenticate`,
//! `Retry-After`, `Forwarded` / `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use http::{HeaderMap, HeaderName, HeaderValue};
use ta_protocol::{Challenge, RetryAfter, challenges, parse_challenges, parse_retry_after};
use ta_widget_service::forwarded::{client_address, rate_key};

/// `WWW-Authenticate`: what is read, written again, reads the same; the
/// header map's reader agrees with the value's.
pub fn www_authenticate(data: &[u8]) {
    let Ok(parsed) = parse_challenges(data) else {
        return;
    };
    let written = parsed
        .iter()
        .map(write_challenge)
        .collect::<Vec<_>>()
        .join(", ");
    let again = parse_challenges(written.as_bytes())
        .unwrap_or_else(|e| panic!("{written:?} does not read back: {e:?}"));
    assert_eq!(again, parsed, "{written:?}");
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::WWW_AUTHENTICATE, value);
        assert_eq!(challenges(&headers).ok(), Some(parsed));
    }
}

fn write_challenge(challenge: &Challenge) -> String {
    let mut out = challenge.scheme.clone();
    if let Some(token68) = &challenge.token68 {
        out.push(' ');
        out.push_str(token68);
    }
    let params = challenge
        .params
        .iter()
        .map(|(name, value)| {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{name}=\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(", ");
    if !params.is_empty() {
        out.push(' ');
        out.push_str(&params);
    }
    out
}

/// `Retry-After`: seconds or an HTTP date; what is read, written again,
/// reads the same.
pub fn retry_after(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(parsed) = parse_retry_after(text) else {
        return;
    };
    let written = match parsed {
        RetryAfter::Delay(delay) => {
            assert_eq!(delay.subsec_nanos(), 0, "{text:?}");
            delay.as_secs().to_string()
        }
        RetryAfter::At(at) => httpdate::fmt_http_date(at),
    };
    assert_eq!(
        parse_retry_after(&written),
        Some(parsed),
        "{text:?} → {written:?}"
    );
}

/// The proxies the forwarded headers are checked against.
const TRUSTED: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0003)),
];

#[derive(Debug, Arbitrary)]
struct Forwarded {
    /// The peer: one of the trusted proxies, or any address, or none.
    peer: Option<Peer>,
    /// Header lines: `X-Forwarded-For` (true) or `Forwarded`.
    lines: Vec<(bool, Vec<u8>)>,
}

#[derive(Debug, Arbitrary)]
enum Peer {
    Trusted(u8),
    Any(IpAddr),
}

/// The client's address: the peer's unless the peer is a trusted proxy,
/// and never a trusted proxy's unless the peer's own.
pub fn forwarded(data: &[u8]) {
    let Ok(input) = Forwarded::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let peer = input.peer.map(|peer| match peer {
        Peer::Trusted(i) => TRUSTED
            .get(usize::from(i) % TRUSTED.len())
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Peer::Any(ip) => ip,
    });
    let mut headers = HeaderMap::new();
    for (xff, line) in &input.lines {
        let Ok(value) = HeaderValue::from_bytes(line) else {
            continue;
        };
        let name = if *xff {
            HeaderName::from_static("x-forwarded-for")
        } else {
            http::header::FORWARDED
        };
        headers.append(name, value);
    }
    let client = client_address(peer, &headers, &TRUSTED);
    let is_trusted = |ip: IpAddr| {
        TRUSTED
            .iter()
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    match peer {
        None => assert_eq!(client, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Some(peer) if !is_trusted(peer) => assert_eq!(client, peer.to_canonical()),
        Some(peer) => assert!(
            client == peer.to_canonical() || !is_trusted(client),
            "{headers:?} gave {client}"
        ),
    }
    let key = rate_key(client);
    assert_eq!(rate_key(key), key);
}
