//! Who owns a registration: the requester's bare JID, its domain, and the
//! XEP-0357 node derived from (component, owner, device id), as p2 does, so
//! the same device id registered by two JIDs gives two registrations and
//! no JID can reach another's.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use super::secret::{hex, KeyError};
use super::MAX_FIELD_BYTES;

/// Versioned prefix of the node derivation: a later scheme gets `v2`.
const NODE_CONTEXT: &[u8] = b"push-appserver node v1\0";

/// Bytes of SHA-256 kept in a derived node (40 hex digits).
const NODE_BYTES: usize = 20;

/// The owner named by a stanza's `from`: the bare JID, lowercased (a
/// `from` without a localpart is a server, which may own registrations
/// too). `None` when `from` is empty or not a plausible JID.
pub fn owner_of(from: &str) -> Option<String> {
    // The resource starts at the first '/', and may contain anything.
    let bare = from.split('/').next().unwrap_or_default();
    if bare.is_empty() || bare.len() > MAX_FIELD_BYTES {
        return None;
    }
    if bare
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "\"&'<>".contains(c))
    {
        return None;
    }
    let domain = match bare.split_once('@') {
        Some((local, domain)) if !local.is_empty() => domain,
        Some(_) => return None,
        None => bare,
    };
    if domain.is_empty() || domain.contains('@') || domain.starts_with('.') {
        return None;
    }
    // Lowercasing can grow a string ('İ' is 2 bytes, "i̇" 3): the limit
    // holds for the owner as stored, not only for the `from` it came from.
    let owner = bare.to_lowercase();
    (owner.len() <= MAX_FIELD_BYTES).then_some(owner)
}

/// The domain of a bare JID (the JID itself when it has no localpart).
pub fn domain_of(bare: &str) -> &str {
    bare.rsplit_once('@').map_or(bare, |(_, d)| d)
}

/// Whether a publish from `from` may push to a registration of `owner`:
/// the user's server sends it, from the user's bare JID or its own domain.
pub fn may_publish(owner: &str, from: Option<&str>) -> bool {
    match from.and_then(owner_of) {
        Some(sender) => domain_of(&sender) == domain_of(owner),
        None => false,
    }
}

/// The node of `owner`'s device `device` at `component`: lowercase hex of
/// the first 20 bytes of SHA-256 over a versioned, `\0`-separated message.
/// Stable across releases: clients keep it in their server's push config.
pub fn derive_node(component: &str, owner: &str, device: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(NODE_CONTEXT);
    for part in [component, owner, device] {
        ctx.update(part.as_bytes());
        ctx.update(b"\0");
    }
    hex(&ctx.finish().as_ref()[..NODE_BYTES])
}

/// A node or token as shown at info level: the first 8 characters and an
/// ellipsis. Full values are logged at debug level only.
pub fn short(id: &str) -> String {
    match id.char_indices().nth(8) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_owned(),
    }
}

/// Bytes of randomness in a node that is its own credential (Siskin's:
/// 128 bits).
const RANDOM_NODE_BYTES: usize = 16;

/// A fresh random node: 128 bits, lowercase hex.
pub fn random_node() -> Result<String, KeyError> {
    let mut b = [0u8; RANDOM_NODE_BYTES];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KeyError::Random)?;
    Ok(hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_nodes_are_128_random_bits() {
        let a = random_node().unwrap();
        let b = random_node().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn owner_is_the_lowercase_bare_jid() {
        assert_eq!(
            owner_of("Alice@Example.COM/Phone").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            owner_of("alice@example.com/res/with@odd").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(owner_of("example.com").as_deref(), Some("example.com"));
        for bad in ["", "/res", "@example.com", "a@", "a@b@c", "a b@c", "a@.c"] {
            assert_eq!(owner_of(bad), None, "{bad:?}");
        }
        assert_eq!(domain_of("alice@example.com"), "example.com");
        assert_eq!(domain_of("example.com"), "example.com");
    }

    /// Caught by the `owner` fuzz target's length invariant on a hand-made
    /// input (fuzz/artifacts-kept/owner-lowercase-grows-past-the-limit.txt): a
    /// `from` within the limit gave an owner of 1.5 times the limit once
    /// lowercased, which was then not an owner of itself.
    #[test]
    fn fuzz_owner_that_lowercasing_grows_past_the_limit_is_refused() {
        let at_limit = format!("{}@x", "İ".repeat((MAX_FIELD_BYTES - 2) / 2));
        assert_eq!(at_limit.len(), MAX_FIELD_BYTES);
        assert_eq!(owner_of(&at_limit), None);
        let fits = format!("{}@x", "İ".repeat(MAX_FIELD_BYTES / 4));
        let owner = owner_of(&fits).expect("an owner within the limit");
        assert_eq!(owner_of(&owner), Some(owner.clone()));
    }

    #[test]
    fn publish_is_allowed_from_the_owners_domain_only() {
        let owner = "alice@example.com";
        assert!(may_publish(owner, Some("example.com")));
        assert!(may_publish(owner, Some("alice@example.com")));
        assert!(may_publish(owner, Some("Bob@EXAMPLE.com/x")));
        assert!(!may_publish(owner, Some("evil.example")));
        assert!(!may_publish(owner, Some("alice@evil.example")));
        assert!(!may_publish(owner, Some("")));
        assert!(!may_publish(owner, None));
    }

    #[test]
    fn derived_node_is_stable_and_depends_on_every_input() {
        let n = derive_node("push.example.org", "alice@example.com", "dev1");
        assert_eq!(n.len(), 40);
        assert!(n
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Pinned: clients keep this node in their server's push config, so
        // it must never change between releases.
        let pinned = {
            let m = b"push-appserver node v1\0push.example.org\0alice@example.com\0dev1\0";
            hex(&digest::digest(&digest::SHA256, m).as_ref()[..20])
        };
        assert_eq!(n, pinned);
        assert_ne!(
            n,
            derive_node("push2.example.org", "alice@example.com", "dev1")
        );
        assert_ne!(
            n,
            derive_node("push.example.org", "bob@example.com", "dev1")
        );
        assert_ne!(
            n,
            derive_node("push.example.org", "alice@example.com", "dev2")
        );
        // The separator keeps (a, bc) and (ab, c) apart.
        assert_ne!(derive_node("c", "a@x", "bc"), derive_node("c", "a@xb", "c"));
    }

    #[test]
    fn short_ids() {
        assert_eq!(short("0123456789abcdef"), "01234567…");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("ééééééééé"), "éééééééé…");
    }
}
