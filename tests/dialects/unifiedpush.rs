//! UnifiedPush through the binary, the XMPP server played by the fake
//! XEP-0114 server and the application's server by HTTP requests: a
//! client registers an (application, instance), a POST to the endpoint
//! arrives as an iq for the client's full JID, and the client's answer
//! decides the HTTP status (docs/protocols.md section 9).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use push_appserver::xml::Element;

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);
const NS_UP: &str = "http://gultsch.de/xmpp/drafts/unified-push";
const CLIENT: &str = "alice@example.com/phone";

/// base64 of 32 bytes of `b`, as Conversations sends its hashes.
fn hash(b: u8) -> String {
    push_appserver::jwt::base64(&[b; 32])
}

fn start(name: &str, extra: &str) -> (TempDir, FakeXmpp, AppServer, Conn, u16) {
    let dir = TempDir::new(name);
    let x = FakeXmpp::new();
    let port = free_port();
    let text = config(&dir.0, x.port, port, "", "").replace(
        "[app.fcm]",
        &format!(
            "[component.unifiedpush]\nendpoint_base = \"http://127.0.0.1:{port}/\"\n\
             allow_from = [\"example.com\"]\n{extra}\n[app.fcm]"
        ),
    );
    let app = AppServer::start(&dir.0, &text, port);
    let c = x.accept(T);
    (dir, x, app, c, port)
}

fn register(c: &mut Conn, from: &str, application: &str, instance: &str) -> Element {
    c.iq(&format!(
        "<iq type='set' from='{from}' to='push.example.org' id='r{}'>\
         <register xmlns='{NS_UP}' application='{application}' instance='{instance}'/></iq>",
        fastrand::u32(..)
    ))
}

/// The endpoint answered to a registration, as (URL, path on our API).
fn endpoint(reply: &Element) -> (String, String) {
    assert_eq!(
        outcome(reply),
        ("result".into(), String::new()),
        "{reply:?}"
    );
    let r = reply.get_child("registered", NS_UP).expect("registered");
    let url = r.get_attr("endpoint").unwrap().to_owned();
    let expiration = r.get_attr("expiration").unwrap();
    assert!(
        expiration.ends_with('Z') && expiration.len() == 20,
        "{expiration}"
    );
    let path = url.split_once("127.0.0.1").unwrap().1;
    let path = path[path.find('/').unwrap()..].to_owned();
    (url, path)
}

/// POSTs `body` to `path` on another thread: (status, body).
fn post(port: u16, path: &str, body: &str) -> JoinHandle<(u16, String)> {
    let (path, body) = (path.to_owned(), body.to_owned());
    std::thread::spawn(move || http(port, "POST", &path, &body, &[]))
}

/// The next relay iq the fake server gets.
fn relayed(c: &mut Conn) -> Element {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if let Some(s) = c.recv(Duration::from_millis(100)) {
            if s.name == "iq" && s.get_child("push", NS_UP).is_some() {
                return s;
            }
        }
    }
    panic!("no relay arrived");
}

fn answer(c: &mut Conn, iq: &Element, error: Option<&str>) {
    let id = iq.get_attr("id").unwrap();
    let to = iq.get_attr("from").unwrap();
    c.send(&match error {
        None => format!("<iq type='result' from='{CLIENT}' to='{to}' id='{id}'/>"),
        Some(cond) => format!(
            "<iq type='error' from='{CLIENT}' to='{to}' id='{id}'><error type='cancel'>\
             <{cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
    });
}

#[test]
fn a_post_is_relayed_to_the_client_and_answered_with_its_answer() {
    let (_d, _x, app, mut c, port) = start("up-relay", "relay_timeout_secs = 2");
    let r = c.iq(
        "<iq type='get' from='alice@example.com/phone' to='push.example.org' id='d'>\
                  <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(
        format!("{r:?}").contains(NS_UP),
        "disco#info lists the feature: {r:?}"
    );

    let (url, path) = endpoint(&register(&mut c, CLIENT, &hash(1), &hash(2)));
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/up/")),
        "{url}"
    );
    assert!(!url.contains("alice"), "the endpoint reveals nobody: {url}");
    let (s, b) = app.http("GET", &path, "");
    assert_eq!((s, b.as_str()), (200, r#"{"unifiedpush":{"version":1}}"#));

    // Delivered: the client answers result, the POST gets 201.
    let pending = post(port, &path, "hello \u{1F600} world");
    let iq = relayed(&mut c);
    assert_eq!(iq.get_attr("to"), Some(CLIENT));
    assert_eq!(iq.get_attr("from"), Some("push.example.org"));
    assert_eq!(iq.get_attr("type"), Some("set"));
    let push = iq.get_child("push", NS_UP).unwrap();
    assert_eq!(push.get_attr("application"), Some(hash(1).as_str()));
    assert_eq!(push.get_attr("instance"), Some(hash(2).as_str()));
    assert_eq!(
        push.text_content(),
        push_appserver::jwt::base64("hello \u{1F600} world".as_bytes())
    );
    answer(&mut c, &iq, None);
    assert_eq!(pending.join().unwrap().0, 201);

    // The application was removed: 404; the client is away: 503.
    for (cond, status) in [("item-not-found", 404), ("service-unavailable", 503)] {
        let pending = post(port, &path, "x");
        let iq = relayed(&mut c);
        answer(&mut c, &iq, Some(cond));
        assert_eq!(pending.join().unwrap().0, status, "{cond}");
    }

    // Somebody else answering for the client is not taken: the POST
    // waits for the real answer, and without one gets 504.
    let pending = post(port, &path, "x");
    let iq = relayed(&mut c);
    let id = iq.get_attr("id").unwrap();
    c.send(&format!(
        "<iq type='result' from='mallory@example.com/x' to='push.example.org' id='{id}'/>"
    ));
    let (status, body) = pending.join().unwrap();
    assert_eq!(status, 504, "{body}");

    // Bad bodies and bad tokens: answered at once, nothing relayed.
    assert_eq!(app.http("POST", &path, "").0, 400);
    let mut altered = path.clone().into_bytes();
    let i = altered.len() - 5;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(app.http("POST", &altered, "x").0, 404);
    assert_eq!(app.http("POST", "/up/garbage", "x").0, 404);
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "nothing relayed"
    );

    // Counted like pushes, on the status page and in the metrics.
    let (_, health) = app.http("GET", "/push_appserver/v1/health", "");
    assert!(
        health.contains(
            "UnifiedPush relays: delivered 1, dead_token 1, throttled 0, failed 1, timed_out 1"
        ),
        "{health}"
    );
    let (_, metrics) = app.http("GET", "/metrics", "");
    assert!(
        metrics
            .contains("push_appserver_pushes_total{app=\"unifiedpush\",outcome=\"delivered\"} 1"),
        "{metrics}"
    );
}

#[test]
fn registrations_are_checked_and_endpoints_expire() {
    let (_d, _x, app, mut c, port) = start(
        "up-register",
        // Long enough for the relay below on a busy machine (with 1 s, a
        // slow CI run's first POST arrived after the endpoint expired).
        "registration_ttl_secs = 4\nmax_in_flight_per_jid = 1",
    );
    for (from, application, instance, want) in [
        (
            "mallory@evil.example/x",
            hash(1),
            hash(2),
            ("auth", "forbidden"),
        ),
        (
            "alice@example.com",
            hash(1),
            hash(2),
            ("modify", "bad-request"),
        ),
        (
            CLIENT,
            "short".to_owned(),
            hash(2),
            ("modify", "bad-request"),
        ),
        (CLIENT, hash(1), String::new(), ("modify", "bad-request")),
    ] {
        let r = register(&mut c, from, &application, &instance);
        assert_eq!(
            outcome(&r),
            (want.0.into(), want.1.into()),
            "{from} {application:?}"
        );
    }

    // One relay per JID waits at once (max_in_flight_per_jid = 1).
    let registered_at = Instant::now();
    let (_, path) = endpoint(&register(&mut c, CLIENT, &hash(1), &hash(2)));
    let pending = post(port, &path, "first");
    let iq = relayed(&mut c);
    assert_eq!(app.http("POST", &path, "second").0, 429);
    answer(&mut c, &iq, None);
    assert_eq!(pending.join().unwrap().0, 201);

    // Past its lifetime (4 s) the endpoint is unknown.
    let expired = registered_at + Duration::from_millis(5100);
    std::thread::sleep(expired.saturating_duration_since(Instant::now()));
    assert_eq!(app.http("POST", &path, "late").0, 404);
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "nothing relayed"
    );
}

#[test]
fn a_user_whose_client_never_answers_keeps_one_place() {
    // The attacker review of UnifiedPush: users whose clients never answer
    // held every waiting place until their timeouts, and everybody else's
    // POSTs got 429. After a timeout a user has one place until it answers.
    let (_d, _x, app, mut c, port) = start(
        "up-slow",
        "relay_timeout_secs = 1\nmax_in_flight_per_jid = 2",
    );
    let (_, path) = endpoint(&register(&mut c, CLIENT, &hash(1), &hash(2)));
    let first = post(port, &path, "one");
    relayed(&mut c);
    assert_eq!(first.join().unwrap().0, 504, "never answered");
    // Slow now: one relay waits at a time.
    let waiting = post(port, &path, "two");
    let iq = relayed(&mut c);
    assert_eq!(app.http("POST", &path, "three").0, 429);
    answer(&mut c, &iq, None);
    assert_eq!(waiting.join().unwrap().0, 201);
    // It answered: two places again.
    let a = post(port, &path, "four");
    let ia = relayed(&mut c);
    let b = post(port, &path, "five");
    let ib = relayed(&mut c);
    answer(&mut c, &ia, None);
    answer(&mut c, &ib, None);
    assert_eq!((a.join().unwrap().0, b.join().unwrap().0), (201, 201));
}

#[test]
fn endpoints_of_a_domain_no_longer_served_are_unknown() {
    let (dir, x, mut app, mut c, port) = start("up-allow", "");
    let (_, path) = endpoint(&register(&mut c, CLIENT, &hash(1), &hash(2)));
    app.kill();
    drop(c);
    // The operator stops serving example.com; the endpoint it handed out
    // is still sealed with the same key, but relays nothing.
    let text = std::fs::read_to_string(dir.0.join("config.toml"))
        .unwrap()
        .replace(
            "allow_from = [\"example.com\"]",
            "allow_from = [\"example.net\"]",
        );
    let app = AppServer::start(&dir.0, &text, port);
    let mut c = x.accept(T);
    assert_eq!(app.http("POST", &path, "x").0, 404);
    assert!(
        c.recv(Duration::from_millis(300)).is_none(),
        "nothing relayed"
    );
}
