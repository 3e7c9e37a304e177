//! The whole path with real providers: a fake XMPP server sends XEP-0357
//! publishes to the binary, which pushes to a mock APNS (HTTP/2 + TLS,
//! ES256 JWT checked) or a mock FCM (HTTP/2 + TLS, OAuth token endpoint)
//! running in this test process on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::harness::*;
use crate::support::{apple, fcm_mock};

const T: Duration = Duration::from_secs(10);
const LIVE: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const DEAD: &str = "dd00000000000000000000000000000000000000000000000000000000000002";
const DEAD_BEFORE: &str = "dd00000000000000000000000000000000000000000000000000000000000003";

fn component_config(dir: &std::path::Path, xmpp: u16, ty: &str, app: &str) -> String {
    format!(
        "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"debug\"\n[http]\nlisten = \"off\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"{ty}\"]\n[app.{ty}]\n{app}",
        dir.join("data").display()
    )
}

#[test]
fn apns_full_path_priorities_dead_tokens_and_reregistration() {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let behaviour: apple::Behaviour = Arc::new(move |r| {
        let token = r.path.trim_start_matches("/3/device/");
        if token == DEAD {
            // Dead since after the registration: the registration goes.
            Reply::status(
                410,
                &format!(
                    r#"{{"reason":"Unregistered","timestamp":{}}}"#,
                    now_ms + 60_000
                ),
            )
        } else if token == DEAD_BEFORE {
            // Dead since long before the device registered again: it stays.
            Reply::status(410, r#"{"reason":"Unregistered","timestamp":1000}"#)
        } else {
            Reply::ok()
        }
    });
    let apple = smol::block_on(Apple::token(MockOptions::default(), behaviour));
    let dir = TempDir::new("e2e-apns");
    let x = FakeXmpp::new();
    let app_cfg = format!(
        "provider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\n\
         auth_key = {:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\npush_priority = \"auto\"\n",
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
        apple.files.0.join("AuthKey.p8").display().to_string(),
    );
    let _app = AppServer::start(
        &dir.0,
        &component_config(&dir.0, x.port, "apns", &app_cfg),
        0,
    );
    let mut c = x.accept(T);

    let s = register(&mut c, "apns", "live", LIVE);
    let r = c.iq(&publish_iq("p1", &s.node, &s.secret, Some("Hello")));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");
    let r = c.iq(&publish_iq("p2", &s.node, &s.secret, None));
    assert_eq!(outcome(&r).0, "result");
    let seen = apple.server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, format!("/3/device/{LIVE}"));
    assert_eq!(seen[0].header("apns-push-type"), Some("alert"));
    assert_eq!(seen[0].header("apns-priority"), Some("10"));
    assert_eq!(seen[0].header("apns-topic"), Some(TOPIC));
    assert_eq!(seen[1].header("apns-push-type"), Some("background"));
    assert_eq!(seen[1].header("apns-priority"), Some("5"));
    let exp: u64 = seen[0].header("apns-expiration").unwrap().parse().unwrap();
    assert!(
        exp > now_ms / 1000 + 3600,
        "expiration in the future: {exp}"
    );

    // Dead token: item-not-found, registration removed, nothing more sent.
    let s = register(&mut c, "apns", "dead", DEAD);
    let r = c.iq(&publish_iq("p3", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("p4", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(
        apple.server.seen().len(),
        3,
        "the second push never reached Apple"
    );

    // Re-registered after Apple's timestamp: kept, answered with a wait error.
    let s = register(&mut c, "apns", "again", DEAD_BEFORE);
    let r = c.iq(&publish_iq("p5", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let r = c.iq(&publish_iq("p6", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    assert_eq!(apple.server.seen().len(), 5, "the registration survived");
    assert_eq!(apple.jwt_count(), 1, "one JWT for every push");
    assert_eq!(
        apple.server.stats.connections(),
        1,
        "one long-lived connection"
    );
}

#[test]
fn fcm_full_path_and_dead_token() {
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    let dir = TempDir::new("e2e-fcm");
    let x = FakeXmpp::new();
    let app_cfg = format!("provider = \"fcm\"\n{}push_ttl = 3600\n", google.config());
    let _app = AppServer::start(
        &dir.0,
        &component_config(&dir.0, x.port, "fcm", &app_cfg),
        0,
    );
    let mut c = x.accept(T);
    let s = register(&mut c, "fcm", "phone", "fcm-token-1");
    for i in 0..3 {
        let r = c.iq(&publish_iq(
            &format!("p{i}"),
            &s.node,
            &s.secret,
            Some("hi"),
        ));
        assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");
    }
    let seen = google.fcm.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(google.tokens.requests(), 1, "the access token is reused");
    let msg = &seen[0].body;
    assert_eq!(msg["message"]["token"], "fcm-token-1");
    assert_eq!(msg["message"]["android"]["priority"], "HIGH");
    assert_eq!(msg["message"]["android"]["ttl"], "3600s");

    google.fcm.script([fcm_mock::Answer::error(
        404,
        "NOT_FOUND",
        Some("UNREGISTERED"),
    )]);
    let r = c.iq(&publish_iq("d1", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("d2", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(google.fcm.seen().len(), 4);
}

/// A wrong environment (a production token sent to the sandbox) makes
/// Apple answer 400 BadDeviceToken for every token: before the app profile
/// has delivered anything, that deletes nothing.
#[test]
fn apns_bad_device_token_before_any_delivery_deletes_nothing() {
    let misconfigured = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let m = Arc::clone(&misconfigured);
    let behaviour: apple::Behaviour = Arc::new(move |r| {
        let token = r.path.trim_start_matches("/3/device/");
        if m.load(std::sync::atomic::Ordering::SeqCst) || token == DEAD {
            Reply::status(400, r#"{"reason":"BadDeviceToken"}"#)
        } else {
            Reply::ok()
        }
    });
    let apple = smol::block_on(Apple::token(MockOptions::default(), behaviour));
    let dir = TempDir::new("e2e-apns-env");
    let x = FakeXmpp::new();
    let app_cfg = format!(
        "provider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\n\
         auth_key = {:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
        apple.files.0.join("AuthKey.p8").display().to_string(),
    );
    let app = AppServer::start(
        &dir.0,
        &component_config(&dir.0, x.port, "apns", &app_cfg),
        0,
    );
    let mut c = x.accept(T);
    let live = register(&mut c, "apns", "live", LIVE);
    let dead = register(&mut c, "apns", "dead", DEAD);

    // Misconfigured: a wait error, the registrations stay, logged loudly.
    for id in ["m1", "m2"] {
        let r = c.iq(&publish_iq(id, &live.node, &live.secret, None));
        assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    }
    let r = c.iq(&publish_iq("m3", &dead.node, &dead.secret, None));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let err = app.stderr();
    let alarms: Vec<_> = err
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("[app.apns]"))
        .collect();
    assert_eq!(alarms.len(), 1, "logged once: {err}");
    assert!(alarms[0].contains("sandbox"), "{}", alarms[0]);

    // Fixed: the same registration delivers.
    misconfigured.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = c.iq(&publish_iq("ok1", &live.node, &live.secret, None));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");

    // Proven: BadDeviceToken now means a dead token, and the registration goes.
    let r = c.iq(&publish_iq("d1", &dead.node, &dead.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("d2", &dead.node, &dead.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(apple.server.seen().len(), 5, "d2 never reached Apple");
}

/// A wrong Firebase project makes FCM answer SENDER_ID_MISMATCH for every
/// token: before the app profile has delivered anything, that deletes
/// nothing.
#[test]
fn fcm_sender_id_mismatch_before_any_delivery_deletes_nothing() {
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    let dir = TempDir::new("e2e-fcm-project");
    let x = FakeXmpp::new();
    let app_cfg = format!("provider = \"fcm\"\n{}", google.config());
    let app = AppServer::start(
        &dir.0,
        &component_config(&dir.0, x.port, "fcm", &app_cfg),
        0,
    );
    let mut c = x.accept(T);
    let s = register(&mut c, "fcm", "phone", "fcm-token-1");
    let mismatch = fcm_mock::Answer::error(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"));

    google.fcm.script([mismatch.clone()]);
    let r = c.iq(&publish_iq("m1", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let err = app.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("ERROR") && l.contains("[app.fcm]") && l.contains("project_id")),
        "{err}"
    );
    let r = c.iq(&publish_iq("ok1", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");

    google.fcm.script([mismatch]);
    let r = c.iq(&publish_iq("d1", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("d2", &s.node, &s.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(google.fcm.seen().len(), 3);
}
