//! The stateless dialects end to end: a fake XMPP server sends Monal
//! publishes (`pushModule`, no secret) and Push 2.0 `<message>`
//! notifications to the binary, which pushes to a mock APNS (HTTP/2 + TLS)
//! or a mock Web Push endpoint (HTTP/1.1 + TLS), both on 127.0.0.1.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::apple;
use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::harness::*;
use crate::support::webpush_mock::WebPushMock;

const T: Duration = Duration::from_secs(10);
const LIVE: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const DEAD: &str = "dd00000000000000000000000000000000000000000000000000000000000002";
const FAIL: &str = "ee00000000000000000000000000000000000000000000000000000000000003";
const VOIP: &str = "cc00000000000000000000000000000000000000000000000000000000000004";

/// A mock APNS answering 410 for DEAD, 500 for FAIL, 200 otherwise.
fn apple() -> Apple {
    let behaviour: apple::Behaviour = Arc::new(|r| {
        let token = r.path.trim_start_matches("/3/device/");
        if token == DEAD {
            Reply::status(410, r#"{"reason":"Unregistered","timestamp":1}"#)
        } else if token == FAIL {
            Reply::status(500, r#"{"reason":"InternalServerError"}"#)
        } else {
            Reply::ok()
        }
    });
    smol::block_on(Apple::token(MockOptions::default(), behaviour))
}

/// `[app.NAME]` for the mock Apple; `sandbox` as Apple's environment.
fn apns_app(apple: &Apple, name: &str, sandbox: bool) -> String {
    format!(
        "[app.{name}]\nprovider = \"apns\"\ntopic = \"{TOPIC}\"\nsandbox = {sandbox}\nendpoint = \"{}\"\n\
         capath = {:?}\nauth_key = {:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
        apple.files.0.join("AuthKey.p8").display().to_string(),
    )
}

/// A config with one component (`extra_component` goes into its table).
fn config(
    dir: &std::path::Path,
    xmpp: u16,
    types: &str,
    extra_component: &str,
    apps: &str,
) -> String {
    format!(
        "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"debug\"\n[http]\nlisten = \"off\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [{types}]\n{extra_component}\n{apps}",
        dir.join("data").display()
    )
}

pub(crate) fn monal_publish(id: &str, token: &str, module: &str) -> String {
    format!(
        "<iq type='set' from='user@example.com' to='push.example.org' id='{id}'>\
         <pubsub xmlns='{NS_PUBSUB}'><publish node='{token}'><item>\
         <notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
         <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
         <field var='last-message-body'><value>secret text</value></field></x></notification>\
         </item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pushModule'><value>{module}</value></field></x></publish-options></pubsub></iq>"
    )
}

#[test]
fn monal_pushes_by_push_module_and_answers_wait_on_provider_failures() {
    let apple = apple();
    let dir = TempDir::new("stateless-monal");
    let x = FakeXmpp::new();
    let monal = "[component.monal]\nmodules = { monalProdiOS = \"monal\" }\ndefault = \"monal\"\n\
                 extra = { \"x-app\" = \"monal\" }\nallow_from = [\"example.com\"]\n";
    let _app = AppServer::start(
        &dir.0,
        &config(
            &dir.0,
            x.port,
            "\"monal\"",
            monal,
            &apns_app(&apple, "monal", false),
        ),
        0,
    );
    let mut c = x.accept(T);

    let r = c.iq(&monal_publish("m1", LIVE, "monalProdiOS"));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");
    let seen = apple.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/3/device/{LIVE}"));
    assert_eq!(seen[0].header("apns-push-type"), Some("alert"));
    assert_eq!(seen[0].header("apns-priority"), Some("10"));
    assert_eq!(seen[0].header("apns-topic"), Some(TOPIC));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"aps": {"alert": {"title": "New Message", "body": "You have a new message"},
                                   "sound": "default", "mutable-content": 1},
                           "x-app": "monal"}),
        "the message text never leaves the server"
    );

    // An unlisted module goes to the default; a sandbox one never does.
    let r = c.iq(&monal_publish("m2", LIVE, "quicksyProdiOS"));
    assert_eq!(outcome(&r).0, "result");
    let r = c.iq(&monal_publish("m3", LIVE, "monalProdiOS-sandbox"));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    assert_eq!(apple.server.seen().len(), 2);

    // Dead token: item-not-found; Apple failing: wait, never cancel/bad-request.
    let r = c.iq(&monal_publish("m4", DEAD, "monalProdiOS"));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    let r = c.iq(&monal_publish("m5", FAIL, "monalProdiOS"));
    assert_eq!(outcome(&r).0, "wait", "{r:?}");

    // A node that cannot be an APNS token never reaches Apple.
    let before = apple.server.seen().len();
    let r = c.iq(&monal_publish("m6", "not-a-token", "monalProdiOS"));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(apple.server.seen().len(), before);

    // A server not in allow_from cannot use this service as a relay.
    let r = c
        .iq(&monal_publish("m7", LIVE, "monalProdiOS")
            .replace("user@example.com", "mallory@evil.org"));
    assert_eq!(outcome(&r), ("auth".into(), "forbidden".into()));
    assert_eq!(apple.server.seen().len(), before);
}

pub(crate) fn push2_message(id: &str, client: &str, extra: &str) -> String {
    format!(
        "<message from='example.com' to='push.example.org' id='{id}'>\
         <notification xmlns='urn:xmpp:push2:0'><client>{client}</client>\
         <priority>high</priority>{extra}\
         <encrypted xmlns='urn:xmpp:sce:rfc8291:0'><payload>AAECAwQF+/8=</payload></encrypted>\
         <jwt key='BPub+/key=='>eyJh.eyJi.sig</jwt></notification></message>"
    )
}

#[test]
fn push2_apns_url_form_goes_through_the_profile_with_that_topic() {
    let apple = apple();
    let dir = TempDir::new("stateless-push2-apns");
    let x = FakeXmpp::new();
    let push2 =
        "[component.push2]\napns = [\"snikket\"]\nwebpush = false\nallow_from = [\"example.com\"]\n";
    let _app = AppServer::start(
        &dir.0,
        &config(
            &dir.0,
            x.port,
            "\"snikket\"",
            push2,
            &apns_app(&apple, "snikket", false),
        ),
        0,
    );
    let mut c = x.accept(T);
    let uuid = "123e4567-e89b-12d3-a456-426614174000";
    let client = format!("https://api.push.apple.com/3/device/{LIVE}#{TOPIC}&amp;{VOIP}");
    c.send(&push2_message(uuid, &client, ""));
    let deadline = std::time::Instant::now() + T;
    while apple.server.seen().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = apple.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/3/device/{LIVE}"));
    assert_eq!(seen[0].header("apns-push-type"), Some("alert"));
    assert_eq!(seen[0].header("apns-priority"), Some("10"));
    assert_eq!(seen[0].header("apns-topic"), Some(TOPIC));
    assert_eq!(seen[0].header("apns-id"), Some(uuid));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"aps": {"alert": {"title": "New Message"}, "mutable-content": 1},
                           "rfc8291": "AAECAwQF+/8="})
    );
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "success is not answered"
    );

    // A call goes to the VoIP token on <topic>.voip.
    c.send(&push2_message("call", &client, "<voip/>"));
    let deadline = std::time::Instant::now() + T;
    while apple.server.seen().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = apple.server.seen();
    assert_eq!(seen[1].path, format!("/3/device/{VOIP}"));
    assert_eq!(seen[1].header("apns-push-type"), Some("voip"));
    assert_eq!(
        seen[1].header("apns-topic"),
        Some(format!("{TOPIC}.voip").as_str())
    );

    // mod_push2 marks a chat message with a body `normal` (only a call is
    // `high`): a "New Message" alert the user expects at once, so priority
    // 10; `low` (no body) may wait for the device's convenience (5).
    for (urgency, want) in [("normal", "10"), ("low", "5")] {
        let n = apple.server.seen().len();
        c.send(
            &push2_message(&format!("u-{urgency}"), &client, "").replace(
                "<priority>high</priority>",
                &format!("<priority>{urgency}</priority>"),
            ),
        );
        let deadline = std::time::Instant::now() + T;
        while apple.server.seen().len() == n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let seen = apple.server.seen();
        assert_eq!(seen.len(), n + 1, "{urgency}");
        assert_eq!(seen[n].header("apns-priority"), Some(want), "{urgency}");
        assert_eq!(seen[n].header("apns-push-type"), Some("alert"), "{urgency}");
    }

    // A topic or environment no profile serves is never sent anywhere.
    let other = format!("https://api.push.apple.com/3/device/{LIVE}#org.evil.app");
    let r = c.iq(&push2_message("e1", &other, ""));
    assert_eq!(r.name, "message");
    assert_eq!(r.get_attr("type"), Some("error"));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let dev = format!("https://api.development.push.apple.com/3/device/{LIVE}#{TOPIC}");
    let r = c.iq(&push2_message("e2", &dev, ""));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    // Dead token: a final error.
    let dead = format!("https://api.push.apple.com/3/device/{DEAD}#{TOPIC}");
    let r = c.iq(&push2_message("e3", &dead, ""));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(apple.server.seen().len(), 5);
}

fn push2_web_config(dir: &std::path::Path, xmpp: u16, mock: &WebPushMock, allow: bool) -> String {
    let push2 = format!(
        "[component.push2]\nallow_private_targets = {allow}\nwebpush_ca = {:?}\nttl_secs = 3600\n\
         timeout_secs = 5\nallow_from = [\"example.com\"]\n",
        mock.pki.ca_pem.display().to_string()
    );
    config(
        dir,
        xmpp,
        "\"apns\"",
        &push2,
        "[app.apns]\nprovider = \"log\"\n",
    )
}

#[test]
fn push2_web_push_posts_the_encrypted_payload_with_vapid() {
    let mock = WebPushMock::start();
    let dir = TempDir::new("stateless-push2-web");
    let x = FakeXmpp::new();
    let _app = AppServer::start(&dir.0, &push2_web_config(&dir.0, x.port, &mock, true), 0);
    let mut c = x.accept(T);
    let endpoint = format!("https://127.0.0.1:{}/wpush/dev1?x=1", mock.port);
    c.send(&push2_message("w1", &endpoint, ""));
    let deadline = std::time::Instant::now() + T;
    while mock.seen().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert!(
        s.head.starts_with("POST /wpush/dev1?x=1 HTTP/1.1\r\n"),
        "{}",
        s.head
    );
    assert_eq!(s.header("content-encoding").as_deref(), Some("aes128gcm"));
    assert_eq!(s.header("ttl").as_deref(), Some("3600"));
    assert_eq!(s.header("urgency").as_deref(), Some("high"));
    assert_eq!(
        s.header("authorization").as_deref(),
        Some("vapid t=eyJh.eyJi.sig,k=BPub-_key")
    );
    assert_eq!(s.body, vec![0, 1, 2, 3, 4, 5, 0xfb, 0xff]);
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "success is not answered"
    );

    // Gone: a final error. A redirect: not followed, a wait error.
    mock.status.store(410, Ordering::SeqCst);
    let r = c.iq(&push2_message("w2", &endpoint, ""));
    assert_eq!(
        (r.name.as_str(), r.get_attr("type"), r.get_attr("to")),
        ("message", Some("error"), Some("example.com"))
    );
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    mock.status.store(301, Ordering::SeqCst);
    let r = c.iq(&push2_message("w3", &endpoint, ""));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    assert_eq!(mock.seen().len(), 3, "the redirect was not followed");

    // A server not in allow_from gets nothing sent.
    mock.status.store(201, Ordering::SeqCst);
    let r =
        c.iq(&push2_message("w5", &endpoint, "").replace("from='example.com'", "from='evil.org'"));
    assert_eq!(outcome(&r), ("auth".into(), "forbidden".into()));
    assert_eq!(mock.seen().len(), 3);

    // Plain http is never used.
    let plain = format!("http://127.0.0.1:{}/wpush/dev1", mock.port);
    let r = c.iq(&push2_message("w4", &plain, ""));
    assert_eq!(outcome(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(mock.seen().len(), 3);
}

#[test]
fn push2_ssrf_guard_refuses_loopback_unless_allowed() {
    let mock = WebPushMock::start();
    let dir = TempDir::new("stateless-push2-ssrf");
    let x = FakeXmpp::new();
    let _app = AppServer::start(&dir.0, &push2_web_config(&dir.0, x.port, &mock, false), 0);
    let mut c = x.accept(T);
    for (i, host) in [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "10.0.0.1",
        "169.254.169.254",
        "0.0.0.0",
    ]
    .into_iter()
    .enumerate()
    {
        let endpoint = format!("https://{host}:{}/wpush/dev1", mock.port);
        let r = c.iq(&push2_message(&format!("s{i}"), &endpoint, ""));
        assert_eq!(
            outcome(&r),
            ("cancel".into(), "not-allowed".into()),
            "{host}"
        );
    }
    assert!(mock.seen().is_empty(), "nothing reached the endpoint");
}

/// An endpoint on 127.0.0.1 that accepts `n` TCP connections and says
/// nothing (no TLS handshake, no response) until the sender is dropped:
/// its port, that sender, and the thread to join.
fn silent_endpoint(
    n: usize,
) -> (
    u16,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(n).collect();
        let _ = wait_done.recv_timeout(Duration::from_secs(90));
        drop(conns);
    });
    (port, done, held)
}

/// A config whose Push 2.0 may reach endpoints on 127.0.0.1 within
/// `timeout_secs`, serving example.com, with `apps`.
fn push2_private_config(dir: &std::path::Path, xmpp: u16, timeout_secs: u64, apps: &str) -> String {
    config(
        dir,
        xmpp,
        "\"apns\"",
        &format!(
            "[component.push2]\nallow_private_targets = true\ntimeout_secs = {timeout_secs}\n\
             allow_from = [\"example.com\"]\n"
        ),
        apps,
    )
}

#[test]
fn push2_web_push_endpoint_that_never_answers_times_out_with_wait() {
    let (port, done, held) = silent_endpoint(1);
    let dir = TempDir::new("stateless-push2-timeout");
    let x = FakeXmpp::new();
    let cfg = push2_private_config(&dir.0, x.port, 1, "[app.apns]\nprovider = \"log\"\n");
    let _app = AppServer::start(&dir.0, &cfg, 0);
    let mut c = x.accept(T);
    let started = std::time::Instant::now();
    let endpoint = format!("https://127.0.0.1:{port}/wpush/dev1");
    let r = c.iq(&push2_message("t1", &endpoint, ""));
    assert_eq!(outcome(&r), ("wait".into(), "remote-server-timeout".into()));
    // Cut at the 1 s set above, not at the default 10 s; the bound only
    // tells the two apart.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered after {:?}",
        started.elapsed()
    );
    drop(done);
    held.join().unwrap();
}

#[test]
fn a_stateless_dialect_serves_only_allow_from_unless_open_relay_is_set() {
    let dir = TempDir::new("stateless-open-relay");
    let x = FakeXmpp::new();
    let monal = "[component.monal]\nmodules = { monalProdiOS = \"monal\" }\n";
    let log_app = format!(
        "[app.monal]\nprovider = \"log\"\nfile = {:?}\n",
        dir.0.join("pushes.jsonl").display().to_string()
    );
    // Without allow_from it does not start: it would relay for anyone.
    let mut app = AppServer::start(
        &dir.0,
        &config(&dir.0, x.port, "\"monal\"", monal, &log_app),
        0,
    );
    let status = app.wait_exit(T).expect("refused to start");
    assert!(!status.success());
    let err = app.stderr();
    assert!(err.contains("component[0].monal.allow_from"), "{err}");
    assert!(err.contains("open_relay"), "{err}");
    drop(app);

    // open_relay = true serves anyone, and says so at start.
    let open = format!("{monal}open_relay = true\n");
    let app = AppServer::start(
        &dir.0,
        &config(&dir.0, x.port, "\"monal\"", &open, &log_app),
        0,
    );
    let mut c = x.accept(T);
    let r = c.iq(&monal_publish("m1", LIVE, "monalProdiOS")
        .replace("user@example.com", "u@elsewhere.example"));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");
    assert_eq!(app.wait_pushes(1, T).len(), 1);
    assert!(
        app.stderr().contains("open_relay = true"),
        "{}",
        app.stderr()
    );
}

#[test]
fn push2_errors_name_no_detail_of_the_endpoint() {
    // A port nothing listens on: the refused connection is not reported
    // back (it made the server a port scanner's oracle), only logged.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = TempDir::new("stateless-push2-oracle");
    let x = FakeXmpp::new();
    let cfg = push2_private_config(&dir.0, x.port, 5, "[app.apns]\nprovider = \"log\"\n");
    let _app = AppServer::start(&dir.0, &cfg, 0);
    let mut c = x.accept(T);
    let r = c.iq(&push2_message(
        "o1",
        &format!("https://127.0.0.1:{port}/w"),
        "",
    ));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let text = r.to_stanza_string();
    assert!(text.contains("could not be reached"), "{text}");
    assert!(
        !text.contains("os error") && !text.contains("refused"),
        "{text}"
    );
}

#[test]
fn a_silent_web_push_endpoint_holds_neither_the_link_nor_other_pushes() {
    // The attack of issue 17: Push 2.0 messages to an endpoint that
    // accepts TCP and never answers held the link's in-flight slots until
    // their Web Push timeout, and every other stanza waited behind them.
    let (port, done, held) = silent_endpoint(8);
    let dir = TempDir::new("stateless-push2-hol");
    let x = FakeXmpp::new();
    let cfg = push2_private_config(
        &dir.0,
        x.port,
        60,
        &format!(
            "[app.apns]\nprovider = \"log\"\nfile = {:?}\n[limits]\nmax_in_flight = 8\n",
            dir.0.join("pushes.jsonl").display().to_string()
        ),
    );
    let app = AppServer::start(&dir.0, &cfg, 0);
    let mut c = x.accept(T);
    for i in 0..20 {
        let endpoint = format!("https://127.0.0.1:{port}/wpush/dev{i}");
        c.send(&push2_message(&format!("w{i}"), &endpoint, ""));
    }
    // Past the link's budget of detached work (max_in_flight = 8), the
    // rest are refused at once with a wait error, not queued without bound.
    let mut constrained = 0;
    let deadline = std::time::Instant::now() + T;
    while constrained < 12 && std::time::Instant::now() < deadline {
        if let Some(m) = c.recv(Duration::from_millis(200)) {
            if m.name == "message" && outcome(&m) == ("wait".into(), "resource-constraint".into()) {
                constrained += 1;
            }
        }
    }
    assert_eq!(constrained, 12, "refused over the budget");
    // A registration and a push right behind them are answered long
    // before any of the held Web Push requests could time out (60 s).
    let started = std::time::Instant::now();
    let dev = register(&mut c, "apns", "dev", "tok");
    let r = c.iq(&publish_iq("p1", &dev.node, &dev.secret, Some("hi")));
    assert_eq!(outcome(&r), ("result".into(), String::new()), "{r:?}");
    println!(
        "answered behind 8 held notifications in {:?}",
        started.elapsed()
    );
    assert_eq!(app.wait_pushes(1, T).len(), 1);
    drop(done);
    held.join().unwrap();
}

#[test]
fn push2_is_taken_only_from_the_servers_themselves() {
    // Found by the attacker review of issue 17: a user of an allowed
    // domain sent its own <notification> with a <client> of its choosing.
    let mock = WebPushMock::start();
    let dir = TempDir::new("stateless-push2-from");
    let x = FakeXmpp::new();
    let _app = AppServer::start(&dir.0, &push2_web_config(&dir.0, x.port, &mock, true), 0);
    let mut c = x.accept(T);
    let endpoint = format!("https://127.0.0.1:{}/wpush/x", mock.port);
    for from in [
        "mallory@example.com/res",
        "mallory@example.com",
        "example.com/res",
    ] {
        let r = c.iq(&push2_message("f1", &endpoint, "")
            .replace("from='example.com'", &format!("from='{from}'")));
        assert_eq!(outcome(&r), ("auth".into(), "forbidden".into()), "{from}");
    }
    assert!(mock.seen().is_empty(), "nothing was sent");
}

#[test]
fn one_hosts_silent_endpoints_hold_at_most_half_the_web_push_slots() {
    // Found by the attacker review of issue 17: endpoints that accept TCP
    // and never answer held every shared Web Push slot until their
    // timeout, and other users' pushes to other hosts timed out behind
    // them. Now a host has at most half the slots (`max_concurrent` = 4:
    // two); its other requests wait for a place of their own, not a slot.
    let (port, done, held) = silent_endpoint(2);
    let dir = TempDir::new("stateless-push2-per-host");
    let x = FakeXmpp::new();
    let cfg = push2_private_config(&dir.0, x.port, 30, "[app.apns]\nprovider = \"log\"\n").replace(
        "timeout_secs = 30\n",
        "timeout_secs = 30\nmax_concurrent = 4\n",
    );
    let _app = AppServer::start(&dir.0, &cfg, 0);
    let mut c = x.accept(T);
    for i in 0..6 {
        let endpoint = format!("https://127.0.0.1:{port}/wpush/t{i}");
        c.send(&push2_message(&format!("t{i}"), &endpoint, ""));
    }
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    c.send(&push2_message(
        "victim",
        &format!("https://localhost:{closed}/wpush/v"),
        "",
    ));
    let mut victim = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while victim.is_none() && std::time::Instant::now() < deadline {
        if let Some(m) = c.recv(Duration::from_millis(200)) {
            if m.get_attr("id") == Some("victim") {
                victim = Some(outcome(&m));
            }
        }
    }
    // The victim's endpoint refuses the connection: that error, not a
    // timeout behind the silent host.
    assert_eq!(
        victim,
        Some(("wait".into(), "internal-server-error".into()))
    );
    drop(done);
    held.join().unwrap();
}

#[test]
fn a_burst_to_one_host_waits_for_places_and_is_all_delivered() {
    // The attacker review's second pass: refusing a host's requests past
    // its half dropped ordinary bursts (one group message to many members
    // on one push service). They wait for a place instead.
    let mock = WebPushMock::start();
    let dir = TempDir::new("stateless-push2-burst");
    let x = FakeXmpp::new();
    let cfg = push2_web_config(&dir.0, x.port, &mock, true).replace(
        "timeout_secs = 5\n",
        "timeout_secs = 5\nmax_concurrent = 4\n",
    );
    let _app = AppServer::start(&dir.0, &cfg, 0);
    let mut c = x.accept(T);
    for i in 0..12 {
        let endpoint = format!("https://127.0.0.1:{}/wpush/b{i}", mock.port);
        c.send(&push2_message(&format!("b{i}"), &endpoint, ""));
    }
    let deadline = std::time::Instant::now() + T;
    while mock.seen().len() < 12 && std::time::Instant::now() < deadline {
        if let Some(m) = c.recv(Duration::from_millis(100)) {
            panic!("a notification failed: {m:?}");
        }
    }
    assert_eq!(mock.seen().len(), 12);
}
