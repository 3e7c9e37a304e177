//! The store opens after the listeners (issue 20): a restart answers
//! `/health` and links its components at once, while the store replays
//! its journal on a thread of its own; pushes and registrations that
//! arrive meanwhile wait for it and are then served, and a store that
//! cannot open still ends the server with its error.
//!
//! The debug build holds the background open until a file exists
//! (`PA_TEST_HOLD_STORE_OPEN`), so the window is not left to timing.

use std::time::Duration;

use crate::support::harness::*;

const HOLD: &str = "PA_TEST_HOLD_STORE_OPEN";
const JSON: &[(&str, &str)] = &[("Accept", "application/json")];

/// Only a debug build of the server has the hold: these tests need this
/// build's, unoptimized.
fn own_build() -> bool {
    own_debug_build("only this debug build holds the store's open")
}

/// A server that registered one device and was killed: its temp dir, the
/// fake XMPP server, the HTTP port, the config and the registration.
fn registered_then_killed(name: &str) -> (TempDir, FakeXmpp, u16, String, Reg) {
    let dir = TempDir::new(name);
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let cfg = config(&dir.0, xmpp.port, http_port, "", "");
    let mut first = AppServer::start(&dir.0, &cfg, http_port);
    let mut conn = xmpp.accept(Duration::from_secs(10));
    let reg = register(&mut conn, "fcm", "phone", "tok-phone");
    first.kill();
    (dir, xmpp, http_port, cfg, reg)
}

/// Starts the server on `dir`'s store with its open held until `release`
/// exists, and accepts its component link.
fn start_held(
    dir: &TempDir,
    xmpp: &FakeXmpp,
    cfg: &str,
    http_port: u16,
    release: &std::path::Path,
) -> (AppServer, Conn) {
    let release = release.to_str().unwrap();
    let app = AppServer::start_env(&dir.0, cfg, http_port, &[], &[(HOLD, release)]);
    let conn = xmpp.accept(Duration::from_secs(10));
    (app, conn)
}

/// Waits for the server to exit by itself within `limit`.
fn exit_within(app: &mut AppServer, limit: Duration, what: &str) -> std::process::ExitStatus {
    app.wait_exit(limit)
        .unwrap_or_else(|| panic!("{what}: {}", app.stderr()))
}

#[test]
fn a_restart_serves_health_and_links_while_the_store_opens_and_pushes_wait_for_it() {
    if !own_build() {
        return;
    }
    let (dir, xmpp, http_port, cfg, reg) = registered_then_killed("store-open");
    let release = dir.0.join("release-the-store");
    let (mut app, mut conn) = start_held(&dir, &xmpp, &cfg, http_port, &release);

    // Linked and answering, with the store still held shut. The link
    // counts as up once the server has read the handshake's answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, doc) = loop {
        let (status, doc) = health_json(http_port, JSON);
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, doc);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["status"], "starting", "{doc}");
    assert_eq!(doc["store"]["open"], false, "{doc}");
    assert!(
        doc["problems"].to_string().contains("still opening"),
        "{doc}"
    );

    // A scrape now is not told 0 registrations: it goes without the gauge.
    let (status, metrics) = app.http("GET", "/metrics", "");
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("push_appserver_component_up"), "{metrics}");
    assert!(
        !metrics.contains("push_appserver_registrations "),
        "{metrics}"
    );

    // A push and a registration arriving now wait instead of failing.
    conn.send(&publish_iq(
        "early-push",
        &reg.node,
        &reg.secret,
        Some("hi"),
    ));
    conn.send(&register_iq("early-reg", "fcm", "tablet", "tok-tablet"));
    assert!(
        conn.recv(Duration::from_millis(500)).is_none(),
        "nothing is answered before the store is open"
    );

    std::fs::write(&release, b"").unwrap();
    let mut answered = Vec::new();
    for _ in 0..2 {
        let reply = conn
            .recv(Duration::from_secs(10))
            .expect("an answer once open");
        assert_eq!(outcome(&reply).0, "result", "{reply:?}");
        answered.push(reply.get_attr("id").unwrap().to_owned());
    }
    answered.sort();
    assert_eq!(answered, ["early-push", "early-reg"]);
    let pushes = app.wait_pushes(1, Duration::from_secs(10));
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["token"], "tok-phone", "{pushes:?}");

    let (status, doc) = health_json(http_port, JSON);
    assert_eq!((status, &doc["status"]), (200, &"ok".into()), "{doc}");
    assert_eq!(doc["store"]["open"], true, "{doc}");
    assert_eq!(doc["registrations"], 2, "{doc}");
    let (_, metrics) = app.http("GET", "/metrics", "");
    assert!(
        metrics.contains("push_appserver_registrations 2"),
        "{metrics}"
    );
    assert!(
        app.stderr()
            .contains("replayed into memory; /health and the links answered meanwhile"),
        "the start says why the store took its time: {}",
        app.stderr()
    );
    app.kill();
}

#[test]
fn a_store_that_fails_to_open_after_the_listeners_still_ends_the_server() {
    if !own_build() {
        return;
    }
    let (dir, xmpp, http_port, cfg, _) = registered_then_killed("store-open-fails");
    // Another valid key: the store was used with the first one.
    std::fs::write(dir.0.join("data/server.key"), [0xab; 32]).unwrap();

    let release = dir.0.join("release-the-store");
    let (mut app, _conn) = start_held(&dir, &xmpp, &cfg, http_port, &release);
    assert_eq!(health_json(http_port, JSON).1["store"]["open"], false);
    std::fs::write(&release, b"").unwrap();
    let status = exit_within(
        &mut app,
        Duration::from_secs(15),
        "the server went on without its store",
    );
    assert_eq!(status.code(), Some(1), "{}", app.stderr());
    assert!(
        app.stderr()
            .contains("is not the key this store was used with"),
        "{}",
        app.stderr()
    );
}

#[test]
fn a_stop_while_the_store_is_still_opening_is_bounded() {
    // A stalled disk (here the hold, which lasts up to a minute) must not
    // keep SIGTERM from ending the server: the stop waits at most 10 s for
    // the open, then exits without a sync (nothing was written yet).
    if !own_build() {
        return;
    }
    let (dir, xmpp, http_port, cfg, _) = registered_then_killed("store-open-stop");
    let never = dir.0.join("never-released");
    let (mut app, _conn) = start_held(&dir, &xmpp, &cfg, http_port, &never);
    assert_eq!(health_json(http_port, JSON).1["store"]["open"], false);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status();
    let status = exit_within(
        &mut app,
        Duration::from_secs(40),
        "SIGTERM did not end a server whose store was opening",
    );
    assert!(status.success(), "{status:?}: {}", app.stderr());
    assert!(
        app.stderr().contains("still opening 10 s after the stop"),
        "{}",
        app.stderr()
    );
}
