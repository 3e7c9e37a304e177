use super::*;
use std::time::{Duration, UNIX_EPOCH};

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
fn register_renew_keeps_secret_and_moves_the_index() {
    let d = temp("renew");
    let s = Registrations::open(&d.0, 1 << 20).unwrap();
    let a = s.register("push.x", "apns", "n1", "tokA", at(100)).unwrap();
    let b = s.register("push.x", "apns", "n1", "tokB", at(200)).unwrap();
    assert_eq!(a.secret, b.secret);
    assert_eq!(b.registration.registered_ms, 100_000);
    assert_eq!(b.registration.renewed_ms, 200_000);
    assert!(s.lookup_token("apns", "tokA").unwrap().is_empty());
    assert_eq!(s.lookup_token("apns", "tokB").unwrap()[0].node, "n1");
    assert!(s.verify_secret(&b.registration, &a.secret));
    assert!(!s.verify_secret(&b.registration, &"0".repeat(64)));
}

#[test]
fn secret_is_not_in_the_store_files() {
    let d = temp("nosecret");
    let secret = {
        let s = Registrations::open(&d.0, 1 << 20).unwrap();
        let r = s.register("push.x", "fcm", "n1", "tok", at(1)).unwrap();
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
    s.register("push.x", "apns", "old", "tok", at(100)).unwrap();
    s.register("push.x", "apns", "new", "tok", at(300)).unwrap();
    s.register("push.x", "fcm", "other", "tok", at(100))
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
        s.register("push.x", "apns", "n1", "t1", at(1)).unwrap();
        s.register("push.x", "apns", "n2", "t2", at(1)).unwrap();
        assert!(s.unregister("push.x", "fcm", "n1").unwrap().is_none());
        assert!(s.unregister("push.x", "apns", "n1").unwrap().is_some());
        s.record_push("push.x", "n2", at(5), Some("boom")).unwrap();
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
    let a = s.register("push.x", "fcm", "n1", "tok", at(1)).unwrap();
    s.reopen().unwrap();
    let r = s.lookup("push.x", "n1").unwrap().unwrap();
    assert!(s.verify_secret(&r, &a.secret));
    s.register("push.x", "fcm", "n2", "tok2", at(2)).unwrap();
    assert_eq!(s.nodes("push.x", 10).unwrap(), ["n1", "n2"]);
}
