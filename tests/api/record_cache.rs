//! Pushes read registrations through an in-memory cache (issue 9): every
//! change to a registration made after a push must reach the next push.
//! Each step pushes first, so the record is cached, then changes it.

use std::time::Duration;

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

/// Publishes to `reg` and returns the reply's (type, condition).
fn publish(c: &mut Conn, id: &str, reg: &Reg) -> (String, String) {
    outcome(&c.iq(&publish_iq(id, &reg.node, &reg.secret, None)))
}

fn last_token(app: &AppServer, n: usize) -> String {
    let pushes = app.wait_pushes(n, T);
    assert_eq!(pushes.len(), n, "{}", app.stderr());
    pushes[n - 1]["token"].as_str().unwrap().to_owned()
}

fn check(cache: Option<usize>) {
    let dir = TempDir::new("record-cache");
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let top = match cache {
        Some(n) => format!("rate_limit = 0\n[store]\nrecord_cache = {n}"),
        None => "rate_limit = 0".to_owned(),
    };
    let app = AppServer::start(
        &dir.0,
        &config(
            &dir.0,
            xmpp.port,
            http_port,
            &top,
            "dead_token_prefix = \"dead-\"",
        ),
        http_port,
    );
    let mut c = xmpp.accept(T);

    // A new token (same node) is used at once, and the new secret works.
    let first = register(&mut c, "fcm", "phone", "tok-1");
    assert_eq!(publish(&mut c, "p1", &first).0, "result");
    assert_eq!(last_token(&app, 1), "tok-1");
    let second = register(&mut c, "fcm", "phone", "tok-2");
    assert_eq!(second.node, first.node);
    assert_eq!(publish(&mut c, "p2", &second).0, "result");
    assert_eq!(last_token(&app, 2), "tok-2");

    // Unregistered over XMPP: unknown at once.
    let reply = c.iq(&unregister_iq("u1", "user@example.com/res", "fcm", "phone"));
    assert_eq!(outcome(&reply).0, "result");
    assert_eq!(
        publish(&mut c, "p3", &second),
        ("cancel".into(), "item-not-found".into())
    );

    // Removed for a dead token: the next push finds nothing either.
    let dead = register(&mut c, "fcm", "tablet", "dead-1");
    assert_ne!(publish(&mut c, "p4", &dead).0, "result");
    assert_eq!(
        publish(&mut c, "p5", &dead),
        ("cancel".into(), "item-not-found".into())
    );

    // Registered again after that: found again, with the new token.
    let back = register(&mut c, "fcm", "tablet", "tok-3");
    assert_eq!(publish(&mut c, "p6", &back).0, "result");
    assert_eq!(last_token(&app, 3), "tok-3");
}

#[test]
fn every_registration_change_reaches_the_next_push() {
    check(None);
}

#[test]
fn the_same_with_the_cache_turned_off() {
    check(Some(0));
}
