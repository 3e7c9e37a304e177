//! One push pipeline for every dialect: with `rate_limit` set, pushes of
//! v1, Conversations, Siskin, Monal and Push 2.0 (Web Push) to one device
//! and priority follow the same throttle window, and `/metrics` counts
//! every dialect's pushes and registrations under its app profile.

use std::time::{Duration, Instant};

use super::dialects::{conversations_register, one, siskin_publish, siskin_register};
use super::stateless::{monal_publish, push2_message};
use crate::support::harness::*;
use crate::support::webpush_mock::WebPushMock;

const T: Duration = Duration::from_secs(20);
const MONAL: &str = "ab00000000000000000000000000000000000000000000000000000000000001";
const SISKIN: &str = "5150000000000000000000000000000000000000000000000000000000000002";

/// One component speaking every dialect, each through its own log
/// profile, all throttled by a window no test outlives.
fn config(dir: &std::path::Path, xmpp: u16, http: u16, mock: &WebPushMock) -> String {
    let pushes = dir.join("pushes.jsonl").display().to_string();
    let apps: String = ["v1", "phone", "ios", "monal"]
        .iter()
        .map(|a| format!("[app.{a}]\nprovider = \"log\"\nfile = {pushes:?}\n"))
        .collect();
    format!(
        "data_dir = {data:?}\nrate_limit = 1000\nlog_level = \"debug\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"v1\"]\n\
         conversations = {{ fcm = \"phone\" }}\n\
         siskin = {{ providers = {{ \"tigase:messenger:apns:1\" = \"ios\" }} }}\n\
         [component.monal]\nmodules = {{ monalProdiOS = \"monal\" }}\nallow_from = [\"example.com\"]\n\
         [component.push2]\nallow_private_targets = true\nwebpush_ca = {ca:?}\n\
         allow_from = [\"example.com\"]\n{apps}",
        data = dir.join("data").display().to_string(),
        ca = mock.pki.ca_pem.display().to_string(),
    )
}

/// The value of one sample of the exposition, `None` when absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{')?;
        let got: Vec<&str> = rest.strip_suffix('}')?.split(',').collect();
        (n == name && got.len() == want.len() && want.iter().all(|w| got.contains(&w.as_str())))
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// Pushes recorded by the log profiles, by app profile.
fn recorded(app: &AppServer, profile: &str) -> usize {
    app.pushes().iter().filter(|p| p["type"] == profile).count()
}

#[test]
fn every_dialect_passes_one_throttle_and_is_counted() {
    let mock = WebPushMock::start();
    let dir = TempDir::new("pipeline");
    let x = FakeXmpp::new();
    let http = free_port();
    let app = AppServer::start(&dir.0, &config(&dir.0, x.port, http, &mock), http);
    let mut c = x.accept(T);
    let ok = || ("result".to_owned(), String::new());

    // Registrations of three dialects.
    let v1 = register(&mut c, "v1", "dev-v1", "tok-v1");
    let r = c.iq(&conversations_register(
        "c1",
        "user@example.com/phone",
        "a1",
        "tok-p2",
    ));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let (p2_node, p2_secret) = (one(&r, "node"), one(&r, "secret"));
    let r = c.iq(&siskin_register(
        "s1",
        "user@example.com/iphone",
        "tigase:messenger:apns:1",
        SISKIN,
        "",
    ));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let siskin_node = one(&r, "node");

    // Three pushes each to one device and priority: every one is accepted,
    // the first goes out, the second is held to the window's end, the third
    // coalesced with it.
    let endpoint = format!("https://127.0.0.1:{}/wpush/dev1", mock.port);
    for i in 0..3 {
        let r = c.iq(&publish_iq(
            &format!("v{i}"),
            &v1.node,
            &v1.secret,
            Some("hi"),
        ));
        assert_eq!(outcome(&r), ok(), "v1 #{i}: {r:?}");
        let r = c.iq(&publish_iq(
            &format!("p{i}"),
            &p2_node,
            &p2_secret,
            Some("hi"),
        ));
        assert_eq!(outcome(&r), ok(), "p2 #{i}: {r:?}");
        let notification = "<notification xmlns='urn:xmpp:push:0'/>";
        let r = c.iq(&siskin_publish(
            &format!("s{i}"),
            "user@example.com",
            &siskin_node,
            notification,
        ));
        assert_eq!(outcome(&r), ok(), "siskin #{i}: {r:?}");
        let r = c.iq(&monal_publish(&format!("m{i}"), MONAL, "monalProdiOS"));
        assert_eq!(outcome(&r), ok(), "monal #{i}: {r:?}");
        // Push 2.0 answers only failures.
        c.send(&push2_message(&format!("w{i}"), &endpoint, ""));
    }

    // The counters settle once the Web Push delivery is counted.
    let deadline = Instant::now() + T;
    let metrics = loop {
        let (status, text) = app.http("GET", "/metrics", "");
        assert_eq!(status, 200, "{text}");
        let webpush = |o| {
            sample(
                &text,
                "push_appserver_pushes_total",
                &[("app", "webpush"), ("outcome", o)],
            )
        };
        if (webpush("delivered"), webpush("throttled")) == (Some(1.0), Some(2.0))
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for profile in ["v1", "phone", "ios", "monal", "webpush"] {
        let pushes = |o| {
            sample(
                &metrics,
                "push_appserver_pushes_total",
                &[("app", profile), ("outcome", o)],
            )
        };
        assert_eq!(
            (pushes("delivered"), pushes("throttled")),
            (Some(1.0), Some(2.0)),
            "{profile}: one sent, two held back\n{metrics}"
        );
    }
    for profile in ["v1", "phone", "ios"] {
        assert_eq!(
            sample(
                &metrics,
                "push_appserver_registration_changes_total",
                &[("type", profile), ("change", "register")]
            ),
            Some(1.0),
            "{profile}: registrations of every dialect are counted\n{metrics}"
        );
    }
    // What reached the providers: one push per dialect, nothing more.
    std::thread::sleep(Duration::from_millis(300));
    for profile in ["v1", "phone", "ios", "monal"] {
        assert_eq!(recorded(&app, profile), 1, "{profile}");
    }
    assert_eq!(mock.seen().len(), 1, "one Web Push request");
}
