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

#[test]
fn a_slow_store_read_holds_only_its_own_push() {
    // A push to a device whose record is not cached reads the store on
    // the reader thread: a slow disk (here a read made to take 2 s, a
    // debug-build hook) holds that push, not the executor with every
    // other push and link. Run against this build only.
    if !own_debug_build("only this debug build can slow a store read") {
        return;
    }
    let dir = TempDir::new("record-cache-slow-read");
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let cfg = config(&dir.0, xmpp.port, http_port, "rate_limit = 0", "");
    let mut first = AppServer::start(&dir.0, &cfg, http_port);
    let mut c = xmpp.accept(T);
    let cold = register(&mut c, "fcm", "cold", "tok-cold");
    let warm = register(&mut c, "fcm", "warm", "tok-warm");
    first.kill();
    drop(c);

    // A fresh start: nothing cached. The warm device's first push caches it.
    let app = AppServer::start_env(
        &dir.0,
        &cfg,
        http_port,
        &[],
        &[("PA_TEST_SLOW_STORE_READ", cold.node.as_str())],
    );
    let mut c = xmpp.accept(T);
    assert_eq!(publish(&mut c, "w1", &warm).0, "result");
    c.send(&publish_iq("slow", &cold.node, &cold.secret, None));
    c.send(&publish_iq("w2", &warm.node, &warm.secret, None));
    let mut order = Vec::new();
    for _ in 0..2 {
        let reply = c.recv(T).expect("a reply");
        assert_eq!(outcome(&reply).0, "result", "{reply:?}");
        order.push(reply.get_attr("id").unwrap().to_owned());
    }
    assert_eq!(
        order,
        ["w2", "slow"],
        "the cached push waited for the slow read"
    );
    assert_eq!(app.wait_pushes(3, T).len(), 3);
}
