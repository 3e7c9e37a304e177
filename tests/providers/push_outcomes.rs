//! Push outcomes stay in memory while pushes flow (issue 9): the store's
//! files do not grow over many pushes, the outcomes are visible at once on
//! the settings page, and a clean shutdown writes them to the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::harness::*;
use push_appserver::registrations::Registrations;

const T: Duration = Duration::from_secs(10);
const PUSHES: usize = 300;

/// The contents of every file under `dir` (the journal, segments,
/// manifests). Compared whole: fjall preallocates its journal, so a write
/// changes its bytes, not its size.
fn snapshot(dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.metadata().unwrap().is_dir() {
            snapshot(&path, into);
        } else if let Ok(bytes) = std::fs::read(&path) {
            into.insert(path, bytes);
        }
    }
}

/// Files whose contents differ between two snapshots.
fn changed(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = a
        .iter()
        .filter(|(p, bytes)| b.get(*p) != Some(*bytes))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(b.keys().filter(|p| !a.contains_key(*p)).cloned());
    out
}

fn settings_page(app: &AppServer, node: &str) -> String {
    let (status, page) = app.http("GET", &format!("/push_appserver/v1/settings/{node}"), "");
    assert_eq!(status, 200, "{page}");
    page
}

#[test]
fn pushes_write_nothing_to_the_store_until_shutdown() {
    let dir = TempDir::new("outcomes");
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let app = AppServer::start(
        &dir.0,
        &config(
            &dir.0,
            xmpp.port,
            http_port,
            "rate_limit = 0",
            "fail_token_prefix = \"fail-\"",
        ),
        http_port,
    );
    let mut c = xmpp.accept(T);
    let ok = register(&mut c, "fcm", "dev-ok", "tok-ok");
    let bad = register(&mut c, "fcm", "dev-bad", "fail-tok");
    let store = dir.0.join("data").join("store");
    // Registration writes are synced before their reply: nothing is pending.
    let mut before = BTreeMap::new();
    snapshot(&store, &mut before);

    // Pipelined in groups of 50, so the run stays short.
    for group in 0..PUSHES / 50 {
        for i in 0..50 {
            let id = format!("p{group}-{i}");
            let dev = if i % 10 == 0 { &bad } else { &ok };
            c.send(&publish_iq(&id, &dev.node, &dev.secret, None));
        }
        for _ in 0..50 {
            let r = c.recv(T).expect("a reply to every publish");
            assert_eq!(r.name, "iq");
        }
    }
    assert_eq!(app.wait_pushes(PUSHES * 9 / 10, T).len(), PUSHES * 9 / 10);
    let mut after = BTreeMap::new();
    snapshot(&store, &mut after);
    let changed = changed(&before, &after);
    assert!(
        changed.is_empty(),
        "the store's files changed while only pushes flowed: {changed:?}"
    );
    // The outcomes are visible before they are written.
    assert!(settings_page(&app, &ok.node).contains("last_successful_push"));
    assert!(settings_page(&app, &bad.node).contains("last_push_error_reason"));

    let pid = app.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut app = app;
    let status = app.wait_exit(T).expect("still running after SIGTERM");
    assert!(status.success(), "{}", app.stderr());

    // Written at shutdown: another process sees them in the store.
    let regs = Registrations::open(&dir.0.join("data"), 1 << 20).unwrap();
    let s = regs.push_stats("push.example.org", &ok.node).unwrap();
    assert!(s.last_successful_push_ms.is_some(), "{s:?}");
    assert!(s.last_push_error_ms.is_none(), "{s:?}");
    let s = regs.push_stats("push.example.org", &bad.node).unwrap();
    assert!(s.last_push_error_ms.is_some(), "{s:?}");
    assert!(s.last_push_error_reason.is_some(), "{s:?}");
}

#[test]
fn outcomes_are_written_every_flush_interval_while_running() {
    let dir = TempDir::new("outcomes-flush");
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let top = "rate_limit = 0\n[store]\noutcome_flush_secs = 1";
    let _app = AppServer::start(
        &dir.0,
        &config(&dir.0, xmpp.port, http_port, top, ""),
        http_port,
    );
    let mut c = xmpp.accept(T);
    let dev = register(&mut c, "fcm", "dev", "tok");
    let store = dir.0.join("data").join("store");
    let mut before = BTreeMap::new();
    snapshot(&store, &mut before);
    let r = c.iq(&publish_iq("p1", &dev.node, &dev.secret, None));
    assert_eq!(r.get_attr("type"), Some("result"));
    // Within a few flush intervals the journal holds the outcome.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut now = BTreeMap::new();
        snapshot(&store, &mut now);
        if !changed(&before, &now).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no flush within 5 s at outcome_flush_secs = 1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
