//! The SSRF guard for endpoint URLs that devices choose: which hosts and
//! addresses the server may be made to POST to. The addresses checked are
//! the resolved ones (a harmless name may resolve to 127.0.0.1), and the
//! connection then goes to the checked address, so a second, different
//! DNS answer cannot slip past (DNS rebinding).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use futures_lite::FutureExt;

/// Name lookups running at most (each on a blocking thread, which keeps
/// running until the system resolver gives up, past any timeout).
const MAX_LOOKUPS: usize = 32;

/// Name lookups of one registrable domain running at most: one party's
/// names that never resolve cannot take every lookup.
const MAX_LOOKUPS_PER_DOMAIN: usize = 4;

/// Name lookups running now: in all, and per registrable domain.
type Running = (usize, HashMap<String, usize>);
static LOOKUPS: Mutex<Option<Running>> = Mutex::new(None);

/// A running lookup's place; given back when dropped, also when the
/// lookup's task is dropped before it ran.
struct Lookup(String);

impl Lookup {
    fn start(host: &str) -> Option<Lookup> {
        let domain = crate::domains::registrable_domain(&host.to_ascii_lowercase()).to_owned();
        let mut guard = LOOKUPS.lock().unwrap_or_else(|e| e.into_inner());
        let (all, per) = guard.get_or_insert_with(Default::default);
        let mine = per.get(&domain).copied().unwrap_or(0);
        if *all >= MAX_LOOKUPS || mine >= MAX_LOOKUPS_PER_DOMAIN {
            return None;
        }
        *all += 1;
        per.insert(domain.clone(), mine + 1);
        Some(Lookup(domain))
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        let mut guard = LOOKUPS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((all, per)) = guard.as_mut() {
            *all = all.saturating_sub(1);
            if let Some(n) = per.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&self.0);
                }
            }
        }
    }
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// The host is not on the allow-list.
    HostNotAllowed(String),
    /// The address is of a class never reachable from here (loopback,
    /// private, link-local, unspecified, multicast, reserved ...).
    AddressRefused(IpAddr),
    /// The name did not resolve (or not in time).
    Resolve(String),
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardError::HostNotAllowed(h) => write!(f, "host {h} is not on the allow-list"),
            GuardError::AddressRefused(ip) => write!(f, "address {ip} may not be a push target"),
            GuardError::Resolve(why) => write!(f, "cannot resolve the endpoint: {why}"),
        }
    }
}

impl std::error::Error for GuardError {}

/// What the guard lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardPolicy {
    /// Allows loopback, private (RFC 1918, ULA, CGNAT) and link-local
    /// targets: for tests and closed networks only.
    pub allow_private: bool,
    /// When not empty, only these hosts: `push.example.org` exactly, or
    /// `.example.org` for the domain and its subdomains.
    pub allow_hosts: Vec<String>,
}

/// The class of an address, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// Routable on the internet.
    Public,
    /// Loopback, private, shared (CGNAT), unique-local or link-local.
    Private,
    /// Never a valid target: unspecified, multicast, broadcast,
    /// documentation, benchmarking and reserved ranges.
    Never,
}

/// Classifies an address (IPv4-mapped and NAT64 IPv6 by their IPv4 part).
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified()
        || a == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b & 0xfe) == 18)
    {
        return AddrClass::Never;
    }
    if ip.is_loopback() || ip.is_private() || ip.is_link_local() || (a == 100 && (b & 0xc0) == 64) {
        return AddrClass::Private;
    }
    AddrClass::Public
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // 6to4 (2002::/16) reaches the IPv4 address in its next 32 bits.
    if seg[0] == 0x2002 {
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // Local-use NAT64 (64:ff9b:1::/48) translates into the operator's own
    // network; site-local (fec0::/10, deprecated) is a private range.
    if seg[..3] == [0x64, 0xff9b, 1] || (seg[0] & 0xffc0) == 0xfec0 {
        return AddrClass::Private;
    }
    if ip.is_unspecified()
        // Teredo (2001::/32) tunnels to an address it hides.
        || (seg[0] == 0x2001 && seg[1] == 0)
        || ip.is_multicast()
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        // IPv4-compatible (deprecated) and other ::/96 forms.
        || seg[..6] == [0; 6]
            && !ip.is_loopback()
    {
        return AddrClass::Never;
    }
    if ip.is_loopback() || (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfe80 {
        return AddrClass::Private;
    }
    AddrClass::Public
}

impl GuardPolicy {
    /// Whether `ip` may be a target.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), GuardError> {
        match classify(ip) {
            AddrClass::Public => Ok(()),
            AddrClass::Private if self.allow_private => Ok(()),
            _ => Err(GuardError::AddressRefused(ip)),
        }
    }

    /// Whether `host` (lowercase, without brackets) passes the allow-list.
    pub fn check_host(&self, host: &str) -> Result<(), GuardError> {
        if self.allow_hosts.is_empty()
            || self.allow_hosts.iter().any(|a| match a.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(a.as_str()),
                None => host == a,
            })
        {
            Ok(())
        } else {
            Err(GuardError::HostNotAllowed(host.to_owned()))
        }
    }

    /// Resolves `host:port` and checks the host and every address it
    /// resolves to; returns the address to connect to.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<SocketAddr, GuardError> {
        self.check_host(host)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip)?;
            return Ok(SocketAddr::new(ip, port));
        }
        let name = format!("{host}:{port}");
        // A lookup runs on a blocking thread that outlives a timeout: names
        // whose DNS never answers would pile up threads without this cap.
        let lookup = Lookup::start(host)
            .ok_or_else(|| GuardError::Resolve("too many name lookups in flight".into()))?;
        let addrs: Vec<SocketAddr> = smol::unblock(move || {
            let _lookup = lookup;
            name.to_socket_addrs()
                .map(|a| a.take(16).collect())
                .map_err(|e| e.to_string())
        })
        .or(async {
            async_io::Timer::after(timeout).await;
            Err("timed out".to_owned())
        })
        .await
        .map_err(GuardError::Resolve)?;
        let first = *addrs
            .first()
            .ok_or_else(|| GuardError::Resolve("no address".into()))?;
        // One bad address refuses the name: an attacker's DNS could
        // otherwise mix a public address with an internal one.
        for a in &addrs {
            self.check_ip(a.ip())?;
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_capped_per_registrable_domain_and_given_back() {
        let held: Vec<_> = (0..MAX_LOOKUPS_PER_DOMAIN)
            .map(|i| Lookup::start(&format!("n{i}.lookup-cap.example")).unwrap())
            .collect();
        assert!(
            Lookup::start("x.LOOKUP-cap.example").is_none(),
            "its domain is full"
        );
        let other = Lookup::start("a.other-lookup.example");
        assert!(other.is_some(), "another domain is not");
        drop(held);
        assert!(
            Lookup::start("x.lookup-cap.example").is_some(),
            "given back"
        );
    }

    fn class(s: &str) -> AddrClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_address_class() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "fec0::1",
            "64:ff9b:1::808:808",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
        ] {
            assert_eq!(class(ip), AddrClass::Private, "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.1",
            "::",
            "ff02::1",
            "2001:db8::1",
            "::ffff:0.0.0.0",
            "::1.2.3.4",
            "2001::1",
            "2002:0:1::1",
        ] {
            assert_eq!(class(ip), AddrClass::Never, "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), AddrClass::Public, "{ip}");
        }
    }

    #[test]
    fn policy_allows_private_only_when_asked_and_never_the_rest() {
        let strict = GuardPolicy::default();
        let open = GuardPolicy {
            allow_private: true,
            ..GuardPolicy::default()
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(strict.check_ip(lo), Err(GuardError::AddressRefused(lo)));
        assert_eq!(open.check_ip(lo), Ok(()));
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(open.check_ip(any).is_err());
        assert!(strict.check_ip("8.8.8.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn allow_list_matches_exact_hosts_and_dot_domains() {
        let p = GuardPolicy {
            allow_private: false,
            allow_hosts: vec!["up.example.org".into(), ".push.example.com".into()],
        };
        assert!(p.check_host("up.example.org").is_ok());
        assert!(p.check_host("push.example.com").is_ok());
        assert!(p.check_host("a.push.example.com").is_ok());
        assert!(p.check_host("evilpush.example.com").is_err());
        assert!(p.check_host("x.up.example.org").is_err());
        assert!(GuardPolicy::default().check_host("anything").is_ok());
    }

    #[test]
    fn resolve_checks_literals_and_resolved_names() {
        let strict = GuardPolicy::default();
        let t = Duration::from_secs(5);
        smol::block_on(async {
            assert!(matches!(
                strict.resolve("127.0.0.1", 443, t).await,
                Err(GuardError::AddressRefused(_))
            ));
            assert!(matches!(
                strict.resolve("::1", 443, t).await,
                Err(GuardError::AddressRefused(_))
            ));
            // A name is judged by what it resolves to.
            assert!(matches!(
                strict.resolve("localhost", 443, t).await,
                Err(GuardError::AddressRefused(_))
            ));
            let open = GuardPolicy {
                allow_private: true,
                ..GuardPolicy::default()
            };
            assert_eq!(
                open.resolve("127.0.0.1", 8443, t).await,
                Ok("127.0.0.1:8443".parse().unwrap())
            );
        });
    }
}
