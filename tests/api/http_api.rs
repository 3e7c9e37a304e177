//! The seed's HTTP API against the running binary.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

fn cfg(dir: &std::path::Path, xmpp: u16, http: u16, debugging: bool, rps: u32) -> String {
    cfg_with(dir, xmpp, http, debugging, rps, "")
}

fn cfg_with(
    dir: &std::path::Path,
    xmpp: u16,
    http: u16,
    debugging: bool,
    rps: u32,
    extra_http: &str,
) -> String {
    format!(
        "data_dir = \"{data}\"\ndebugging = {debugging}\nrate_limit = 0\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\nrequests_per_second = {rps}\n{extra_http}\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\nsecret = \"{SECRET}\"\ntypes = [\"fcm\"]\n\
         [[component]]\njid = \"push2.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\nsecret = \"{SECRET}\"\ntypes = [\"fcm\", \"apns\"]\n\
         [app.fcm]\nprovider = \"log\"\nfile = \"{pushes}\"\n[app.apns]\nprovider = \"log\"\nfile = \"{pushes}\"\n",
        data = dir.join("data").display(),
        pushes = dir.join("pushes.jsonl").display(),
    )
}

fn lines(body: &str) -> Vec<&str> {
    body.lines().collect()
}

#[test]
fn register_push_unregister_in_the_seeds_text_format() {
    let dir = TempDir::new("http");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);

    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/register",
        "type=fcm&node=dev%201&token=tok",
    );
    assert_eq!(s, 200, "{b}");
    let l = lines(&b);
    assert_eq!((l[0], l[1]), ("OK", "dev 1"));
    let secret = l[2].to_owned();
    assert_eq!(secret.len(), 64);

    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node=dev%201&secret={secret}"),
    );
    assert_eq!((s, lines(&b)), (200, vec!["OK", "dev 1"]));
    let p = app.wait_pushes(1, T);
    assert_eq!(
        (p[0]["node"].as_str(), p[0]["token"].as_str()),
        (Some("dev 1"), Some("tok"))
    );

    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/push",
        "node=dev%201&secret=nope",
    );
    assert_eq!((s, lines(&b)[0]), (403, "ERROR"));
    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/register",
        "type=pigeon&node=n&token=t",
    );
    assert_eq!((s, lines(&b)[0]), (400, "ERROR"));
    assert!(b.contains("pigeon"), "{b}");
    let (s, _) = app.http("POST", "/push_appserver/v1/register", "type=fcm&node=n");
    assert_eq!(s, 400);

    let (s, b) = app.http("GET", "/push_appserver/v1/settings", "");
    assert_eq!(s, 200);
    assert!(b.contains("dev 1"), "{b}");
    let (s, b) = app.http("GET", "/push_appserver/v1/settings/dev%201", "");
    assert_eq!(s, 200);
    assert!(
        b.contains("last_successful_push") && b.contains("tok"),
        "{b}"
    );
    assert!(!b.contains(&secret), "the secret is not shown");

    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/unregister",
        &format!("type=fcm&node=dev%201&secret={secret}"),
    );
    assert_eq!((s, lines(&b)), (200, vec!["OK", "dev 1", secret.as_str()]));
    let (s, _) = app.http(
        "POST",
        "/push_appserver/v1/unregister",
        &format!("type=fcm&node=dev%201&secret={secret}"),
    );
    assert_eq!(s, 404);
    let (s, _) = app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node=dev%201&secret={secret}"),
    );
    assert_eq!(s, 404);

    // Debug forms on GET.
    let (s, b) = app.http("GET", "/push_appserver/v1/register", "");
    assert_eq!(s, 200);
    assert!(b.contains("<form") && b.contains("name='token'"), "{b}");
    let (s, _) = app.http("GET", "/push_appserver/v1/nothing", "");
    assert_eq!(s, 404);
}

#[test]
fn host_header_picks_the_component() {
    let dir = TempDir::new("http-host");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let host2 = [("Host", "push2.example.org:5280")];
    // apns is only offered by the second component.
    let (s, _) = http(
        port,
        "POST",
        "/push_appserver/v1/register",
        "type=apns&node=a&token=t",
        &[],
    );
    assert_eq!(s, 400);
    let (s, b) = http(
        port,
        "POST",
        "/push_appserver/v1/register",
        "type=apns&node=a&token=t",
        &host2,
    );
    assert_eq!(s, 200, "{b}");
    let (_, list2) = http(port, "GET", "/push_appserver/v1/settings", "", &host2);
    let (_, list1) = app.http("GET", "/push_appserver/v1/settings", "");
    assert!(list2.contains(">a<"), "{list2}");
    assert!(!list1.contains(">a<"), "{list1}");
}

#[test]
fn production_mode_limits_and_health() {
    let dir = TempDir::new("http-prod");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, false, 3), port);
    let (s, b) = app.http("GET", "/push_appserver/v1/health", "");
    assert_eq!(s, 200);
    assert!(b.contains("RUNNING"), "{b}");
    assert_eq!(app.http("GET", "/push_appserver/v1/settings", "").0, 403);
    assert_eq!(app.http("GET", "/push_appserver/v1/register", "").0, 403);
    let big = format!("type=fcm&node=n&token={}", "a".repeat(5000));
    assert_eq!(app.http("POST", "/push_appserver/v1/register", &big).0, 413);
    // 3 requests/s with a burst of 6 were allowed; a quick burst runs out.
    let statuses: Vec<u16> = (0..8)
        .map(|_| app.http("GET", "/push_appserver/v1/health", "").0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[test]
fn stuck_http_clients_do_not_block_pushes() {
    let dir = TempDir::new("http-slow");
    let x = FakeXmpp::new();
    let port = free_port();
    // The stuck requests below are cut only after 30 s.
    let text = cfg_with(
        &dir.0,
        x.port,
        port,
        true,
        1000,
        "request_timeout_secs = 30",
    );
    let app = AppServer::start(&dir.0, &text, port);
    let mut c = x.accept(T);
    let dev = register(&mut c, "fcm", "dev", "tok");
    // Occupy both HTTP threads with requests whose bodies never arrive.
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /push_appserver/v1/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntype=").unwrap();
        stuck.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let r = c.iq(&publish_iq("p", &dev.node, &dev.secret, None));
    assert_eq!(outcome(&r).0, "result");
    // Not held up until the stuck requests are cut; the bound only tells
    // the two apart.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(app.wait_pushes(1, T).len(), 1);
}

/// The body lines after `OK`: (node, secret).
fn registered(reply: (u16, String)) -> (String, String) {
    let (s, b) = reply;
    assert_eq!(s, 200, "{b}");
    let l = lines(&b);
    assert_eq!(l[0], "OK", "{b}");
    (l[1].to_owned(), l[2].to_owned())
}

#[test]
fn http_register_cannot_take_over_a_device_and_unregister_needs_the_secret() {
    let dir = TempDir::new("http-hijack");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let reg = |body: &str| app.http("POST", "/push_appserver/v1/register", body);
    let push = |node: &str, secret: &str| {
        app.http(
            "POST",
            "/push_appserver/v1/push",
            &format!("node={node}&secret={secret}"),
        )
        .0
    };
    let (_, victim) = registered(reg("type=fcm&node=N&token=A"));
    // Same type and token: same secret (idempotent, as the module).
    assert_eq!(registered(reg("type=fcm&node=N&token=A")).1, victim);
    // The attack of issue 17: registering the node with another token
    // rotated the secret and took the device's pushes. Now it needs the
    // node's secret; without it, or with a wrong one, nothing changes.
    let (s, b) = reg("type=fcm&node=N&token=B");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("needs the node's secret"), "{b}");
    assert_eq!(reg("type=fcm&node=N&token=B&secret=zz").0, 403);
    assert_eq!(push("N", &victim), 200, "the device keeps its secret");
    assert_eq!(app.wait_pushes(1, T)[0]["token"], "A", "and its token");
    // The device itself moves to a new token with its secret, keeping it.
    let (_, again) = registered(reg(&format!("type=fcm&node=N&token=B&secret={victim}")));
    assert_eq!(again, victim);
    assert_eq!(push("N", &victim), 200);
    assert_eq!(app.wait_pushes(2, T)[1]["token"], "B");

    // Unregister without or with a wrong secret: 403, still registered.
    let unreg = |body: &str| app.http("POST", "/push_appserver/v1/unregister", body);
    assert_eq!(unreg("type=fcm&node=N").0, 403);
    assert_eq!(unreg("type=fcm&node=N&secret=zz").0, 403);
    assert_eq!(push("N", &victim), 200, "still registered");
    let (s, b) = unreg(&format!("type=fcm&node=N&secret={victim}"));
    assert_eq!((s, lines(&b)[0]), (200, "OK"), "{b}");
    assert_eq!(push("N", &victim), 404, "removed");
    assert_eq!(app.wait_pushes(3, T).len(), 3);
}

#[test]
fn open_register_restores_the_modules_token_change() {
    let dir = TempDir::new("http-open-register");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = cfg_with(&dir.0, x.port, port, true, 1000, "open_register = true");
    let app = AppServer::start(&dir.0, &text, port);
    let reg = |body: &str| app.http("POST", "/push_appserver/v1/register", body);
    let (_, first) = registered(reg("type=fcm&node=N&token=A"));
    // Without a secret: a new token and a fresh secret, as the module did.
    let (_, second) = registered(reg("type=fcm&node=N&token=B"));
    assert_ne!(first, second);
    // A wrong secret is still wrong.
    assert_eq!(reg("type=fcm&node=N&token=C&secret=zz").0, 403);
    assert!(
        app.stderr().contains("open_register"),
        "warned at start: {}",
        app.stderr()
    );
}

#[test]
fn http_cannot_touch_a_registration_made_over_xmpp() {
    let dir = TempDir::new("http-owned");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let mut c = x.accept(T);
    let dev = register(&mut c, "fcm", "phone", "tok");
    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/register",
        &format!("type=fcm&node={}&token=evil", dev.node),
    );
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("belongs to another registration"), "{b}");
    let (s, _) = app.http(
        "POST",
        "/push_appserver/v1/unregister",
        &format!("type=fcm&node={}&secret={}", dev.node, dev.secret),
    );
    assert_eq!(s, 403);
    // HTTP has no identity: an owned registration is unknown to /push.
    let (s, _) = app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node={}&secret={}", dev.node, dev.secret),
    );
    assert_eq!(s, 404);
    // Unchanged: the owner's server still pushes to the owner's token.
    let r = c.iq(&publish_iq("p", &dev.node, &dev.secret, None));
    assert_eq!(outcome(&r).0, "result");
    let p = app.wait_pushes(1, T);
    assert_eq!((p.len(), p[0]["token"].as_str()), (1, Some("tok")));
}

#[test]
fn open_unregister_restores_the_seeds_behaviour() {
    let dir = TempDir::new("http-open");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = cfg_with(&dir.0, x.port, port, true, 1000, "open_unregister = true");
    let app = AppServer::start(&dir.0, &text, port);
    let (_, secret) = registered(app.http(
        "POST",
        "/push_appserver/v1/register",
        "type=fcm&node=N&token=A",
    ));
    // A wrong secret is still wrong; no secret at all is the seed's way.
    let unreg = |body: &str| app.http("POST", "/push_appserver/v1/unregister", body);
    assert_eq!(unreg("type=fcm&node=N&secret=00").0, 403);
    let (s, b) = unreg("type=fcm&node=N");
    assert_eq!((s, lines(&b)), (200, vec!["OK", "N", secret.as_str()]));
    assert_eq!(unreg("type=fcm&node=N").0, 404);
    assert!(
        app.stderr().contains("open_unregister"),
        "warned at start: {}",
        app.stderr()
    );
}

#[test]
fn answers_tell_browsers_not_to_sniff_their_type() {
    use std::io::{Read, Write};
    let dir = TempDir::new("http-nosniff");
    let x = FakeXmpp::new();
    let port = free_port();
    let _app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let deadline = std::time::Instant::now() + T;
    while health(port).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (method, path) in [("GET", HEALTH), ("POST", "/push_appserver/v1/push")] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let head = out.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("X-Content-Type-Options: nosniff")),
            "{method} {path}: {head}"
        );
    }
}

#[test]
fn a_registration_costs_what_a_real_one_does() {
    // The attack of issue 17: registrations with 4 KiB nodes and tokens
    // cost 12.8-14.4 KiB of disk each. Nodes are capped at 256 bytes.
    let dir = TempDir::new("http-field-caps");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let reg = |node: &str| {
        app.http(
            "POST",
            "/push_appserver/v1/register",
            &format!("type=fcm&node={node}&token=t"),
        )
    };
    assert_eq!(reg(&"n".repeat(256)).0, 200);
    let (s, b) = reg(&"n".repeat(257));
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("'node'"), "{b}");
    let (s, _) = reg(&"n".repeat(4000));
    assert_eq!(s, 400);
}

#[test]
fn new_registrations_are_counted_per_client_address_and_per_64() {
    // One address (or one IPv6 /64) gets its own share of new
    // registrations an hour; renewals and other addresses are unaffected.
    let dir = TempDir::new("http-per-client");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = cfg(&dir.0, x.port, port, true, 1000).replace(
        "[http]",
        "[http]\nnew_registrations_per_hour_per_client = 3\ntrusted_proxies = [\"127.0.0.1/32\"]",
    );
    let app = AppServer::start(&dir.0, &text, port);
    let reg = |client: &str, node: &str| {
        http(
            port,
            "POST",
            "/push_appserver/v1/register",
            &format!("type=fcm&node={node}&token=t{node}"),
            &[("X-Forwarded-For", client)],
        )
    };
    for (client, node) in [
        ("192.0.2.1", "a1"),
        ("192.0.2.1", "a2"),
        ("192.0.2.1", "a3"),
    ] {
        assert_eq!(reg(client, node).0, 200, "{node}");
    }
    let (s, b) = reg("192.0.2.1", "a4");
    assert_eq!(s, 429, "{b}");
    assert!(
        b.contains("too many new registrations from this address"),
        "{b}"
    );
    assert_eq!(reg("192.0.2.1", "a1").0, 200, "a renewal costs nothing");
    assert_eq!(reg("192.0.2.2", "b1").0, 200, "another address has its own");
    // Addresses of one IPv6 /64 share one count; the next /64 is apart.
    for node in ["c1", "c2", "c3"] {
        let client = format!("2001:db8:0:0::{}", &node[1..]);
        assert_eq!(reg(&client, node).0, 200, "{node}");
    }
    assert_eq!(reg("2001:db8::ffff:1", "c4").0, 429);
    assert_eq!(reg("2001:db8:0:1::1", "d1").0, 200);
    // The refused nodes were never stored.
    let (s, b) = app.http("POST", "/push_appserver/v1/push", "node=a4&secret=x");
    assert_eq!(s, 404, "{b}");
    println!(
        "one address: 3 of 4 new registrations with new_registrations_per_hour_per_client = 3"
    );
}

#[test]
fn a_flood_of_new_registrations_is_refused_past_the_servers_rate() {
    // The attack of issue 17: 51,000 registrations from 250 addresses grew
    // the process to 472 MB. New registrations now share one server-wide
    // rate, HTTP and XMPP alike; renewals do not count.
    let dir = TempDir::new("http-new-rate");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = cfg(&dir.0, x.port, port, true, 1000)
        .replace("[http]", "[registrations]\nnew_per_minute = 20\n[http]");
    let app = AppServer::start(&dir.0, &text, port);
    let reg = |node: &str| {
        app.http(
            "POST",
            "/push_appserver/v1/register",
            &format!("type=fcm&node={node}&token=t"),
        )
    };
    for i in 0..20 {
        assert_eq!(reg(&format!("n{i}")).0, 200, "n{i}");
    }
    let (s, b) = reg("n20");
    assert_eq!(s, 429, "{b}");
    assert!(b.contains("too many new registrations"), "{b}");
    assert_eq!(reg("n0").0, 200, "a renewal is no new registration");
    let mut c = x.accept(T);
    let e = register_as(&mut c, "u@example.com/r", "fcm", "dev", "tok").unwrap_err();
    assert_eq!(e, ("wait".into(), "resource-constraint".into()));
}

#[test]
fn health_answers_json_with_the_links_and_each_apps_latest_push() {
    let dir = TempDir::new("health-json");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(
        &dir.0,
        &config(&dir.0, x.port, port, "rate_limit = 0", ""),
        port,
    );
    let json = || health_json(port, &[("Accept", "text/html;q=0.9, application/json")]);
    // The link is not up (the handshake waits for the fake server): 503,
    // while the HTML page of the module's users stays as it was.
    let (status, doc) = json();
    assert_eq!(status, 503, "{doc}");
    assert_eq!(doc["status"], "link down");
    assert_eq!(doc["components"][0]["jid"], "push.example.org");
    assert_ne!(doc["components"][0]["link"], "connected");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["uptime_secs"].is_u64());
    let (html_status, html) = app.http("GET", "/push_appserver/v1/health", "");
    assert_eq!(html_status, 200);
    assert!(html.contains("RUNNING"), "{html}");

    let mut c = x.accept(T);
    let deadline = Instant::now() + T;
    let mut up = json();
    while up.0 != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        up = json();
    }
    let (status, doc) = up;
    assert_eq!(
        (status, &doc["status"]),
        (200, &serde_json::json!("ok")),
        "{doc}"
    );
    assert_eq!(doc["components"][0]["link"], "connected");
    let fcm = |doc: &serde_json::Value| {
        doc["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "fcm")
            .cloned()
            .unwrap()
    };
    assert!(fcm(&doc)["last_success"].is_null(), "{doc}");

    // A delivered push shows as the app's latest success.
    let reg = register(&mut c, "fcm", "dev", "tok");
    assert_eq!(
        outcome(&c.iq(&publish_iq("p1", &reg.node, &reg.secret, None))).0,
        "result"
    );
    let (_, doc) = json();
    let last = fcm(&doc)["last_success"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(last.ends_with('Z') && last.len() == 20, "{doc}");
    assert!(!doc.to_string().contains(&reg.node), "no node on the page");
    // Exact counts, not the store's estimate (it said "about 4" for 3).
    assert_eq!(doc["registrations"], 1, "{doc}");
    assert_eq!(fcm(&doc)["pushes"]["delivered"], 1, "{doc}");
    assert_eq!(fcm(&doc)["log_only"], true, "{doc}");
    assert!(
        doc["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("log provider")),
        "{doc}"
    );
}
