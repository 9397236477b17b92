//! The client's address, behind the proxies the operator trusts (`trusted_proxies`): the one
//! rule every role uses to believe `X-Forwarded-For`.
//!
//! A connection from a trusted proxy is taken to carry the proxy's `X-Forwarded-For`; the
//! client is the right-most address in it that is not itself a trusted proxy (each proxy appends
//! the peer it saw, so everything to the left of that may be the client's own invention). A
//! connection from anyone else is the client, whatever it says. Being on a private or loopback
//! address earns no trust: a neighbour on the same network is not a proxy.
//!
//! This module must never widen trust beyond the configured ranges, nor read any other header.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// The configured trusted proxies (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(nets: &[IpNet]) -> TrustedProxies {
        TrustedProxies(nets.into())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The real client of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(peer, headers, &self.0)
    }
}

/// The real client of a request that arrived from `peer` with `headers`, behind `trusted`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    chain.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static(value));
        h
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".parse().unwrap()]);
        let h = xff("1.1.1.1, 203.0.113.7, 10.0.0.5");
        let via_proxy: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(trusted.client_ip(via_proxy, &h), "203.0.113.7".parse::<IpAddr>().unwrap());
        let outsider: IpAddr = "198.51.100.4".parse().unwrap();
        assert_eq!(trusted.client_ip(outsider, &h), outsider, "a spoofed chain from an untrusted peer");
        // Loopback and private peers are not trusted unless configured.
        for peer in ["127.0.0.1", "192.168.1.20", "::1", "fd00::1"] {
            let peer: IpAddr = peer.parse().unwrap();
            assert_eq!(TrustedProxies::default().client_ip(peer, &xff("6.6.6.6")), peer);
        }
        assert_eq!(trusted.client_ip(via_proxy, &HeaderMap::new()), via_proxy, "no chain: the proxy itself");
        assert_eq!(trusted.client_ip(via_proxy, &xff("garbage, 10.0.0.4")), via_proxy, "only proxies in the chain");
    }
}
