//! The component link against a fake XMPP server on loopback, as an attacker
//! or a flaky server would treat it: oversized and deep stanzas, iqs in the
//! client namespace, reply bursts, server restarts, a half-open link, and
//! SIGTERM with pushes in flight.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::harness::*;
use push_appserver::xml::Frame;

const T: Duration = Duration::from_secs(10);

fn ping(c: &mut Conn, id: &str) {
    let r = c.iq(&format!(
        "<iq type='get' from='a@example.com/r' to='push.example.org' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    assert_eq!(outcome(&r).0, "result", "{r:?}");
}

/// The app server has not opened another connection.
fn no_reconnect(x: &FakeXmpp) {
    x.listener.set_nonblocking(true).unwrap();
    assert!(
        matches!(x.listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the app server reconnected"
    );
}

/// Sends an iq and returns its reply, skipping anything else.
fn error_reply(c: &mut Conn, xml: &str, id: &str) -> (String, String) {
    c.send(xml);
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if let Some(r) = c.recv(Duration::from_millis(200)) {
            if r.get_attr("id") == Some(id) {
                return outcome(&r);
            }
        }
    }
    panic!("no reply to {id}");
}

/// `n` distinct attribute names of at most three letters.
fn short_names(n: u32) -> impl Iterator<Item = String> {
    const L: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let l = L.len() as u32;
    (0..n).map(move |i| {
        let mut name = vec![L[(i % l) as usize]];
        if i >= l {
            name.push(L[(i / l % l) as usize]);
        }
        if i >= l * l {
            name.push(L[(i / (l * l)) as usize]);
        }
        String::from_utf8(name).unwrap()
    })
}

#[test]
fn tens_of_thousands_of_attributes_are_skipped_and_the_link_stays_responsive() {
    let (_d, x, _app, mut c) = start_linked("attrs", "", "");
    // The attack of issue 17: 37,000 short distinct attributes, just under
    // the 256 KiB stanza limit. Each was checked against all before it,
    // and the executor stalled for seconds.
    let attrs: String = short_names(37_000).map(|n| format!(" {n}=''")).collect();
    let ping_to = |id: &str, extra: &str| {
        format!(
            "<iq type='get' from='a@example.com/r' to='push.example.org' id='{id}'>\
             <ping xmlns='urn:xmpp:ping'{extra}/></iq>"
        )
    };
    let attack = ping_to("big", &attrs);
    assert!(attack.len() < 262_144, "{} bytes", attack.len());
    let started = Instant::now();
    assert_eq!(
        error_reply(&mut c, &attack, "big"),
        ("modify".into(), "policy-violation".into())
    );
    let r = c.iq(&ping_to("after", ""));
    assert_eq!(outcome(&r).0, "result", "{r:?}");
    println!(
        "attack and the ping after it answered in {:?}",
        started.elapsed()
    );
    // Over the limit on the stanza element itself: no head to answer
    // from, so it is dropped; the stream goes on.
    c.send(&format!(
        "<message from='mallory@evil.example/x' to='push.example.org'{attrs}/>"
    ));
    ping(&mut c, "after-message");
    no_reconnect(&x);
}

#[test]
fn oversized_and_deep_stanzas_are_skipped_and_the_link_stays_up() {
    let (_d, x, app, mut c) = start_linked("skip", "", "");
    // A 300 KB message (Prosody forwards up to 256 KiB, so over our 256 KiB default).
    c.send(&format!(
        "<message from='mallory@evil.example/x' to='push.example.org'><body>{}</body></message>",
        "x".repeat(300_000)
    ));
    ping(&mut c, "p1");
    no_reconnect(&x);

    // An iq set with a 300 KB payload: policy-violation with its id.
    let big = format!(
        "<iq type='set' from='mallory@evil.example/x' to='push.example.org' id='big1'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>{}</publish></pubsub></iq>",
        "<item/>".repeat(300_000 / 7)
    );
    assert_eq!(
        error_reply(&mut c, &big, "big1"),
        ("modify".into(), "policy-violation".into())
    );
    ping(&mut c, "p2");

    // 40 nested elements in an iq get: the same.
    let deep = format!(
        "<iq type='get' from='mallory@evil.example/x' to='push.example.org' id='deep1'>{}{}</iq>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert_eq!(
        error_reply(&mut c, &deep, "deep1"),
        ("modify".into(), "policy-violation".into())
    );
    ping(&mut c, "p3");

    // A flood of them: logged at warn level at most once a second (the
    // rest at debug), so it does not become a flood of warnings; the
    // claimed sender is cut to 48 bytes (found by the attacker review of
    // issue 17: a resource of combining marks made each line 2.8 times
    // the stanza).
    let long_from = format!("mallory@evil.example/{}", "\u{300}".repeat(500));
    let started = Instant::now();
    for i in 0..200 {
        c.send(&format!(
            "<message from='{long_from}' to='push.example.org' id='f{i}'>{}{}</message>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        ));
    }
    ping(&mut c, "p4");
    let seconds = started.elapsed().as_secs() as usize;
    no_reconnect(&x);

    let log = app.stderr();
    let logged = |what: &str| {
        log.lines()
            .any(|l| l.contains(what) && l.contains("mallory@evil.example/x"))
    };
    assert!(logged("-byte <message>"), "{log}");
    assert!(logged("-byte <iq>"), "{log}");
    assert!(logged("nested too deeply"), "{log}");
    let flood: Vec<&str> = log.lines().filter(|l| l.contains("\\u{300}")).collect();
    assert_eq!(flood.len(), 200, "each skip is logged (at debug)");
    let warnings = flood.iter().filter(|l| l.contains("WARN")).count();
    assert!(
        warnings <= seconds + 2,
        "{warnings} warnings in {seconds} s"
    );
    assert!(flood.iter().all(|l| l.len() < 600), "{}", flood[0]);
}

#[test]
fn iqs_in_the_client_namespace_are_answered() {
    let (_d, _x, _app, mut c) = start_linked("jabber-client", "", "");
    let r = c.iq("<iq xmlns='jabber:client' type='get' from='a@example.com/r' to='push.example.org' id='c1'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
    assert_eq!(r.get_attr("to"), Some("a@example.com/r"));
    let r = c.iq("<iq xmlns='jabber:client' type='get' from='a@example.com' to='push.example.org' id='c2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert!(r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .is_some());
    let r = c.iq("<iq xmlns='jabber:client' type='set' from='a@example.com' to='push.example.org' id='c3'><vCard xmlns='vcard-temp'/></iq>");
    assert_eq!(outcome(&r), ("cancel".into(), "service-unavailable".into()));
}

/// Writes `n` pings in one write from another thread while this one reads,
/// and returns the ids of the replies seen.
fn burst(c: &mut Conn, n: usize) -> HashSet<String> {
    let all: String = (0..n)
        .map(|i| format!("<iq type='get' from='a@example.com/r' to='push.example.org' id='b{i}'><ping xmlns='urn:xmpp:ping'/></iq>"))
        .collect();
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(all.as_bytes()).unwrap());
    let mut ids = HashSet::new();
    let mut replies = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids.len() < n && Instant::now() < deadline {
        if let Some(r) = c.recv(Duration::from_millis(200)) {
            assert_eq!(outcome(&r).0, "result");
            replies += 1;
            ids.insert(r.get_attr("id").unwrap().to_owned());
        }
    }
    writer.join().unwrap();
    // Nothing more arrives: exactly one reply each.
    if let Some(r) = c.recv(Duration::from_millis(300)) {
        panic!("extra reply {r:?}");
    }
    assert_eq!(replies, ids.len(), "duplicate replies");
    ids
}

#[test]
fn a_burst_of_6000_pings_gets_6000_replies() {
    let expected: HashSet<String> = (0..6000).map(|i| format!("b{i}")).collect();
    for limits in ["", "[limits]\nmax_in_flight = 16"] {
        let (_d, x, _app, mut c) = start_linked("burst", limits, "");
        let ids = burst(&mut c, 6000);
        assert_eq!(ids.len(), 6000, "with {limits:?}");
        assert_eq!(ids, expected);
        no_reconnect(&x);
    }
}

#[test]
fn the_reconnect_delay_does_not_grow_over_15_server_restarts() {
    let (_d, x, _app, mut c) = start_linked("restarts", "", "");
    let mut gaps = Vec::new();
    for _ in 0..15 {
        c.send("</stream:stream>");
        drop(c);
        let closed = Instant::now();
        c = x.accept(T);
        gaps.push(closed.elapsed());
    }
    // Without the backoff reset after each handshake the delay doubles
    // (1, 2, 4, 8 s ...): past 6 s by the fourth restart. The first retry
    // is due within 0.5 s; 6 s leaves a busy machine room.
    assert!(
        gaps.iter().all(|g| *g < Duration::from_secs(6)),
        "reconnect gaps: {gaps:?}"
    );
    ping(&mut c, "after");
}

#[test]
fn a_half_open_link_is_found_by_a_ping() {
    let (_d, x, _app, mut c) = start_linked(
        "half-open",
        "[limits]\nping_after_secs = 1\nping_timeout_secs = 1",
        "",
    );
    let t0 = Instant::now();
    // The server reads but never answers, as a dead peer behind a live socket.
    let p = c
        .recv(Duration::from_secs(10))
        .expect("a ping from the app server");
    assert_eq!(p.name, "iq");
    assert_eq!(p.get_attr("type"), Some("get"));
    assert_eq!(p.get_attr("from"), Some("push.example.org"));
    assert_eq!(p.get_attr("to"), Some("example.org"));
    assert!(p.get_child("ping", "urn:xmpp:ping").is_some());
    let mut again = x.accept(Duration::from_secs(15));
    let took = t0.elapsed();
    // 1 s + 1 s as configured, then a reconnect (about 2-3 s); with the
    // defaults (30 s + 20 s) it would take 50 s. The bound only tells the
    // two apart.
    assert!(took < Duration::from_secs(15), "reconnected after {took:?}");
    // An answered ping keeps the link up and never reaches the handler.
    let p = again.recv(Duration::from_secs(10)).expect("ping");
    let id = p.get_attr("id").unwrap().to_owned();
    again.send(&format!(
        "<iq type='result' from='example.org' to='push.example.org' id='{id}'/>"
    ));
    ping(&mut again, "alive");
    std::thread::sleep(Duration::from_millis(1500));
    ping(&mut again, "still");
    no_reconnect(&x);
}

fn sigterm(app: &AppServer) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits for the process to exit; its status and when.
fn exit_within(app: &mut AppServer, limit: Duration) -> (std::process::ExitStatus, Instant) {
    let status = app
        .wait_exit(limit)
        .unwrap_or_else(|| panic!("still running after {limit:?}"));
    (status, Instant::now())
}

/// Registers a device and sends one push, SIGTERM `after` later.
fn push_then_sigterm(c: &mut Conn, app: &AppServer, after: Duration) -> Instant {
    let reg = register(c, "fcm", "dev", "tok");
    c.send(&publish_iq("push1", &reg.node, &reg.secret, None));
    std::thread::sleep(after);
    sigterm(app);
    Instant::now()
}

#[test]
fn sigterm_lets_a_push_in_flight_finish_then_closes_the_stream() {
    // The default grace is 5 s.
    let (_d, _x, mut app, mut c) = start_linked("sigterm-finish", "", "delay_ms = 1000");
    let term = push_then_sigterm(&mut c, &app, Duration::from_millis(200));
    let r = c.recv(Duration::from_secs(10)).expect("the push's answer");
    assert_eq!(r.get_attr("id"), Some("push1"));
    assert_eq!(outcome(&r), ("result".into(), String::new()));
    assert_eq!(c.next_frame(Duration::from_secs(10)), Some(Frame::End));
    c.send("</stream:stream>");
    let (status, at) = exit_within(&mut app, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // Out once the push is done (0.8 s after the signal), not at the end
    // of the 5 s grace; the bound only tells the two apart.
    assert!(at - term < Duration::from_secs(4), "{:?}", at - term);
    assert_eq!(app.pushes().len(), 1);
    // The log names the signal as operators know it (it said `Term`).
    assert!(
        app.stderr().contains("SIGTERM: shutting down"),
        "{}",
        app.stderr()
    );
}

#[test]
fn sigterm_answers_a_push_still_in_flight_after_the_grace() {
    let (_d, _x, mut app, mut c) = start_linked(
        "sigterm-timeout",
        "[limits]\nshutdown_grace_secs = 1",
        "delay_ms = 10000",
    );
    let term = push_then_sigterm(&mut c, &app, Duration::from_millis(100));
    let r = c.recv(Duration::from_secs(8)).expect("the push's answer");
    let answered = term.elapsed();
    assert_eq!(r.get_attr("id"), Some("push1"));
    assert_eq!(outcome(&r), ("wait".into(), "remote-server-timeout".into()));
    // At the end of the 1 s grace, long before the push's 10 s.
    assert!(
        answered > Duration::from_millis(800) && answered < Duration::from_secs(6),
        "{answered:?}"
    );
    // Exactly one answer, then the stream close.
    assert_eq!(c.next_frame(Duration::from_secs(10)), Some(Frame::End));
    let (status, _) = exit_within(&mut app, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_refused_handshake_is_warned_about_with_its_likely_cause() {
    // Issue 18: a wrong component secret logged one warning and then
    // nothing for about twelve minutes, and named no cause.
    let dir = TempDir::new("link-refused");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &config(&dir.0, x.port, port, "", ""), port);
    let mut c = x.accept_raw(T);
    assert!(c.handshake("not the secret").is_err());
    let deadline = Instant::now() + T;
    while !app.stderr().contains("handshake rejected") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = app.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("handshake rejected"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("check that it has a component push.example.org with the same secret"),
        "{line}"
    );
}
