//! The client behind trusted reverse proxies: `X-Forwarded-For` and
//! `Forwarded: for=` are believed only when the TCP peer is a configured
//! proxy, and only up to the first hop that is not itself trusted, so a
//! client cannot choose its own rate-limit bucket by sending the header.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address or a network in CIDR notation (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR like 10.0.0.0/8"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client of a request from TCP peer `peer`: from a trusted peer,
    /// the rightmost hop of `X-Forwarded-For` or `Forwarded` that is not a
    /// trusted proxy; else the peer itself. When both headers are present
    /// they must agree, else the peer counts: a proxy maintains one of them
    /// and passes the other through from the client, so a disagreement
    /// means a forged header. An unreadable hop (`unknown`, an obfuscated
    /// name) ends the walk at the trusted hop to its right.
    pub fn client(&self, peer: IpAddr, xff: Option<&str>, forwarded: Option<&str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let by_xff = xff.map(|x| self.walk(peer, x.split(',').map(parse_hop)));
        let by_forwarded = forwarded.map(|f| self.walk(peer, forwarded_for(f)));
        match (by_xff, by_forwarded) {
            (Some(a), Some(b)) if a == b => a,
            (Some(_), Some(_)) | (None, None) => peer,
            (Some(a), None) | (None, Some(a)) => a,
        }
    }

    /// Walks `hops` (left to right as sent) from the right, starting at the
    /// trusted `peer`.
    fn walk(&self, peer: IpAddr, hops: impl DoubleEndedIterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for hop in hops.rev() {
            let Some(ip) = hop else { return client };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// The `for=` values of a `Forwarded` header (RFC 7239), left to right.
fn forwarded_for(header: &str) -> impl DoubleEndedIterator<Item = Option<IpAddr>> + '_ {
    header.split(',').filter_map(|element| {
        element.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_hop(v.trim().trim_matches('"')))
        })
    })
}

/// One hop: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]` or `[::1]:80`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = match s.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => s.rsplit_once(':')?.0,
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies(
            ["127.0.0.1", "10.0.0.0/8", "::1"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
        )
    }

    #[test]
    fn cidrs_parse_match_and_print() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.1.2")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1");
        for bad in ["10.0.0.0/33", "localhost", "::/129", "1.2.3.4/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let t = trusted();
        let x = Some("6.6.6.6");
        assert_eq!(t.client(ip("8.8.8.8"), x, None), ip("8.8.8.8"));
        assert_eq!(t.client(ip("127.0.0.1"), x, None), ip("6.6.6.6"));
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), x, None), ip("6.6.6.6"));
        assert_eq!(t.client(ip("127.0.0.1"), None, None), ip("127.0.0.1"));
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), x, None),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted();
        let peer = ip("127.0.0.1");
        // A client cannot hide behind a forged leftmost entry.
        let chain = Some("1.1.1.1, 2.2.2.2, 10.0.0.5");
        assert_eq!(t.client(peer, chain, None), ip("2.2.2.2"));
        assert_eq!(
            t.client(peer, Some("10.0.0.9, 10.0.0.5"), None),
            ip("10.0.0.9")
        );
        assert_eq!(t.client(peer, Some("1.1.1.1, garbage"), None), peer);
        assert_eq!(
            t.client(peer, Some("garbage, 10.0.0.5"), None),
            ip("10.0.0.5")
        );
        assert_eq!(
            t.client(peer, Some("[2001:db8::7]:443"), None),
            ip("2001:db8::7")
        );
        assert_eq!(t.client(peer, Some("3.3.3.3:1234"), None), ip("3.3.3.3"));
    }

    #[test]
    fn forwarded_is_parsed_and_must_agree_with_x_forwarded_for() {
        let t = trusted();
        let peer = ip("::1");
        let f = Some("for=4.4.4.4;proto=https, For=\"[2001:db8::1]:4711\";by=10.0.0.1");
        assert_eq!(t.client(peer, None, f), ip("2001:db8::1"));
        assert_eq!(t.client(peer, Some("2001:db8::1"), f), ip("2001:db8::1"));
        // One of them was passed through from the client: neither counts.
        assert_eq!(t.client(peer, Some("9.9.9.9"), f), peer);
        assert_eq!(
            t.client(peer, None, Some("for=4.4.4.4, for=10.1.1.1")),
            ip("4.4.4.4")
        );
        assert_eq!(t.client(peer, None, Some("for=unknown")), peer);
        assert_eq!(t.client(peer, None, Some("proto=http")), peer);
    }
}
