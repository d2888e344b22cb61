//! The client's address for the rate limits: the peer's, or what a trusted
//! proxy says in `X-Forwarded-For` / `Forwarded`. Public for a service
//! mounted behind the operator's own proxies, and for the fuzz targets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ta_protocol::http::{HeaderMap, header};

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64 (one host
/// usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the rightmost address of `X-Forwarded-For` (else `Forwarded: for=`) that
/// is not a trusted proxy. An entry that is not an address (`unknown`,
/// `_hidden`) stops the walk: the client is then unknown and the proxy's
/// own address is used, so a client cannot pick its key by writing entries
/// to the left of it.
pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let parse = |text: &str| -> Option<IpAddr> {
        let text = text.trim().trim_matches('"');
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(ip.to_canonical());
        }
        // `[v6]:port` or `v4:port`
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Some(addr.ip().to_canonical());
        }
        text.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    };
    let mut entries: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::to_owned)
        .collect();
    if entries.is_empty() {
        entries = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.to_owned())
                })
            })
            .collect();
    }
    for entry in entries.iter().rev() {
        match parse(entry) {
            Some(ip) if is_trusted(&ip) => {}
            Some(ip) => return ip,
            None => return peer,
        }
    }
    peer
}
