//! The binary against a fake XMPP server speaking real XEP-0114 on loopback:
//! disco, ping, commands, every error row of protocols.md section 2,
//! throttling, reconnection and persistence.

use std::time::{Duration, Instant};

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn disco_ping_and_unhandled_iqs() {
    let (_d, _x, _app, mut c) = start_linked("disco", "", "");
    let r = c.iq("<iq type='get' from='a@example.com/r' to='push.example.org' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
    assert_eq!(r.get_attr("from"), Some("push.example.org"));
    assert_eq!(r.get_attr("to"), Some("a@example.com/r"));

    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let id = q
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        (id.get_attr("category"), id.get_attr("type")),
        (Some("pubsub"), Some("push"))
    );
    let features: Vec<_> = q.elements().filter_map(|f| f.get_attr("var")).collect();
    for f in ["urn:xmpp:push:0", NS_COMMANDS, NS_PUBSUB] {
        assert!(features.contains(&f), "missing feature {f}");
    }

    let r = c.iq(&format!("<iq type='get' from='a@example.com' to='push.example.org' id='d2'><query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/></iq>"));
    let nodes: Vec<_> = r
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .elements()
        .filter_map(|i| i.get_attr("node").map(str::to_owned))
        .collect();
    assert_eq!(nodes, ["v1-register-push", "v1-unregister-push"]);

    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='v1'><vCard xmlns='vcard-temp'/></iq>");
    assert_eq!(outcome(&r), ("cancel".into(), "service-unavailable".into()));
    let r = c.iq("<iq type='set' from='a@example.com' to='push.example.org' id='e1'/>");
    assert_eq!(outcome(&r), ("modify".into(), "bad-request".into()));
    // Results and messages get no answer; the link stays up and serves the next iq.
    c.send("<iq type='result' from='a@example.com' to='push.example.org' id='x1'/><message from='a@example.com'><body>hi</body></message>");
    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
}

#[test]
fn register_push_and_every_error_row() {
    let (_d, _x, app, mut c) = start_linked(
        "errors",
        "rate_limit = 0",
        "dead_token_prefix = \"dead-\"\nfail_token_prefix = \"fail-\"",
    );
    let dev1 = register(&mut c, "fcm", "dev1", "tok1");
    let secret = dev1.secret.clone();
    assert_eq!(secret.len(), 64);
    // Re-registering keeps node and secret.
    assert_eq!(register(&mut c, "fcm", "dev1", "tok1b"), dev1);

    let r = c.iq(&publish_iq("p1", &dev1.node, &secret, Some("Hello")));
    assert_eq!(outcome(&r), ("result".into(), String::new()));
    let pushes = app.wait_pushes(1, T);
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["node"], dev1.node.as_str());
    assert_eq!(pushes[0]["token"], "tok1b");
    assert_eq!(pushes[0]["priority"], "high");
    assert_eq!(pushes[0]["summary"]["last-message-body"], "Hello");
    // auto without a body is silent
    let r = c.iq(&publish_iq("p1b", &dev1.node, &secret, None));
    assert_eq!(outcome(&r).0, "result");
    assert_eq!(app.wait_pushes(2, T)[1]["priority"], "silent");

    // unknown node
    let r = c.iq(&publish_iq("p2", "nobody", &secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    // wrong secret
    let r = c.iq(&publish_iq("p3", &dev1.node, &"0".repeat(64), None));
    assert_eq!(outcome(&r), ("auth".into(), "forbidden".into()));
    // malformed: no publish-options
    let bad = publish_iq("p4", &dev1.node, &secret, None);
    let cut = bad.find("<publish-options>").unwrap();
    let end = bad.find("</publish-options>").unwrap() + "</publish-options>".len();
    let r = c.iq(&format!("{}{}", &bad[..cut], &bad[end..]));
    assert_eq!(outcome(&r), ("modify".into(), "bad-request".into()));
    // provider temporarily failing
    let dev2 = register(&mut c, "fcm", "dev2", "fail-tok");
    let r = c.iq(&publish_iq("p5", &dev2.node, &dev2.secret, None));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    // dead token: item-not-found, and the registration is gone
    let dev3 = register(&mut c, "fcm", "dev3", "dead-tok");
    let r = c.iq(&publish_iq("p6", &dev3.node, &dev3.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("p7", &dev3.node, &dev3.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(
        app.http(
            "GET",
            &format!("/push_appserver/v1/settings/{}", dev3.node),
            ""
        )
        .0,
        404
    );
    // nothing else reached the provider
    assert_eq!(app.pushes().len(), 2);
    // the failure was recorded on the registration
    let (status, page) = app.http(
        "GET",
        &format!("/push_appserver/v1/settings/{}", dev2.node),
        "",
    );
    assert_eq!(status, 200);
    assert!(page.contains("last_push_error"), "{page}");
}

#[test]
fn commands_errors_and_unregister() {
    let (_d, _x, _app, mut c) = start_linked("commands", "", "");
    let r = c.iq(&register_iq("r1", "pigeon", "n1", "t1"));
    assert_eq!(outcome(&r), ("modify".into(), "bad-request".into()));
    let r = c.iq(&register_iq("r2", "fcm", "n1", ""));
    assert_eq!(outcome(&r), ("modify".into(), "bad-request".into()));
    let r = c.iq(&format!("<iq type='set' from='u@example.com' to='push.example.org' id='r3'><command xmlns='{NS_COMMANDS}' node='nope' action='execute'/></iq>"));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    // Executing without a form returns the form to fill in.
    let r = c.iq(&format!("<iq type='set' from='u@example.com' to='push.example.org' id='r4'><command xmlns='{NS_COMMANDS}' node='v1-register-push' action='execute'/></iq>"));
    let cmd = r.get_child("command", NS_COMMANDS).unwrap();
    assert_eq!(cmd.get_attr("status"), Some("executing"));

    let n1 = register(&mut c, "fcm", "n1", "t1");
    let unreg = |id: &str, ty: &str, node: &str| unregister_iq(id, "user@example.com/r2", ty, node);
    // Another type: not found.
    let r = c.iq(&unreg("u0", "apns", "n1"));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&unreg("u1", "fcm", "n1"));
    assert_eq!(outcome(&r).0, "result");
    let cmd = r.get_child("command", NS_COMMANDS).unwrap();
    assert_eq!(cmd.get_attr("status"), Some("completed"));
    let r = c.iq(&unreg("u2", "fcm", "n1"));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&publish_iq("p1", &n1.node, &n1.secret, None));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
}

#[test]
fn throttle_sends_first_holds_one_and_drops_the_rest() {
    // rate_limit = 3: three seconds between two pushes to one device (the
    // module's zthrottle distance; before, 1 meant one push per second, but
    // 2 meant 500 ms: now it means 2 s). Three, not one: the publishes
    // below must fall into one window even on a busy machine.
    let (_d, _x, app, mut c) = start_linked("throttle", "rate_limit = 3", "");
    let dev = register(&mut c, "fcm", "dev", "tok");
    let other = register(&mut c, "fcm", "other", "tok2");
    let started = Instant::now();
    for i in 0..6 {
        let r = c.iq(&publish_iq(
            &format!("t{i}"),
            &dev.node,
            &dev.secret,
            Some(&format!("m{i}")),
        ));
        assert_eq!(
            outcome(&r),
            ("result".into(), String::new()),
            "never an error"
        );
    }
    let r = c.iq(&publish_iq("o1", &other.node, &other.secret, None));
    assert_eq!(outcome(&r).0, "result");
    // Seven iqs on loopback: only a hang takes a whole window.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the publishes took longer than the throttle window: {:?}",
        started.elapsed()
    );
    let now = app.pushes();
    assert_eq!(
        now.iter()
            .filter(|p| p["node"] == dev.node.as_str())
            .count(),
        1,
        "{now:?}"
    );
    assert_eq!(
        now.iter()
            .filter(|p| p["node"] == other.node.as_str())
            .count(),
        1
    );
    let later = app.wait_pushes(3, Duration::from_secs(3) + T);
    let dev: Vec<_> = later
        .iter()
        .filter(|p| p["node"] == dev.node.as_str())
        .collect();
    assert_eq!(dev.len(), 2);
    assert_eq!(
        dev[1]["summary"]["last-message-body"], "m5",
        "the held push carries the newest content"
    );
    // Another held push would go out one window after the first held one.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(app.pushes().len(), 3, "the rest were dropped");
}

#[test]
fn reconnects_after_the_server_drops_the_link_and_after_a_rejected_handshake() {
    let (_d, x, _app, c) = start_linked("reconnect", "", "");
    drop(c);
    let mut c = x.accept(T);
    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
    // A server restart with a stream close is also survived.
    c.send("</stream:stream>");
    assert!(c.closed_within(T));
    // A rejected handshake is retried too.
    let mut raw = x.accept_raw(T);
    assert!(raw.handshake("some-other-secret").is_err());
    let mut c = x.accept(T);
    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
}

#[test]
fn garbage_gets_a_stream_error_then_a_new_link() {
    // Oversized and deep stanzas are skipped instead (tests/link/link.rs).
    let (_d, x, _app, mut c) = start_linked("garbage", "", "");
    c.send("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'></iq></ping>");
    let err = c.recv(T).expect("stream error");
    assert_eq!(err.name, "error");
    assert!(
        err.elements().any(|e| e.name == "not-well-formed"),
        "{err:?}"
    );
    assert!(c.closed_within(T));

    let mut c = x.accept(T);
    let r = c.iq("<iq type='get' from='a@example.com' to='push.example.org' id='p'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(outcome(&r).0, "result");
}

#[test]
fn registrations_survive_kill_9_and_restart() {
    let dir = TempDir::new("persist");
    let x = FakeXmpp::new();
    let http_port = free_port();
    let cfg = config(&dir.0, x.port, http_port, "", "");
    let mut app = AppServer::start(&dir.0, &cfg, http_port);
    let mut c = x.accept(T);
    let dev = register(&mut c, "fcm", "dev", "tok");
    app.kill(); // SIGKILL: no shutdown path runs
    drop(c);
    let app = AppServer::start(&dir.0, &cfg, http_port);
    let mut c = x.accept(T);
    let r = c.iq(&publish_iq("p", &dev.node, &dev.secret, None));
    assert_eq!(outcome(&r), ("result".into(), String::new()));
    assert_eq!(app.wait_pushes(1, T)[0]["token"], "tok");
}

#[test]
fn whitespace_keepalive_on_a_silent_link() {
    let (_d, _x, _app, mut c) = start_linked("keepalive", "[limits]\nkeepalive_secs = 1", "");
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline && !got.contains(&b' ') {
        if let Ok(n) = c.stream.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(got.contains(&b' '), "no keepalive in {got:?}");
    assert!(
        got.iter().all(|b| b.is_ascii_whitespace()),
        "only whitespace: {got:?}"
    );
}

#[test]
fn work_in_flight_is_bounded() {
    // Two pushes in flight at most, each taking 1.5 s at the provider: six
    // pushes sent at once are answered in three waves, because the link
    // stops reading while both slots are busy. (The waves are long so that
    // the bounds below hold on a busy machine.)
    let (_d, _x, app, mut c) = start_linked(
        "inflight",
        "rate_limit = 0\n[limits]\nmax_in_flight = 2",
        "delay_ms = 1500",
    );
    let regs: Vec<Reg> = (0..6)
        .map(|i| register(&mut c, "fcm", &format!("d{i}"), &format!("t{i}")))
        .collect();
    let t0 = Instant::now();
    let all: String = (0..6)
        .map(|i| publish_iq(&format!("f{i}"), &regs[i].node, &regs[i].secret, None))
        .collect();
    c.send(&all);
    let mut answered = Vec::new();
    while answered.len() < 6 && t0.elapsed() < 3 * T {
        if let Some(r) = c.recv(Duration::from_millis(100)) {
            assert_eq!(outcome(&r).0, "result");
            answered.push(t0.elapsed());
        }
    }
    assert_eq!(answered.len(), 6);
    // Two at once: one slot would answer the second push after 3 s.
    assert!(answered[1] < Duration::from_secs(3), "{answered:?}");
    // Never more than two: the last of three waves ends after 4.5 s.
    assert!(answered[5] >= Duration::from_millis(4450), "{answered:?}");
    assert_eq!(app.pushes().len(), 6);
}

#[test]
fn several_components_in_one_process() {
    let dir = TempDir::new("multi");
    let x = FakeXmpp::new();
    let http_port = free_port();
    let second = format!(
        "[[component]]\njid = \"voip.example.org\"\nserver = \"127.0.0.1:{}\"\nsecret = \"{SECRET}\"\ntypes = [\"apns\"]\n",
        x.port
    );
    let text = config(&dir.0, x.port, http_port, "", "")
        .replace("[app.fcm]", &format!("{second}[app.fcm]"));
    let app = AppServer::start(&dir.0, &text, http_port);
    let mut conns: Vec<Conn> = (0..2).map(|_| x.accept(T)).collect();
    let mut jids = Vec::new();
    for c in &mut conns {
        let r = c.iq("<iq type='get' from='a@example.com' to='x' id='who'><ping xmlns='urn:xmpp:ping'/></iq>");
        jids.push(r.get_attr("from").unwrap().to_owned());
    }
    jids.sort();
    assert_eq!(jids, ["push.example.org", "voip.example.org"]);
    // Registrations are per component: the same node on each has its own secret.
    let idx_voip = {
        let r = conns[0].iq("<iq type='get' from='a@example.com' to='x' id='who2'><ping xmlns='urn:xmpp:ping'/></iq>");
        usize::from(r.get_attr("from") != Some("voip.example.org"))
    };
    let idx_push = 1 - idx_voip;
    let r = conns[idx_voip].iq(&register_iq("r1", "fcm", "n", "t"));
    assert_eq!(
        outcome(&r),
        ("modify".into(), "bad-request".into()),
        "fcm is not a voip type"
    );
    let r = conns[idx_voip]
        .iq(&register_iq("r2", "apns", "n", "t").replace("push.example.org", "voip.example.org"));
    assert_eq!(outcome(&r).0, "result");
    let s_push = register(&mut conns[idx_push], "fcm", "n", "t2");
    let r = conns[idx_push].iq(&publish_iq("p", &s_push.node, &s_push.secret, None));
    assert_eq!(outcome(&r).0, "result");
    assert_eq!(app.wait_pushes(1, T)[0]["component"], "push.example.org");
}

#[test]
fn pushes_from_one_domain_follow_its_rate() {
    // Every push passes a rate per sender domain: past it (here 1 a second,
    // bursts of 2) a push is answered wait/internal-server-error, which no
    // XMPP server, Tigase included, takes as a reason to disable push.
    let dir = TempDir::new("component-sender-rate");
    let x = FakeXmpp::new();
    let http = free_port();
    let cfg = config(
        &dir.0,
        x.port,
        http,
        "rate_limit = 0\n[limits]\npushes_per_second_per_domain = 1",
        "",
    );
    let app = AppServer::start(&dir.0, &cfg, http);
    let mut c = x.accept(T);
    let dev = register(&mut c, "fcm", "d", "t");
    // Sent back to back: however slow the machine, eight take far less
    // than the six seconds the bucket would need to let them all through.
    let answers: Vec<_> = (0..8)
        .map(|i| outcome(&c.iq(&publish_iq(&format!("p{i}"), &dev.node, &dev.secret, None))))
        .collect();
    assert_eq!(
        (answers[0].0.as_str(), answers[1].0.as_str()),
        ("result", "result")
    );
    let limited = answers
        .iter()
        .filter(|a| **a == ("wait".to_owned(), "internal-server-error".to_owned()))
        .count();
    assert!(limited >= 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.0 == "result" || a.1 == "internal-server-error"),
        "{answers:?}"
    );
    assert_eq!(app.wait_pushes(8 - limited, T).len(), 8 - limited);
    // The bucket refills: a second later the domain may push again.
    std::thread::sleep(Duration::from_millis(1500));
    let r = c.iq(&publish_iq("again", &dev.node, &dev.secret, None));
    assert_eq!(outcome(&r).0, "result", "{r:?}");
}
