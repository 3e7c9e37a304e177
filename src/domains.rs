//! Registrable domains, by the public suffix list: what limits per domain
//! count by, so that subdomains made at will (a wildcard DNS entry is
//! enough to federate each, or to name a Web Push host) share one budget.

/// The registrable domain of `domain` (one label above its public suffix,
/// by the public suffix list): `a.evil.example` and `b.evil.example` are
/// both `evil.example`, `x.example.co.uk` is `example.co.uk`. Limits per
/// domain count here, so subdomains made at will share one budget. A
/// domain that is itself a public suffix, an IP literal or a single label
/// is its own group.
pub fn registrable_domain(domain: &str) -> &str {
    // The list is matched on lowercase ASCII labels; a trailing dot names
    // the same domain.
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.starts_with('[') || domain.parse::<std::net::Ipv4Addr>().is_ok() {
        return domain;
    }
    match psl::Psl::domain(&psl::List, domain.as_bytes()) {
        // `domain` is a suffix of the input, so it is valid UTF-8 at a
        // char boundary; the fallback never runs.
        Some(d) => domain
            .get(domain.len() - d.as_bytes().len()..)
            .unwrap_or(domain),
        None => domain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_share_their_registrable_domain() {
        for (domain, group) in [
            ("a.evil.example", "evil.example"),
            ("b.c.evil.example", "evil.example"),
            ("evil.example", "evil.example"),
            ("xmpp.example.co.uk", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            // A public suffix (here a private one) is its own group, and
            // names under it are apart: github.io's users are not one.
            ("github.io", "github.io"),
            ("alice.github.io", "alice.github.io"),
            ("chat.alice.github.io", "alice.github.io"),
            ("localhost", "localhost"),
            ("example.org.", "example.org"),
            ("192.0.2.7", "192.0.2.7"),
            ("[2001:db8::1]", "[2001:db8::1]"),
            ("xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
            ("ä.xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
        ] {
            assert_eq!(registrable_domain(domain), group, "{domain}");
        }
    }
}
