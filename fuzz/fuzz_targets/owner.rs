//! The ownership rules on arbitrary strings: who owns a registration, who
//! may publish to it, and the derived node.
//!
//! Input: up to three strings separated by NUL bytes: a stanza's `from`, a
//! second `from` (another sender), and a device id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use push_appserver::registrations::owner::{derive_node, domain_of, may_publish, owner_of, short};
use push_appserver::registrations::MAX_FIELD_BYTES;

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let from = parts.next().unwrap_or_default();
    let other = parts.next().unwrap_or_default();
    let device = parts.next().unwrap_or_default();

    if let Some(owner) = owner_of(from) {
        assert!(
            !owner.is_empty() && owner.len() <= MAX_FIELD_BYTES,
            "owner of {} bytes",
            owner.len()
        );
        assert!(!owner.contains('/'));
        assert!(owner.matches('@').count() <= 1);
        // An owner is its own owner: stored owners compare equal to fresh ones.
        assert_eq!(
            owner_of(&owner).as_deref(),
            Some(owner.as_str()),
            "not idempotent"
        );
        // A user's own server may publish to the user's registrations.
        assert!(may_publish(&owner, Some(from)));
        assert!(may_publish(&owner, Some(domain_of(&owner))));
        assert!(!may_publish(&owner, None));
        // Another sender may publish only from the same domain.
        let allowed = may_publish(&owner, Some(other));
        let same_domain = owner_of(other).is_some_and(|o| domain_of(&o) == domain_of(&owner));
        assert_eq!(allowed, same_domain);

        let node = derive_node("push.example.org", &owner, device);
        assert_eq!(node.len(), 40);
        assert!(node.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(node, derive_node("push.example.org", &owner, device));
    }
    let s = short(device);
    assert!(s.chars().count() <= 9);
});
