//! Operating the binary from the outside: `/metrics` validated by a real
//! Prometheus parser after pushes, and SIGHUP reloading the config without
//! dropping the component link.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

/// A config with two log-provider apps: `fcm` (tokens starting `dead`
/// are dead, `fail` fail) and `apns` (answers after 3 s, past the 1 s
/// push timeout). `top` goes before the first table.
fn ops_config(dir: &Path, xmpp: u16, http: u16, top: &str, fcm_file: &str) -> String {
    format!(
        "data_dir = \"{data}\"\nrate_limit = 1\n{top}\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"fcm\", \"apns\"]\n\
         [app.fcm]\nprovider = \"log\"\nfile = \"{fcm}\"\ndead_token_prefix = \"dead\"\n\
         fail_token_prefix = \"fail\"\n\
         [app.apns]\nprovider = \"log\"\ndelay_ms = 3000\n\
         [limits]\npush_timeout_secs = 1\n",
        data = dir.join("data").display(),
        fcm = dir.join(fcm_file).display(),
    )
}

/// Samples by `(name, sorted labels)`.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// The exposition parsed by `prometheus_client.parser` (Debian's
/// python3-prometheus-client, installed here when missing and root):
/// `(name, sorted labels) -> value`. Panics when the parser rejects it.
fn parse_exposition(text: &str) -> Samples {
    const PY: &str = "/usr/bin/python3";
    let have = || {
        Command::new(PY)
            .args(["-c", "import prometheus_client.parser"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !have() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n");
        if root.unwrap_or(false) {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-q", "python3-prometheus-client"])
                .stdout(Stdio::null())
                .status();
        }
        assert!(
            have(),
            "needs {PY} with prometheus_client (apt-get install python3-prometheus-client)"
        );
    }
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as f\n\
        for fam in f(sys.stdin.read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       print(json.dumps([s.name, sorted(s.labels.items()), s.value]))\n";
    let mut child = Command::new(PY)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, labels, v): (String, Vec<(String, String)>, f64) =
                serde_json::from_str(l).unwrap();
            ((name, labels), v)
        })
        .collect()
}

fn value(m: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    *m.get(&(name.to_owned(), l))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

#[test]
fn metrics_parse_and_count_pushes_by_outcome() {
    let dir = TempDir::new("ops-metrics");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(
        &dir.0,
        &ops_config(&dir.0, x.port, port, "", "fcm.jsonl"),
        port,
    );
    let mut c = x.accept(T);

    let live = register(&mut c, "fcm", "live", "token-live");
    let dead = register(&mut c, "fcm", "dead", "dead-token");
    let fail = register(&mut c, "fcm", "fail", "fail-token");
    let slow = register(&mut c, "apns", "slow", "slow-token");
    let push =
        |c: &mut Conn, id: &str, r: &Reg| outcome(&c.iq(&publish_iq(id, &r.node, &r.secret, None)));
    assert_eq!(push(&mut c, "p1", &live).0, "result");
    // Within the 1/s window: held by the throttle, answered at once.
    assert_eq!(push(&mut c, "p2", &live).0, "result");
    assert_eq!(
        push(&mut c, "p3", &dead),
        ("cancel".into(), "item-not-found".into())
    );
    assert_eq!(push(&mut c, "p4", &fail).0, "wait");
    assert_eq!(
        push(&mut c, "p5", &slow),
        ("wait".into(), "remote-server-timeout".into())
    );
    // The held push goes out when its window ends.
    let deadline = Instant::now() + T;
    while lines(&dir.0.join("fcm.jsonl")) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, text) = app.http("GET", "/metrics", "");
    assert_eq!(status, 200, "{text}");
    let m = parse_exposition(&text);
    let pushes = |app: &str, outcome: &str| {
        value(
            &m,
            "push_appserver_pushes_total",
            &[("app", app), ("outcome", outcome)],
        )
    };
    assert_eq!(pushes("fcm", "delivered"), 2.0);
    assert_eq!(pushes("fcm", "throttled"), 1.0);
    assert_eq!(pushes("fcm", "dead_token"), 1.0);
    assert_eq!(pushes("fcm", "failed"), 1.0);
    assert_eq!(pushes("apns", "timed_out"), 1.0);
    assert_eq!(pushes("apns", "delivered"), 0.0);
    let lat = |s: &str, le: Option<&str>| {
        let mut l = vec![("app", "fcm")];
        l.extend(le.map(|le| ("le", le)));
        value(
            &m,
            &format!("push_appserver_provider_latency_seconds{s}"),
            &l,
        )
    };
    assert_eq!(lat("_count", None), 4.0, "four provider calls for fcm");
    assert_eq!(lat("_bucket", Some("+Inf")), 4.0);
    let up = [("component", "push.example.org")];
    assert_eq!(value(&m, "push_appserver_component_up", &up), 1.0);
    assert_eq!(
        value(&m, "push_appserver_component_connects_total", &up),
        1.0
    );
    let reg = |t: &str| {
        value(
            &m,
            "push_appserver_registration_changes_total",
            &[("type", t), ("change", "register")],
        )
    };
    assert_eq!((reg("fcm"), reg("apns")), (3.0, 1.0));
    // The dead token's registration was removed.
    assert_eq!(value(&m, "push_appserver_registrations", &[]), 3.0);
    assert!(value(&m, "push_appserver_store_write_seconds_count", &[]) >= 5.0);
    assert_eq!(value(&m, "push_appserver_store_failures_total", &[]), 0.0);
    assert!(value(&m, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&m, "process_cpu_seconds_total", &[]) > 0.0);
    assert!(text.contains("# TYPE push_appserver_apns_certificate_expiry_timestamp_seconds gauge"));
    let (status, _) = app.http("POST", "/metrics", "");
    assert_eq!(status, 405);
}

#[test]
fn metrics_can_move_to_their_own_listener_or_be_off() {
    let dir = TempDir::new("ops-metrics-listen");
    let x = FakeXmpp::new();
    let (port, mport) = (free_port(), free_port());
    let top = format!("[metrics]\nlisten = \"127.0.0.1:{mport}\"");
    let app = AppServer::start(
        &dir.0,
        &ops_config(&dir.0, x.port, port, &top, "f.jsonl"),
        port,
    );
    let _c = x.accept(T);
    let (status, text) = http(mport, "GET", "/metrics", "", &[]);
    assert_eq!(status, 200);
    parse_exposition(&text);
    assert_eq!(
        http(mport, "GET", HEALTH, "", &[]).0,
        404,
        "only /metrics there"
    );
    assert_eq!(app.http("GET", "/metrics", "").0, 404, "not on the API");
    assert_eq!(app.http("GET", HEALTH, "").0, 200);
    drop(app);

    let dir = TempDir::new("ops-metrics-off");
    let top = "[metrics]\nenabled = false";
    let app = AppServer::start(
        &dir.0,
        &ops_config(&dir.0, x.port, port, top, "f.jsonl"),
        port,
    );
    let _c = x.accept(T);
    assert_eq!(app.http("GET", "/metrics", "").0, 404);
}

fn hup(app: &AppServer) {
    let ok = Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits until the log holds `needle` `n` times.
fn wait_log(app: &AppServer, needle: &str, n: usize) -> String {
    let deadline = Instant::now() + T;
    loop {
        let log = app.stderr();
        if log.matches(needle).count() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn sighup_reloads_apps_and_log_level_on_the_same_stream() {
    let dir = TempDir::new("ops-reload");
    let x = FakeXmpp::new();
    let port = free_port();
    let cfg = |top: &str, file: &str| ops_config(&dir.0, x.port, port, top, file);
    let app = AppServer::start(&dir.0, &cfg("", "a.jsonl"), port);
    let mut c = x.accept(T);
    let (a, b) = (dir.0.join("a.jsonl"), dir.0.join("b.jsonl"));
    let r = register(&mut c, "fcm", "one", "token-1");
    let push = |c: &mut Conn, id: &str| outcome(&c.iq(&publish_iq(id, &r.node, &r.secret, None)));
    assert_eq!(push(&mut c, "p1").0, "result");
    assert_eq!((lines(&a), lines(&b)), (1, 0));
    assert!(
        !app.stderr().contains("has token"),
        "debug lines are off at info"
    );

    // The app profile now records elsewhere, the log level is debug, and
    // a JID may hold two registrations.
    let config = dir.0.join("config.toml");
    let top = "log_level = \"debug\"\n[registrations]\nmax_per_jid = 2";
    std::fs::write(&config, cfg(top, "b.jsonl")).unwrap();
    hup(&app);
    wait_log(&app, "SIGHUP: reloaded", 1);
    std::thread::sleep(Duration::from_millis(1100)); // past the 1/s throttle window
    assert_eq!(
        push(&mut c, "p2").0,
        "result",
        "the same stream still answers"
    );
    assert_eq!(
        (lines(&a), lines(&b)),
        (1, 1),
        "the push used the new settings"
    );
    register(&mut c, "fcm", "two", "token-2");
    wait_log(&app, "has token", 1);
    let third = register_as(&mut c, "user@example.com/res", "fcm", "three", "token-3");
    assert_eq!(third, Err(("cancel".into(), "not-allowed".into())));

    // A broken config is refused; the running one stays.
    std::fs::write(&config, cfg("log_level = \"loud\"", "c.jsonl")).unwrap();
    hup(&app);
    let log = wait_log(&app, "the new configuration is refused", 1);
    assert!(log.contains("log_level"), "the reason is logged:\n{log}");
    let missing = cfg("", "c.jsonl").replace(
        "provider = \"log\"\ndelay_ms",
        "provider = \"fcm\"\nservice_account = \"/nonexistent.json\"\n#",
    );
    std::fs::write(&config, missing).unwrap();
    hup(&app);
    wait_log(&app, "the new configuration is refused", 2);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut c, "p3").0, "result");
    assert_eq!(lines(&b), 2, "still the reloaded settings");
    assert_eq!(lines(&dir.0.join("c.jsonl")), 0);

    // Changes that need a restart are named, and not applied.
    let moved = cfg("log_level = \"debug\"", "b.jsonl").replace(
        &format!("127.0.0.1:{}\"\nsecret", x.port),
        "127.0.0.1:1\"\nsecret",
    );
    std::fs::write(&config, moved).unwrap();
    hup(&app);
    let log = wait_log(&app, "need a restart", 1);
    assert!(log.contains("[[component]]"), "{log}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut c, "p4").0, "result");
    assert_eq!(lines(&b), 3);

    // No new handshake was ever made: one connection, one connect.
    x.listener.set_nonblocking(true).unwrap();
    assert!(x.listener.accept().is_err(), "the link never reconnected");
    let (_, text) = app.http("GET", "/metrics", "");
    let m = parse_exposition(&text);
    let up = [("component", "push.example.org")];
    assert_eq!(
        value(&m, "push_appserver_component_connects_total", &up),
        1.0
    );
    let reloads = |r: &str| value(&m, "push_appserver_config_reloads_total", &[("result", r)]);
    assert_eq!((reloads("applied"), reloads("refused")), (2.0, 2.0));
}

#[test]
fn journal_format_has_priorities_and_no_timestamps() {
    let dir = TempDir::new("ops-journal");
    let x = FakeXmpp::new();
    let port = free_port();
    let top = "log_format = \"journal\"";
    let app = AppServer::start(
        &dir.0,
        &ops_config(&dir.0, x.port, port, top, "f.jsonl"),
        port,
    );
    let _c = x.accept(T);
    let log = wait_log(&app, "connected to", 1);
    assert!(log.contains("<4>push_appserver: push type"), "{log}");
    assert!(
        log.contains("<6>push_appserver::link::session: component"),
        "{log}"
    );
    assert!(
        log.lines().all(|l| l.starts_with('<')),
        "every line starts with its priority, none with a timestamp:\n{log}"
    );
}
