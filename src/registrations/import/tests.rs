use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::registrations::{CountLimits, Refusal, RegError};

/// HTTP registrations that may change a node's token, as the module let them.
const OPEN: crate::registrations::TokenChange = crate::registrations::TokenChange {
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
    let p = std::env::temp_dir().join(format!("pa-imp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    TempDir(p)
}

const OLD_SECRET: &str = "5f2b8c1d0e9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c";

fn item(node: &str, token: &str) -> ImportItem {
    ImportItem {
        push_type: "fcm".into(),
        node: node.into(),
        token: token.into(),
        secret: OLD_SECRET.into(),
        registered_ms: 1_000,
        renewed_ms: 2_000,
        stats: PushStats {
            last_successful_push_ms: Some(3_000),
            last_push_error_ms: None,
            last_push_error_reason: None,
        },
    }
}

#[test]
fn imported_secrets_verify_are_not_stored_and_a_second_run_changes_nothing() {
    let d = temp("idem");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let items = [item("a/b+c#d", "tok1"), item("n2", "tok2")];
    assert_eq!(
        s.import("push.x", &items).unwrap(),
        [ImportOutcome::Imported, ImportOutcome::Imported]
    );
    let r = s.lookup("push.x", "a/b+c#d").unwrap().unwrap();
    assert!(s.verify_secret(&r, OLD_SECRET));
    assert!(!s.verify_secret(&r, &OLD_SECRET.to_uppercase()));
    assert!(!s.verify_secret(&r, "wrong"));
    assert!(!s.verify_secret(&r, &s.key.secret("push.x", &r.node, &r.salt)));
    assert_eq!(
        (r.registered_ms, r.renewed_ms, r.owner.clone()),
        (1_000, 2_000, None)
    );
    assert!(!String::from_utf8_lossy(&store::encode(&r)).contains(OLD_SECRET));
    assert_eq!(s.secret_of(&r), "", "the plain secret is not known");
    assert_eq!(
        s.push_stats("push.x", "a/b+c#d")
            .unwrap()
            .last_successful_push_ms,
        Some(3_000)
    );
    assert_eq!(s.lookup_token("fcm", "tok2").unwrap()[0].node, "n2");
    assert_eq!(s.count().unwrap(), 2);
    // A second run: nothing written, the records are byte for byte the same.
    assert_eq!(
        s.import("push.x", &items).unwrap(),
        [
            ImportOutcome::AlreadyImported,
            ImportOutcome::AlreadyImported
        ]
    );
    assert_eq!(s.lookup("push.x", "a/b+c#d").unwrap().unwrap(), r);
    assert_eq!(s.count().unwrap(), 2);
    // The same node with another token (the device moved on) is kept.
    assert_eq!(
        s.import("push.x", &[item("n2", "tok-new")]).unwrap(),
        [ImportOutcome::Exists]
    );
    assert_eq!(s.lookup("push.x", "n2").unwrap().unwrap().token, "tok2");
    // Dead-token removal works on imported registrations.
    let gone = s
        .remove_dead_token("fcm", "tok2", UNIX_EPOCH + Duration::from_secs(10))
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn existing_nodes_duplicates_and_the_store_limit_are_respected() {
    let d = temp("exist");
    let s = Registrations::open(&d.0, 1 << 20)
        .unwrap()
        .with_limits(CountLimits {
            total: 3,
            ..CountLimits::default()
        });
    let made = s
        .register(
            "push.x",
            "fcm",
            "mine",
            "t0",
            OPEN,
            UNIX_EPOCH + Duration::from_secs(5),
        )
        .unwrap();
    let out = s
        .import(
            "push.x",
            &[
                item("mine", "t0"),
                item("x", "t1"),
                item("x", "t2"),
                item("y", "t3"),
                item("z", "t4"),
            ],
        )
        .unwrap();
    assert_eq!(
        out,
        [
            ImportOutcome::Exists,
            ImportOutcome::Imported,
            ImportOutcome::Exists,
            ImportOutcome::Imported,
            ImportOutcome::Limit(LimitKind::Total),
        ]
    );
    assert_eq!(s.count().unwrap(), 3);
    let mine = s.lookup("push.x", "mine").unwrap().unwrap();
    assert!(s.verify_secret(&mine, &made.secret), "untouched");
    assert!(!s.verify_secret(&mine, OLD_SECRET));
}

#[test]
fn registering_again_replaces_the_imported_secret_and_unregister_takes_the_old_one() {
    let d = temp("renew");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    s.import("push.x", &[item("n1", "t1"), item("n2", "t2")])
        .unwrap();
    let again = s
        .register(
            "push.x",
            "fcm",
            "n1",
            "t1",
            OPEN,
            UNIX_EPOCH + Duration::from_secs(9),
        )
        .unwrap();
    assert_eq!(again.registration.secret_hash, None);
    assert_eq!(again.registration.registered_ms, 1_000, "kept");
    assert_eq!(again.secret.len(), 64);
    let r = s.lookup("push.x", "n1").unwrap().unwrap();
    assert!(
        s.verify_secret(&r, &again.secret),
        "the answered secret works"
    );
    assert!(!s.verify_secret(&r, OLD_SECRET));
    assert!(matches!(
        s.unregister("push.x", "fcm", "n2", Some("wrong")),
        Err(RegError::Refused(Refusal::WrongSecret))
    ));
    let gone = s
        .unregister("push.x", "fcm", "n2", Some(OLD_SECRET))
        .unwrap()
        .unwrap();
    assert_eq!(gone.secret, OLD_SECRET);
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn a_v2_store_opens_at_the_current_version_without_rewriting_records() {
    let d = temp("v2");
    let secret = {
        let s = Registrations::open(&d.0, 1 << 20).unwrap();
        let r = s
            .register(
                "push.x",
                "fcm",
                "n",
                "t",
                OPEN,
                UNIX_EPOCH + Duration::from_secs(1),
            )
            .unwrap();
        let st = s.store().unwrap();
        let meta = st
            .db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("schema_version", "2").unwrap();
        st.db.persist(fjall::PersistMode::SyncAll).unwrap();
        r.secret
    };
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let st = s.store().unwrap();
    let meta = st
        .db
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().as_ref(),
        SCHEMA_VERSION.to_string().as_bytes()
    );
    drop(st);
    assert_eq!(s.count().unwrap(), 1);
    let r = s.lookup("push.x", "n").unwrap().unwrap();
    assert!(s.verify_secret(&r, &secret));
}
