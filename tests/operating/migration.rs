//! A store written by schema version 1 (before registrations had owners)
//! is migrated when the binary starts, and every node and secret clients
//! hold keeps pushing.

use std::path::Path;
use std::time::Duration;

use crate::support::harness::*;
use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use ring::hmac;

const T: Duration = Duration::from_secs(10);

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `data` as version 1 did: `server.key` (32 bytes), keyspaces
/// `meta` (schema_version "1"), `registrations` (JSON records without an
/// owner) and `token_index`. Returns (node, token, secret) per device,
/// the secret computed as version 1 did:
/// hex(HMAC-SHA256(key, "v1\0" component \0 node \0 salt \0)).
fn write_v1_store(data: &Path, devices: &[(&str, &str)]) -> Vec<(String, String, String)> {
    std::fs::create_dir_all(data).unwrap();
    let key_bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 1);
    std::fs::write(data.join("server.key"), key_bytes).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    let db = Database::builder(data.join("store")).open().unwrap();
    let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
    let regs = db
        .keyspace("registrations", KeyspaceCreateOptions::default)
        .unwrap();
    let tokens = db
        .keyspace("token_index", KeyspaceCreateOptions::default)
        .unwrap();
    meta.insert("schema_version", "1").unwrap();
    let component = "push.example.org";
    let mut out = Vec::new();
    for (i, (node, token)) in devices.iter().enumerate() {
        let salt = format!("{:064x}", i + 1);
        let record = serde_json::json!({
            "v": 1, "component": component, "type": "fcm", "node": node,
            "token": token, "registered_ms": 1_000, "renewed_ms": 1_000, "salt": salt,
        });
        regs.insert(
            format!("{component}\0{node}"),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        tokens
            .insert(format!("fcm\0{token}\0{component}\0{node}"), "")
            .unwrap();
        let msg = format!("v1\0{component}\0{node}\0{salt}\0");
        let secret = hex(hmac::sign(&key, msg.as_bytes()).as_ref());
        out.push((node.to_string(), token.to_string(), secret));
    }
    db.persist(PersistMode::SyncAll).unwrap();
    out
}

#[test]
fn v1_registrations_keep_their_secrets_after_the_upgrade() {
    let dir = TempDir::new("migrate");
    let old = write_v1_store(
        &dir.0.join("data"),
        &[("yaxim-dev-1", "tok-1"), ("http node 2", "tok-2")],
    );
    let x = FakeXmpp::new();
    let port = free_port();
    let cfg = config(&dir.0, x.port, port, "rate_limit = 0", "");
    for round in 0..2 {
        // Twice: the second start finds the store migrated already.
        let app = AppServer::start(&dir.0, &cfg, port);
        let mut c = x.accept(T);
        for (node, _, secret) in &old {
            // Old registrations have no owner: any server may push, as before.
            let iq = publish_iq(&format!("p-{round}"), node, secret, None)
                .replace("user@example.com", "anyone.example");
            assert_eq!(outcome(&c.iq(&iq)), ("result".into(), String::new()));
            let r = c.iq(&publish_iq("bad", node, &"0".repeat(64), None));
            assert_eq!(outcome(&r), ("auth".into(), "forbidden".into()));
        }
        let pushes = app.wait_pushes(2, T);
        assert_eq!(pushes.len(), 2, "{pushes:?}");
        assert_eq!(pushes[0]["token"], "tok-1");
        assert_eq!(pushes[1]["token"], "tok-2");
        // The old HTTP secret still unregisters over HTTP after the upgrade.
        if round == 1 {
            let (node, _, secret) = &old[1];
            let (s, b) = app.http(
                "POST",
                "/push_appserver/v1/unregister",
                &format!("type=fcm&node={}&secret={secret}", node.replace(' ', "+")),
            );
            assert_eq!(s, 200, "{b}");
        }
        // New registrations work next to the old ones.
        let new = register(&mut c, "fcm", "new-dev", "tok-3");
        assert_eq!(
            outcome(&c.iq(&publish_iq("p-new", &new.node, &new.secret, None))).0,
            "result"
        );
        let stderr = app.stderr();
        assert_eq!(
            stderr.contains("schema version 4: 2 registration(s), 0 owner domain(s) counted, 2 record(s) rewritten"),
            round == 0,
            "{stderr}"
        );
        drop(app);
        std::fs::remove_file(dir.0.join("pushes.jsonl")).unwrap();
    }
}
