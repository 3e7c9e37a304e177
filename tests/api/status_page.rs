//! Issue 18: "is push working?" answered in a browser. The status page
//! and the JSON health it re-reads, loaded by headless Chromium from the
//! running binary, show the truth: a link that is down, the log-only
//! provider, the exact number of registrations, a delivered push, and the
//! link going down again.

use std::time::{Duration, Instant};

use crate::support::browser;
use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

fn status_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/push_appserver/v1/status")
}

/// The page's verdict as the browser shows it, after its script ran.
fn verdict(dom: &str) -> &str {
    let start = dom.find("id=\"verdict\"").expect(dom);
    let text = &dom[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    &text[..text.find('<').unwrap()]
}

fn json_status(port: u16) -> String {
    let (_, doc) = health_json(port, &[("Accept", "application/json")]);
    doc["status"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_status_page_shows_in_a_browser_whether_push_works() {
    let dir = TempDir::new("status-page");
    let x = FakeXmpp::new();
    let port = free_port();
    // debugging off: the page is for every operator, not a debug feature.
    let text =
        config(&dir.0, x.port, port, "", "").replace("debugging = true", "debugging = false");
    let _app = AppServer::start(&dir.0, &text, port);
    let profile = dir.path("chromium");

    // The link is not up yet: the page says so, and names the cause.
    let dom = browser::dom(&status_url(port), 3000, &profile);
    assert_eq!(verdict(&dom), "Push needs attention: link down", "{dom}");
    assert!(
        dom.contains("component push.example.org is not linked"),
        "{dom}"
    );
    assert!(
        dom.contains("app fcm uses the log provider"),
        "the log-only provider is named: {dom}"
    );
    // Only the page's script writes this, after it read the JSON health.
    assert!(dom.contains("Live: checked"), "the script ran: {dom}");

    // Linked, three devices, one push delivered.
    let mut c = x.accept(T);
    let deadline = Instant::now() + T;
    while json_status(port) != "ok" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let regs: Vec<Reg> = (0..3)
        .map(|i| register(&mut c, "fcm", &format!("dev{i}"), &format!("tok{i}")))
        .collect();
    assert_eq!(
        outcome(&c.iq(&publish_iq("p1", &regs[0].node, &regs[0].secret, None))).0,
        "result"
    );
    let dom = browser::dom(&status_url(port), 3000, &profile);
    assert_eq!(verdict(&dom), "Push is working", "{dom}");
    assert!(dom.contains("registrations: 3<"), "exactly 3: {dom}");
    let fcm_row = dom
        .split("<tr class=\"app\">")
        .find(|r| r.contains(">fcm<"))
        .expect("a row for fcm");
    assert!(
        fcm_row.contains("<td>1</td>") && !fcm_row.contains("<td>never</td><td></td></tr>"),
        "one delivered push and its time: {fcm_row}"
    );
    for r in &regs {
        assert!(
            !dom.contains(&r.node) && !dom.contains(&r.secret),
            "no node or secret"
        );
    }

    // The XMPP server goes away: the JSON health and the page turn.
    drop(c);
    let deadline = Instant::now() + T;
    while json_status(port) == "ok" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(json_status(port), "link down");
    let dom = browser::dom(&status_url(port), 3000, &profile);
    assert_eq!(verdict(&dom), "Push needs attention: link down", "{dom}");
}

/// The review of issue 18: traffic counts and latest errors are for the
/// operator, not for a stranger who can reach a public `http.listen`
/// (they would let one line up deliveries with messages sent to a
/// victim). A client outside `[http] status_from` (here 203.0.113.5,
/// named by a trusted proxy on loopback) gets the status word only.
#[test]
fn strangers_get_the_status_word_and_no_status_page() {
    let dir = TempDir::new("status-stranger");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = config(&dir.0, x.port, port, "", "")
        .replace("[http]\n", "[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let _app = AppServer::start(&dir.0, &text, port);
    let _c = x.accept(T);
    let stranger = [
        ("X-Forwarded-For", "203.0.113.5"),
        ("Accept", "application/json"),
    ];
    let deadline = Instant::now() + T;
    let mut answer = health_json(port, &stranger);
    while answer.0 != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        answer = health_json(port, &stranger);
    }
    assert_eq!(answer.1, serde_json::json!({"status": "ok"}));
    let (status, body) = http(port, "GET", "/push_appserver/v1/status", "", &stranger[..1]);
    assert_eq!(status, 403, "{body}");
    // The operator on loopback sees everything (Accept in any case).
    let (_, doc) = health_json(port, &[("Accept", "Application/JSON")]);
    assert!(
        doc["apps"].is_array() && doc["version"].is_string(),
        "{doc}"
    );
    assert_eq!(
        http(port, "GET", "/push_appserver/v1/status", "", &[]).0,
        200
    );
}
