use super::*;
use std::time::{Duration, UNIX_EPOCH};

/// HTTP registrations that may change a node's token, as the module let them.
const OPEN: TokenChange = TokenChange {
    secret: None,
    open: true,
};

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn temp(name: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!("pa-reg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    TempDir(p)
}
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn owned_renew_keeps_node_and_secret_and_moves_the_index() {
    let d = temp("renew");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let owner = "alice@example.com";
    let a = s
        .register_owned("push.x", "apns", owner, "dev", "tokA", at(100))
        .unwrap();
    let b = s
        .register_owned("push.x", "apns", owner, "dev", "tokB", at(200))
        .unwrap();
    assert_eq!(a.registration.node, b.registration.node);
    assert_eq!(
        a.registration.node,
        owner::derive_node("push.x", owner, "dev")
    );
    assert_eq!(a.secret, b.secret);
    assert_eq!(b.registration.owner.as_deref(), Some(owner));
    assert_eq!(b.registration.registered_ms, 100_000);
    assert_eq!(b.registration.renewed_ms, 200_000);
    assert!(s.lookup_token("apns", "tokA").unwrap().is_empty());
    assert_eq!(
        s.lookup_token("apns", "tokB").unwrap()[0].node,
        b.registration.node
    );
    assert!(s.verify_secret(&b.registration, &a.secret));
    assert!(!s.verify_secret(&b.registration, &"0".repeat(64)));
    assert_eq!(s.count().unwrap(), 1);
    assert_eq!(s.count_of_owner(owner).unwrap(), (1, 1));
}

#[test]
fn another_jid_gets_its_own_registration_and_cannot_touch_the_first() {
    let d = temp("owners");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let v = s
        .register_owned("push.x", "fcm", "victim@a.example", "dev", "tokV", at(1))
        .unwrap();
    let e = s
        .register_owned(
            "push.x",
            "fcm",
            "attacker@evil.example",
            "dev",
            "tokE",
            at(2),
        )
        .unwrap();
    assert_ne!(v.registration.node, e.registration.node);
    assert_ne!(v.secret, e.secret);
    let node = &v.registration.node;
    // By node the attacker removes nothing; by device id only its own.
    assert!(s
        .unregister_owned("push.x", "fcm", "attacker@evil.example", node)
        .unwrap()
        .is_none());
    let own = s
        .unregister_owned("push.x", "fcm", "attacker@evil.example", "dev")
        .unwrap()
        .unwrap();
    assert_eq!(own.registration.node, e.registration.node);
    assert_eq!(s.lookup("push.x", node).unwrap().unwrap().token, "tokV");
    // Over HTTP an owned node is refused, unchanged.
    assert!(matches!(
        s.register("push.x", "fcm", node, "tokH", OPEN, at(3)),
        Err(RegError::Refused(Refusal::Owned))
    ));
    assert!(matches!(
        s.unregister("push.x", "fcm", node, Some(&v.secret)),
        Err(RegError::Refused(Refusal::Owned))
    ));
    assert_eq!(s.lookup("push.x", node).unwrap().unwrap().token, "tokV");
    // The owner removes it by its node too.
    let gone = s
        .unregister_owned("push.x", "fcm", "victim@a.example", node)
        .unwrap()
        .unwrap();
    assert_eq!(gone.registration.node, *node);
    assert_eq!(s.count().unwrap(), 0);
    assert_eq!(s.count_of_owner("victim@a.example").unwrap(), (0, 0));
}

#[test]
fn http_register_with_another_token_needs_the_secret() {
    let d = temp("http-proof");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let strict = |secret| TokenChange {
        secret,
        open: false,
    };
    let a = s
        .register("push.x", "fcm", "n", "tokA", strict(None), at(1))
        .unwrap();
    assert_eq!(
        s.register("push.x", "fcm", "n", "tokA", strict(None), at(2))
            .unwrap()
            .secret,
        a.secret,
        "same type and token: idempotent, same secret"
    );
    // Someone who only knows the node: refused, nothing changes.
    for (secret, refusal) in [
        (None, Refusal::SecretNeeded),
        (Some("guess"), Refusal::WrongSecret),
    ] {
        match s.register("push.x", "fcm", "n", "tokEvil", strict(secret), at(3)) {
            Err(RegError::Refused(r)) => assert_eq!(r, refusal),
            other => panic!("{other:?}"),
        }
    }
    let r = s.lookup("push.x", "n").unwrap().unwrap();
    assert_eq!(r.token, "tokA");
    assert!(s.verify_secret(&r, &a.secret));
    assert!(s.lookup_token("fcm", "tokEvil").unwrap().is_empty());
    // The device itself, with its secret: a new token, the same secret.
    let b = s
        .register("push.x", "fcm", "n", "tokB", strict(Some(&a.secret)), at(4))
        .unwrap();
    assert_eq!(b.secret, a.secret);
    assert_eq!(b.registration.token, "tokB");
    assert!(s.lookup_token("fcm", "tokA").unwrap().is_empty());
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn http_register_with_another_token_gets_a_fresh_secret_when_open() {
    let d = temp("http");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let a = s
        .register("push.x", "fcm", "n", "tokA", OPEN, at(1))
        .unwrap();
    let b = s
        .register("push.x", "fcm", "n", "tokB", OPEN, at(3))
        .unwrap();
    assert_ne!(a.secret, b.secret);
    let r = s.lookup("push.x", "n").unwrap().unwrap();
    assert!(!s.verify_secret(&r, &a.secret), "the old secret is void");
    assert!(s.verify_secret(&r, &b.secret));
    assert!(s.lookup_token("fcm", "tokA").unwrap().is_empty());
    // Another type with the same token is another device too.
    let c = s
        .register("push.x", "apns", "n", "tokB", OPEN, at(4))
        .unwrap();
    assert_ne!(c.secret, b.secret);
    assert_eq!(s.count().unwrap(), 1);
    // Unregister needs the secret (unless open).
    assert!(matches!(
        s.unregister("push.x", "apns", "n", Some(&b.secret)),
        Err(RegError::Refused(Refusal::WrongSecret))
    ));
    assert!(s
        .unregister("push.x", "apns", "n", Some(&c.secret))
        .unwrap()
        .is_some());
    assert_eq!(s.count().unwrap(), 0);
}

#[test]
fn an_owner_claims_its_derived_node_made_over_http_first() {
    let d = temp("claim");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let node = owner::derive_node("push.x", "v@a.example", "dev");
    let squat = s
        .register("push.x", "fcm", &node, "tokE", OPEN, at(1))
        .unwrap();
    let v = s
        .register_owned("push.x", "fcm", "v@a.example", "dev", "tokE", at(2))
        .unwrap();
    assert_eq!(v.registration.node, node);
    assert_ne!(v.secret, squat.secret, "the squatter's secret is void");
    assert_eq!(s.count().unwrap(), 1);
    assert_eq!(s.count_of_owner("v@a.example").unwrap(), (1, 1));
}

#[test]
fn count_limits_refuse_and_store_nothing() {
    let d = temp("limits");
    let s = Registrations::open(&d.0, 1 << 20)
        .unwrap()
        .with_limits(CountLimits {
            per_jid: 2,
            per_domain: 3,
            total: 5,
            new_per_minute: 600,
        });
    let reg = |owner: &str, dev: &str| s.register_owned("c", "fcm", owner, dev, "t", at(1));
    reg("a@x", "1").unwrap();
    reg("a@x", "2").unwrap();
    // Renewing never counts against the limit.
    reg("a@x", "2").unwrap();
    assert!(matches!(
        reg("a@x", "3"),
        Err(RegError::Refused(Refusal::Limit(LimitKind::Jid)))
    ));
    assert!(s
        .lookup("c", &owner::derive_node("c", "a@x", "3"))
        .unwrap()
        .is_none());
    reg("b@x", "1").unwrap();
    assert!(matches!(
        reg("c@x", "1"),
        Err(RegError::Refused(Refusal::Limit(LimitKind::Domain)))
    ));
    reg("a@y", "1").unwrap();
    s.register("c", "fcm", "h1", "t", OPEN, at(1)).unwrap();
    assert!(matches!(
        s.register("c", "fcm", "h2", "t", OPEN, at(1)),
        Err(RegError::Refused(Refusal::Limit(LimitKind::Total)))
    ));
    assert_eq!(s.count().unwrap(), 5);
    assert_eq!(s.count_of_owner("a@x").unwrap(), (2, 3));
    // Dead-token removal counts out too: every registration used token "t".
    assert_eq!(s.remove_dead_token("fcm", "t", at(10)).unwrap().len(), 5);
    assert_eq!(s.count().unwrap(), 0);
    assert_eq!(s.count_of_owner("a@x").unwrap(), (0, 0));
    reg("c@x", "1").unwrap();
}

#[test]
fn subdomains_share_their_registrable_domains_count() {
    let d = temp("subdomains");
    let limits = CountLimits {
        per_jid: 20,
        per_domain: 2,
        total: 100,
        new_per_minute: 600,
    };
    let s = Registrations::open(&d.0, 1 << 20)
        .unwrap()
        .with_limits(limits);
    let reg = |s: &Registrations, owner: &str| s.register_owned("c", "fcm", owner, "1", "t", at(1));
    reg(&s, "a@a.evil.example").unwrap();
    reg(&s, "b@b.evil.example").unwrap();
    assert!(matches!(
        reg(&s, "c@c.evil.example"),
        Err(RegError::Refused(Refusal::Limit(LimitKind::Domain)))
    ));
    reg(&s, "c@other.example").unwrap();
    assert_eq!(s.count_of_owner("z@evil.example").unwrap(), (0, 2));

    // The same store as schema version 3 kept it: counts per exact domain.
    let st = s.store().unwrap();
    let opts = fjall::KeyspaceCreateOptions::default;
    let meta = st.db.keyspace("meta", opts).unwrap();
    let counters = st.db.keyspace("counters", opts).unwrap();
    counters.remove("domain\0evil.example").unwrap();
    counters
        .insert("domain\0a.evil.example", 1u64.to_be_bytes())
        .unwrap();
    counters
        .insert("domain\0b.evil.example", 1u64.to_be_bytes())
        .unwrap();
    counters
        .insert("domain\0gone.example", 7u64.to_be_bytes())
        .unwrap();
    meta.insert("schema_version", "3").unwrap();
    st.db.persist(fjall::PersistMode::SyncAll).unwrap();
    drop((meta, counters));
    drop(st);
    drop(s);

    // Opening it counts afresh: the subdomains' counts become one, the
    // stale ones go, and the limit holds across subdomains again.
    let s = Registrations::open(&d.0, 1 << 20)
        .unwrap()
        .with_limits(limits);
    assert_eq!(s.count_of_owner("z@evil.example").unwrap(), (0, 2));
    assert_eq!(s.count_of_owner("z@gone.example").unwrap(), (0, 0));
    assert_eq!(s.count_of_owner("z@a.evil.example").unwrap(), (0, 2));
    let st = s.store().unwrap();
    let counters = st.db.keyspace("counters", opts).unwrap();
    assert!(counters.get("domain\0a.evil.example").unwrap().is_none());
    drop(counters);
    drop(st);
    assert_eq!(s.count().unwrap(), 3);
    assert!(matches!(
        reg(&s, "d@d.evil.example"),
        Err(RegError::Refused(Refusal::Limit(LimitKind::Domain)))
    ));
    reg(&s, "d@other.example").unwrap();
}

#[test]
fn secret_is_not_in_the_store_files() {
    let d = temp("nosecret");
    let secret = {
        let s = Registrations::open(&d.0, 1 << 20).unwrap();
        let r = s
            .register("push.x", "fcm", "n1", "tok", OPEN, at(1))
            .unwrap();
        s.sync().unwrap();
        r.secret
    };
    fn scan(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                scan(&p, needle)
            } else {
                let b = std::fs::read(&p).unwrap_or_default();
                b.windows(needle.len()).any(|w| w == needle)
            }
        })
    }
    assert!(!scan(&d.0.join("store"), secret.as_bytes()));
    assert!(
        scan(&d.0.join("store"), b"tok"),
        "scan must be able to find stored data"
    );
}

#[test]
fn dead_token_respects_reregistration_after_timestamp() {
    let d = temp("dead");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    s.register("push.x", "apns", "old", "tok", OPEN, at(100))
        .unwrap();
    s.register("push.x", "apns", "new", "tok", OPEN, at(300))
        .unwrap();
    s.register("push.x", "fcm", "other", "tok", OPEN, at(100))
        .unwrap();
    let removed = s.remove_dead_token("apns", "tok", at(200)).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].node, "old");
    assert!(s.lookup("push.x", "old").unwrap().is_none());
    assert!(s.lookup("push.x", "new").unwrap().is_some());
    assert!(
        s.lookup("push.x", "other").unwrap().is_some(),
        "other type untouched"
    );
}

#[test]
fn unregister_requires_matching_type_and_survives_reopen() {
    let d = temp("unreg");
    {
        let s = Registrations::open(&d.0, 1 << 20).unwrap();
        s.register("push.x", "apns", "n1", "t1", OPEN, at(1))
            .unwrap();
        s.register("push.x", "apns", "n2", "t2", OPEN, at(1))
            .unwrap();
        assert!(s.unregister("push.x", "fcm", "n1", None).unwrap().is_none());
        assert!(s
            .unregister("push.x", "apns", "n1", None)
            .unwrap()
            .is_some());
        s.record_push("push.x", "n2", at(5), Some("boom"));
        s.record_push("push.x", "n1", at(5), Some("gone"));
        assert_eq!(s.flush_outcomes().unwrap(), 1, "n1 is no longer registered");
    }
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    assert!(s.lookup("push.x", "n1").unwrap().is_none());
    assert_eq!(s.nodes("push.x", 10).unwrap(), vec!["n2".to_owned()]);
    assert_eq!(
        s.push_stats("push.x", "n2").unwrap().last_push_error_ms,
        Some(5000)
    );
    assert!(s.nodes("push.y", 10).unwrap().is_empty());
}

#[test]
fn field_checks() {
    assert_eq!(check_field("node", ""), Err(InputError::Missing("node")));
    assert_eq!(
        check_field("node", "a\nb"),
        Err(InputError::Invalid("node"))
    );
    assert!(check_field("token", &"a".repeat(MAX_FIELD_BYTES + 1)).is_err());
    assert!(check_field("token", "abc-DEF_123:xyz").is_ok());
}

#[test]
fn reopen_keeps_every_registration_and_secret() {
    let d = temp("reopen");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let a = s
        .register("push.x", "fcm", "n1", "tok", OPEN, at(1))
        .unwrap();
    s.reopen().unwrap();
    let r = s.lookup("push.x", "n1").unwrap().unwrap();
    assert!(s.verify_secret(&r, &a.secret));
    s.register("push.x", "fcm", "n2", "tok2", OPEN, at(2))
        .unwrap();
    assert_eq!(s.nodes("push.x", 10).unwrap(), ["n1", "n2"]);
    assert_eq!(s.count().unwrap(), 2);
}

/// Writes a store exactly as schema version 1 did (records without owner,
/// `v: 1`, no counters), with `n` registrations; returns their secrets.
fn write_v1_store(dir: &std::path::Path, n: usize) -> Vec<(String, String)> {
    use fjall::{Database, KeyspaceCreateOptions};
    std::fs::create_dir_all(dir).unwrap();
    let key = ServerKey::load_or_create(&dir.join("server.key")).unwrap();
    let db = Database::builder(dir.join("store")).open().unwrap();
    let opts = KeyspaceCreateOptions::default;
    let meta = db.keyspace("meta", opts).unwrap();
    let regs = db.keyspace("registrations", opts).unwrap();
    let tokens = db.keyspace("token_index", opts).unwrap();
    meta.insert("schema_version", "1").unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let (node, salt) = (format!("n{i:05}"), format!("{i:064x}"));
        let json = format!(
            r#"{{"v":1,"component":"push.x","type":"fcm","node":"{node}","token":"t{i}","registered_ms":1,"renewed_ms":1,"salt":"{salt}"}}"#
        );
        regs.insert(record::reg_key("push.x", &node), json).unwrap();
        tokens
            .insert(
                record::token_key("fcm", &format!("t{i}"), "push.x", &node),
                "",
            )
            .unwrap();
        out.push((node.clone(), key.secret("push.x", &node, &salt)));
    }
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    out
}

#[test]
fn a_v1_store_is_migrated_and_every_secret_still_verifies() {
    let d = temp("migrate");
    let old = write_v1_store(&d.0, 2500);
    for _ in 0..2 {
        // Twice: opening a migrated store again changes nothing.
        let s = Registrations::open(&d.0, 1 << 20).unwrap();
        assert_eq!(s.count().unwrap(), 2500);
        for (node, secret) in [&old[0], &old[1234], &old[2499]] {
            let r = s.lookup("push.x", node).unwrap().unwrap();
            assert_eq!(r.v, SCHEMA_VERSION);
            assert_eq!(r.owner, None);
            assert!(s.verify_secret(&r, secret), "{node}");
        }
        assert_eq!(s.lookup_token("fcm", "t7").unwrap()[0].node, "n00007");
    }
    // A migration cut short (schema still 1, some records rewritten, a
    // stale total) runs again from the start and counts afresh.
    {
        use fjall::{Database, KeyspaceCreateOptions};
        let db = Database::builder(d.0.join("store")).open().unwrap();
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
        let counters = db
            .keyspace("counters", KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("schema_version", "1").unwrap();
        counters
            .insert(counters::TOTAL, 7u64.to_be_bytes())
            .unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    assert_eq!(s.count().unwrap(), 2500);
    let (node, secret) = &old[42];
    assert!(s.verify_secret(&s.lookup("push.x", node).unwrap().unwrap(), secret));
}

#[test]
fn a_newer_schema_is_refused() {
    let d = temp("newer");
    write_v1_store(&d.0, 1);
    {
        use fjall::{Database, KeyspaceCreateOptions};
        let db = Database::builder(d.0.join("store")).open().unwrap();
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
        meta.insert("schema_version", "99").unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    assert!(matches!(
        Registrations::open(&d.0, 1 << 20),
        Err(StoreError::SchemaTooNew(99))
    ));
}

#[test]
fn push_outcomes_reach_the_store_only_when_flushed() {
    let d = temp("outcomes");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    s.register("push.x", "apns", "n1", "t1", OPEN, at(1))
        .unwrap();
    for secs in 2..50 {
        s.record_push("push.x", "n1", at(secs), None);
    }
    s.record_push("push.x", "n1", at(7), Some("boom"));
    let key = record::stats_key("push.x", "n1");
    assert!(s.store().unwrap().stats.get(&key).unwrap().is_none());
    // Readers see the outcomes before they are written.
    let seen = s.push_stats("push.x", "n1").unwrap();
    assert_eq!(seen.last_successful_push_ms, Some(49_000));
    assert_eq!(seen.last_push_error_ms, Some(7_000));
    assert_eq!(s.flush_outcomes().unwrap(), 1, "49 outcomes, one record");
    assert!(s.store().unwrap().stats.get(&key).unwrap().is_some());
    assert_eq!(s.push_stats("push.x", "n1").unwrap(), seen);
    // A later flush merges into what is stored, the latest time winning.
    s.record_push("push.x", "n1", at(60), Some("later"));
    assert_eq!(s.flush_outcomes().unwrap(), 1);
    assert_eq!(s.flush_outcomes().unwrap(), 0, "nothing left");
    let after = s.push_stats("push.x", "n1").unwrap();
    assert_eq!(after.last_successful_push_ms, Some(49_000));
    assert_eq!(after.last_push_error_ms, Some(60_000));
    assert_eq!(after.last_push_error_reason.as_deref(), Some("later"));
}

#[test]
fn the_data_dir_is_made_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = temp("perms");
    std::fs::create_dir_all(&d.0).unwrap();
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _s = Registrations::open(&d.0, 1 << 20).unwrap();
    let mode = std::fs::metadata(&d.0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

#[test]
fn new_registrations_follow_a_server_wide_rate_renewals_do_not() {
    let d = temp("new-rate");
    let s = Registrations::open(&d.0, 1 << 20)
        .unwrap()
        .with_limits(CountLimits {
            new_per_minute: 3,
            ..CountLimits::default()
        });
    for i in 0..3 {
        s.register("c", "fcm", &format!("n{i}"), "t", OPEN, at(1))
            .unwrap();
    }
    match s.register("c", "fcm", "n3", "t", OPEN, at(1)) {
        Err(RegError::Refused(Refusal::Limit(LimitKind::Rate))) => {}
        other => panic!("{other:?}"),
    }
    assert!(s.lookup("c", "n3").unwrap().is_none(), "nothing stored");
    // Renewing an existing registration is not a new one.
    s.register("c", "fcm", "n0", "t", OPEN, at(2)).unwrap();
    let owned = s.register_owned("c", "fcm", "a@x", "dev", "t", at(3));
    assert!(matches!(
        owned,
        Err(RegError::Refused(Refusal::Limit(LimitKind::Rate)))
    ));
}

#[test]
fn one_token_serves_a_bounded_number_of_registrations() {
    let d = temp("per-token");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    for i in 0..counters::MAX_PER_TOKEN {
        s.register("c", "fcm", &format!("n{i}"), "shared", OPEN, at(1))
            .unwrap();
    }
    match s.register("c", "fcm", "one-more", "shared", OPEN, at(1)) {
        Err(RegError::Refused(Refusal::Limit(LimitKind::Token))) => {}
        other => panic!("{other:?}"),
    }
    // Renewing one of them is no new use of the token.
    s.register("c", "fcm", "n0", "shared", OPEN, at(2)).unwrap();
    assert_eq!(
        s.lookup_token("fcm", "shared").unwrap().len(),
        counters::MAX_PER_TOKEN
    );
    // Another push type is another token.
    s.register("c", "apns", "other", "shared", OPEN, at(3))
        .unwrap();
}

#[test]
fn a_registration_write_keeps_other_devices_cached() {
    let d = temp("cache-per-key");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    s.register("c", "fcm", "a", "ta", OPEN, at(1)).unwrap();
    s.register("c", "fcm", "b", "tb", OPEN, at(1)).unwrap();
    let a = s.lookup_for_push("c", "a").unwrap().unwrap();
    let b = s.lookup_for_push("c", "b").unwrap().unwrap();
    // A flood of new registrations, and a change to b: a stays cached (the
    // very same record), b is read afresh with its new token.
    for i in 0..50 {
        s.register("c", "fcm", &format!("n{i}"), &format!("t{i}"), OPEN, at(2))
            .unwrap();
    }
    s.register("c", "fcm", "b", "tb", OPEN, at(3)).unwrap();
    assert!(Arc::ptr_eq(
        &a,
        &s.lookup_for_push("c", "a").unwrap().unwrap()
    ));
    let b2 = s.lookup_for_push("c", "b").unwrap().unwrap();
    assert!(!Arc::ptr_eq(&b, &b2));
    assert_eq!(b2.renewed_ms, 3000);
}

#[test]
fn a_sync_leaves_nothing_only_in_memory_for_the_next_open() {
    // Issue 20: the stop's flush ended when fjall's workers had taken the
    // flushes, not when they had written them, so the process exited
    // mid-flush and every start replayed the journal into memory again.
    // Each round: writes, a close without a sync (as after a crash: the
    // open replays them into memory), then the stop's sync.
    let d = temp("sync-flushes");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    for round in 0..10 {
        for batch in 0..2 {
            let ids: Vec<String> = (0..500)
                .map(|i| format!("dev{round}-{batch}-{i}"))
                .collect();
            let devices: Vec<NewDevice<'_>> = ids
                .iter()
                .map(|id| NewDevice {
                    owner: "user@example.com",
                    device: id,
                    token: id,
                })
                .collect();
            s.register_owned_batch("push.x", "fcm", &devices, at(1))
                .unwrap();
        }
        s.reopen().unwrap();
        assert!(
            s.store().unwrap().in_memory() > 0,
            "the journal was replayed"
        );
        s.sync().unwrap();
        let st = s.store().unwrap();
        let meta = st
            .db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        for ks in [&meta, &st.regs, &st.tokens, &st.stats, &st.counters] {
            let name = ks.name();
            assert_eq!(
                ks.sealed_memtable_count(),
                0,
                "round {round}: {name:?} still flushing"
            );
        }
    }
    s.reopen().unwrap();
    assert_eq!(
        s.store().unwrap().in_memory(),
        0,
        "the open replays nothing"
    );
    assert_eq!(s.count().unwrap(), 10_000);
}
