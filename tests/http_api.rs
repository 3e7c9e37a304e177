//! The seed's HTTP API against the running binary.

mod common;
#[path = "support/pki.rs"]
mod pki;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(10);

fn cfg(dir: &std::path::Path, xmpp: u16, http: u16, debugging: bool, rps: u32) -> String {
    format!(
        "data_dir = \"{data}\"\ndebugging = {debugging}\nrate_limit = 0\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\nrequests_per_second = {rps}\n\
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
        "type=fcm&node=dev%201",
    );
    assert_eq!((s, lines(&b)), (200, vec!["OK", "dev 1", secret.as_str()]));
    let (s, _) = app.http(
        "POST",
        "/push_appserver/v1/unregister",
        "type=fcm&node=dev%201",
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
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, true, 1000), port);
    let mut c = x.accept(T);
    let secret = register(&mut c, "fcm", "dev", "tok");
    // Occupy both HTTP threads with requests whose bodies never arrive.
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /push_appserver/v1/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntype=").unwrap();
        stuck.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let r = c.iq(&publish_iq("p", "dev", &secret, None));
    assert_eq!(outcome(&r).0, "result");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(app.wait_pushes(1, T).len(), 1);
}
