//! Registrations belong to their owner, through the binary and a fake
//! XMPP server: a device id registered by another JID is another
//! registration; nobody but the owner can read, change, remove or push to
//! it; per-JID counts and command rates are bounded.

use std::time::Duration;

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);
const VICTIM: &str = "victim@example.com/phone";
const ATTACKER: &str = "attacker@evil.example/bot";

fn start(name: &str, extra_top: &str) -> (TempDir, FakeXmpp, AppServer, Conn) {
    let dir = TempDir::new(name);
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let app = AppServer::start(
        &dir.0,
        &config(&dir.0, xmpp.port, http_port, extra_top, ""),
        http_port,
    );
    let conn = xmpp.accept(T);
    (dir, xmpp, app, conn)
}

/// A publish to `node` with `secret`, sent by `from`.
fn publish_from(c: &mut Conn, from: &str, node: &str, secret: &str) -> (String, String) {
    let iq = publish_iq(&format!("p{}", fastrand::u32(..)), node, secret, None)
        .replace("from='user@example.com'", &format!("from='{from}'"));
    outcome(&c.iq(&iq))
}

fn unregister_from(c: &mut Conn, from: &str, node: &str) -> (String, String) {
    outcome(&c.iq(&unregister_iq(
        &format!("u{}", fastrand::u32(..)),
        from,
        "fcm",
        node,
    )))
}

fn not_found() -> (String, String) {
    ("cancel".into(), "item-not-found".into())
}

fn ok() -> (String, String) {
    ("result".into(), String::new())
}

#[test]
fn another_jid_can_neither_take_over_nor_remove_nor_push() {
    let (_d, _x, app, mut c) = start("own-hijack", "rate_limit = 0");
    let victim = register_as(&mut c, VICTIM, "fcm", "phone-1", "victim-token").unwrap();

    // The attacker names the victim's device id or node: nothing to remove.
    assert_eq!(unregister_from(&mut c, ATTACKER, "phone-1"), not_found());
    assert_eq!(unregister_from(&mut c, ATTACKER, &victim.node), not_found());

    // Registering the same device id gives the attacker its own
    // registration: another node, another secret.
    let attacker = register_as(&mut c, ATTACKER, "fcm", "phone-1", "evil-token").unwrap();
    assert_ne!(attacker.node, victim.node);
    assert_ne!(attacker.secret, victim.secret);
    assert_eq!(unregister_from(&mut c, ATTACKER, &victim.node), not_found());

    // The victim's node and secret are useless from another domain ...
    for from in [
        "evil.example",
        "attacker@evil.example",
        "victim@evil.example",
    ] {
        assert_eq!(
            publish_from(&mut c, from, &victim.node, &victim.secret),
            not_found(),
            "{from}"
        );
    }
    assert!(app.pushes().is_empty(), "{:?}", app.pushes());
    // ... and work from the victim's server (domain or bare JID), pushing
    // to the victim's token.
    assert_eq!(
        publish_from(&mut c, "example.com", &victim.node, &victim.secret),
        ok()
    );
    assert_eq!(
        publish_from(&mut c, "victim@example.com", &victim.node, &victim.secret),
        ok()
    );
    let pushes = app.wait_pushes(2, T);
    assert_eq!(pushes.len(), 2);
    for p in &pushes {
        assert_eq!(p["token"], "victim-token");
        assert_eq!(p["node"], victim.node.as_str());
    }
    // The attacker's own registration answers its own domain only.
    assert_eq!(
        publish_from(&mut c, "evil.example", &attacker.node, &attacker.secret),
        ok()
    );
    assert_eq!(app.wait_pushes(3, T)[2]["token"], "evil-token");

    // Unregistering the device id removes the attacker's own registration,
    // never the victim's.
    assert_eq!(unregister_from(&mut c, ATTACKER, "phone-1"), ok());
    assert_eq!(
        publish_from(&mut c, "evil.example", &attacker.node, &attacker.secret),
        not_found()
    );
    assert_eq!(
        publish_from(&mut c, "example.com", &victim.node, &victim.secret),
        ok()
    );
    // The owner removes it by device id (any resource, any case).
    assert_eq!(
        unregister_from(&mut c, "Victim@Example.com/laptop", "phone-1"),
        ok()
    );
    assert_eq!(
        publish_from(&mut c, "example.com", &victim.node, &victim.secret),
        not_found()
    );
}

#[test]
fn the_same_jid_renews_with_the_same_node_and_secret_and_a_new_token() {
    let (_d, _x, app, mut c) = start("own-renew", "rate_limit = 0");
    let first = register_as(&mut c, VICTIM, "fcm", "dev", "token-1").unwrap();
    let again = register_as(&mut c, "victim@example.com/other", "fcm", "dev", "token-2").unwrap();
    assert_eq!(again, first);
    assert_eq!(
        publish_from(&mut c, "example.com", &first.node, &first.secret),
        ok()
    );
    assert_eq!(app.wait_pushes(1, T)[0]["token"], "token-2");
    // The same phone with a second account is a second registration.
    let second = register_as(&mut c, "other@example.com/x", "fcm", "dev", "token-2").unwrap();
    assert_ne!(second.node, first.node);
    assert_ne!(second.secret, first.secret);
}

#[test]
fn count_per_jid_is_limited_and_nothing_is_stored_past_it() {
    let (_d, _x, _app, mut c) = start(
        "own-count",
        "rate_limit = 0\n[registrations]\nmax_per_jid = 2\nmax_per_domain = 3",
    );
    register_as(&mut c, VICTIM, "fcm", "d1", "t1").unwrap();
    let d2 = register_as(&mut c, VICTIM, "fcm", "d2", "t2").unwrap();
    let refused = ("cancel".to_owned(), "not-allowed".to_owned());
    assert_eq!(
        register_as(&mut c, VICTIM, "fcm", "d3", "t3"),
        Err(refused.clone())
    );
    // Nothing was stored for d3: its node is unknown.
    let d3 = node_of("victim@example.com", "d3");
    assert_eq!(
        publish_from(&mut c, "example.com", &d3, &d2.secret),
        not_found()
    );
    // Renewing an existing registration does not count.
    assert_eq!(register_as(&mut c, VICTIM, "fcm", "d2", "t2b").unwrap(), d2);
    // The domain's limit: a third JID of example.com gets one more, then no.
    register_as(&mut c, "b@example.com", "fcm", "d1", "t").unwrap();
    assert_eq!(
        register_as(&mut c, "c@example.com", "fcm", "d1", "t"),
        Err(refused)
    );
    // Other domains are not affected; freeing a slot lets the JID register.
    register_as(&mut c, "c@example.net", "fcm", "d1", "t").unwrap();
    assert_eq!(unregister_from(&mut c, VICTIM, "d1"), ok());
    register_as(&mut c, VICTIM, "fcm", "d3", "t3").unwrap();
}

#[test]
fn command_rate_per_jid_answers_resource_constraint() {
    let (_d, _x, _app, mut c) = start(
        "own-rate",
        "[registrations]\ncommands_per_minute_per_jid = 3\ncommands_per_minute_per_domain = 5",
    );
    for i in 0..3 {
        register_as(&mut c, VICTIM, "fcm", &format!("d{i}"), "t").unwrap();
    }
    let wait = ("wait".to_owned(), "resource-constraint".to_owned());
    assert_eq!(
        register_as(&mut c, VICTIM, "fcm", "d9", "t"),
        Err(wait.clone())
    );
    assert_eq!(unregister_from(&mut c, VICTIM, "d0"), wait);
    // Another JID of the domain still has the domain's remaining two.
    register_as(&mut c, "b@example.com", "fcm", "d1", "t").unwrap();
    register_as(&mut c, "b@example.com", "fcm", "d2", "t").unwrap();
    assert_eq!(
        register_as(&mut c, "c@example.com", "fcm", "d1", "t"),
        Err(wait)
    );
    // Another domain is not affected.
    register_as(&mut c, "a@example.net", "fcm", "d1", "t").unwrap();
}

#[test]
fn subdomains_share_their_registrable_domains_limits() {
    let (_d, _x, _app, mut c) = start(
        "own-subdomains",
        "rate_limit = 0\n[registrations]\nmax_per_domain = 3\n\
         commands_per_minute_per_domain = 5",
    );
    // Subdomains made at will (a wildcard DNS entry is enough to federate
    // each) share evil.example's count of registrations ...
    for i in 0..3 {
        register_as(&mut c, &format!("u@s{i}.evil.example"), "fcm", "d", "t").unwrap();
    }
    let refused = ("cancel".to_owned(), "not-allowed".to_owned());
    assert_eq!(
        register_as(&mut c, "u@s3.evil.example", "fcm", "d", "t"),
        Err(refused)
    );
    println!("registrations from 4 subdomains of evil.example with max_per_domain = 3: 3 stored");
    // ... and its rate of commands (five a minute, four spent above).
    register_as(&mut c, "u@evil.example", "fcm", "d", "t").unwrap_err();
    assert_eq!(
        register_as(&mut c, "u@s5.evil.example", "fcm", "d", "t"),
        Err(("wait".to_owned(), "resource-constraint".to_owned()))
    );
    // Under a public suffix each name is its own: the registrable domain.
    register_as(&mut c, "u@example.co.uk", "fcm", "d", "t").unwrap();
    register_as(&mut c, "u@other.co.uk", "fcm", "d", "t").unwrap();
}
