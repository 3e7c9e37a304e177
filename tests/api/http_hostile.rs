//! The HTTP API under hostile clients, through the binary on 127.0.0.1:
//! idle floods, slow heads and bodies, descriptor exhaustion, forged
//! forwarding headers, HTTPS with a renewed certificate, and the attack
//! of issue 7 in a bounded form.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);

/// A config with `http` lines added to the `[http]` table.
fn cfg(dir: &std::path::Path, xmpp: u16, http: u16, extra_http: &str) -> String {
    let rps = if extra_http.contains("requests_per_second") {
        ""
    } else {
        "requests_per_second = 100000\n"
    };
    config(dir, xmpp, http, "", "").replacen(
        &format!("listen = \"127.0.0.1:{http}\"\n"),
        &format!("listen = \"127.0.0.1:{http}\"\n{rps}{extra_http}\n"),
        1,
    )
}

fn threads(app: &AppServer) -> u64 {
    proc_field(app.child.id(), "Threads:")
}

fn alive(app: &mut AppServer) -> bool {
    matches!(app.child.try_wait(), Ok(None))
}

/// Waits until /health answers 200.
fn wait_healthy(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some((200, _)) = health(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn start(tag: &str, extra_http: &str) -> (TempDir, FakeXmpp, AppServer) {
    let dir = TempDir::new(tag);
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, extra_http), port);
    assert!(wait_healthy(port, T), "the API came up");
    (dir, x, app)
}

/// Opens `n` connections that send nothing.
fn idle_connections(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect()
}

/// True when the server closed `s` within `timeout` (EOF or reset; any
/// response before it is skipped).
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A POST whose head is complete but whose body (of `len` bytes) is not.
fn stuck_post(port: u16, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(
        format!(
            "POST /push_appserver/v1/register HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\ntype="
        )
        .as_bytes(),
    )
    .unwrap();
    s
}

#[test]
fn idle_connections_cost_no_threads() {
    let (_dir, _x, mut app) = start("http-threads", "");
    std::thread::sleep(Duration::from_millis(200));
    let idle = threads(&app);
    let conns = idle_connections(app.http_port, 500);
    assert_eq!(conns.len(), 500);
    std::thread::sleep(Duration::from_millis(300));
    let busy = threads(&app);
    assert!(alive(&mut app), "the process lives");
    assert!(
        busy.abs_diff(idle) <= 2,
        "threads idle {idle}, with 500 connections {busy}"
    );
    let (status, took) = health(app.http_port).expect("health answers");
    assert_eq!(status, 200);
    eprintln!("health with 500 idle connections open: {took:?}");
}

#[test]
fn a_full_table_evicts_the_oldest_unfinished_request_never_a_served_one() {
    // The request timeout is long: "closed" below must not be mistaken
    // for a timeout. The fcm profile takes 3 s per push, so a push request
    // stays being served meanwhile.
    let dir = TempDir::new("http-evict");
    let x = FakeXmpp::new();
    let port = free_port();
    let text = config(&dir.0, x.port, port, "", "delay_ms = 3000").replacen(
        &format!("listen = \"127.0.0.1:{port}\"\n"),
        &format!(
            "listen = \"127.0.0.1:{port}\"\nrequests_per_second = 100000\n\
             max_connections = 16\nrequest_timeout_secs = 30\n"
        ),
        1,
    );
    let mut app = AppServer::start(&dir.0, &text, port);
    assert!(wait_healthy(port, T), "the API came up");
    let (status, body) = app.http(
        "POST",
        "/push_appserver/v1/register",
        "type=fcm&node=n1&token=t1",
    );
    assert_eq!(status, 200, "{body}");
    let secret = body.lines().nth(2).expect("node and secret").to_owned();

    // The oldest connection has sent a whole request: it is being served.
    let mut served = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let push = format!("node=n1&secret={secret}");
    served
        .write_all(
            format!(
                "POST /push_appserver/v1/push HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{push}",
                push.len()
            )
            .as_bytes(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The attack of issue 17: heads whose bodies never come. They fill
    // the table, yet a real client still gets in, in the place of the
    // oldest of them.
    let mut stuck: Vec<TcpStream> = (0..20).map(|_| stuck_post(port, 4096)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, took) = health(port).expect("a real client gets in");
    assert_eq!(status, 200);
    eprintln!("health beside 20 withheld bodies in a table of 16: {took:?}");
    assert!(
        closed_within(&mut stuck[0], Duration::from_secs(10)),
        "the oldest unfinished request was evicted"
    );
    assert!(
        !closed_within(&mut stuck[19], Duration::from_millis(200)),
        "the newest one stays until its body deadline"
    );
    // The served request finishes normally.
    served
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = [0u8; 12];
    served.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(stuck);
    assert!(wait_healthy(port, T));
    assert!(alive(&mut app));
}

#[test]
fn bodies_that_never_arrive_delay_nothing_and_are_cut_off() {
    let (_dir, _x, mut app) = start(
        "http-deadline",
        "request_timeout_secs = 2\nidle_timeout_secs = 1",
    );
    let port = app.http_port;
    let t0 = Instant::now();
    let mut stuck = [stuck_post(port, 2000), stuck_post(port, 2000)];
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (status, took) = health(port).expect("health answers");
    assert_eq!(status, 200);
    eprintln!("health beside two stuck bodies: {took:?}");
    for s in &mut stuck {
        assert!(closed_within(s, Duration::from_secs(10)));
    }
    assert!(closed_within(&mut silent, Duration::from_secs(10)));
    let cut = t0.elapsed();
    // Cut at the 2 s set above, not at the default 5 s.
    assert!(
        cut >= Duration::from_millis(1800) && cut < Duration::from_millis(4500),
        "{cut:?}"
    );

    // A keep-alive connection serves several requests, then idles out.
    let mut ka = TcpStream::connect(("127.0.0.1", port)).unwrap();
    ka.set_read_timeout(Some(T)).unwrap();
    for _ in 0..3 {
        ka.write_all(format!("GET {HEALTH} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("</html>") {
            let n = ka.read(&mut buf).unwrap();
            assert!(n > 0, "connection kept open");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
    }
    let idle_from = Instant::now();
    assert!(closed_within(&mut ka, Duration::from_secs(10)));
    assert!(idle_from.elapsed() >= Duration::from_millis(800));
    assert!(alive(&mut app));
}

#[test]
fn running_out_of_descriptors_is_survived() {
    let dir = TempDir::new("http-emfile");
    let x = FakeXmpp::new();
    let port = free_port();
    let cfg_path = dir.0.join("config.toml");
    std::fs::write(
        &cfg_path,
        cfg(&dir.0, x.port, port, "request_timeout_secs = 2"),
    )
    .unwrap();
    let stderr_path = dir.0.join("stderr.log");
    let child = Command::new("prlimit")
        .args(["--nofile=64:64", "--"])
        .arg(env!("CARGO_BIN_EXE_push-appserver"))
        .args(["run", "--config"])
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut app = AppServer {
        child,
        dir: dir.0.clone(),
        http_port: port,
        stderr_path,
    };
    assert!(wait_healthy(port, T), "{}", app.stderr());
    // The attack of issue 17: more idle connections than descriptors.
    // max_connections is clamped below the limit, so the table evicts the
    // oldest idle ones before accept ever meets EMFILE, and a real client
    // gets in while they are all still open.
    let conns = idle_connections(port, 200);
    assert_eq!(conns.len(), 200, "the kernel queues what is not accepted");
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(&mut app), "{}", app.stderr());
    for probe in 0..6 {
        let (status, took) =
            health(port).unwrap_or_else(|| panic!("probe {probe}: {}", app.stderr()));
        assert_eq!(status, 200);
        eprintln!("health beside 200 idle connections under 64 descriptors: {took:?}");
    }
    drop(conns);
    assert!(
        wait_healthy(port, Duration::from_secs(5)),
        "{}",
        app.stderr()
    );
    assert!(alive(&mut app));
    let log = app.stderr();
    assert!(log.contains("open files limit (64)"), "{log}");
}

fn get_as(port: u16, forwarded_for: &str) -> u16 {
    http(
        port,
        "GET",
        HEALTH,
        "",
        &[("X-Forwarded-For", forwarded_for)],
    )
    .0
}

#[test]
fn forwarded_for_names_the_client_only_from_trusted_proxies() {
    // 1 request/s with a burst of 2 per client.
    let limited = |extra: &str| {
        let (_d, _x, app) = start("http-proxy", &format!("requests_per_second = 1\n{extra}"));
        let p = app.http_port;
        let a: Vec<u16> = (0..3).map(|_| get_as(p, "203.0.113.1")).collect();
        let b = get_as(p, "198.51.100.7, 10.1.2.3");
        (a, b)
    };
    let (a, b) = limited("trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]");
    assert_eq!(a, vec![200, 200, 429], "one client runs out");
    assert_eq!(b, 200, "another client behind the proxy has its own bucket");
    let (a, b) = limited("");
    assert!(a.contains(&429), "{a:?}");
    assert_eq!(b, 429, "without trusted proxies the header is ignored");
}

/// A CA for the HTTPS test and server certificates for 127.0.0.1.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// (certificate PEM, key PEM, certificate DER) of a new server cert.
    fn server(&self) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Full handshakes only: a resumed session shows the old certificate.
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

/// GET /health over HTTPS: the response text and the server's certificate.
fn https_health(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
) -> Result<(String, Vec<u8>), String> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(
        format!("GET {HEALTH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    Ok((String::from_utf8_lossy(&out).into_owned(), cert))
}

#[test]
fn https_serves_the_api_and_picks_up_a_renewed_certificate() {
    let ca = Ca::new();
    let client = ca.client();
    let dir = TempDir::new("http-tls");
    let (cert1, key1, der1) = ca.server();
    dir.write("cert.pem", &cert1);
    dir.write("key.pem", &key1);
    let x = FakeXmpp::new();
    let (port, tls_port) = (free_port(), free_port());
    let tls = format!(
        "tls_listen = \"127.0.0.1:{tls_port}\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\
         request_timeout_secs = 2"
    );
    let app = AppServer::start(&dir.0, &cfg(&dir.0, x.port, port, &tls), port);
    assert!(wait_healthy(port, T), "{}", app.stderr());
    let (text, cert) = https_health(tls_port, &client).expect("HTTPS works");
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("RUNNING"),
        "{text}"
    );
    assert_eq!(cert, der1);

    // A broken file keeps the old certificate and says so.
    dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.stderr().contains("keeping the previous certificate") && Instant::now() < deadline {
        let (_, cert) = https_health(tls_port, &client).expect("still served");
        assert_eq!(cert, der1);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        app.stderr().contains("keeping the previous certificate"),
        "{}",
        app.stderr()
    );

    // A renewed certificate is served to new connections, no restart.
    let (cert2, key2, der2) = ca.server();
    dir.write("key.pem", &key2);
    dir.write("cert.pem", &cert2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen != der2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = https_health(tls_port, &client).expect("served").1;
    }
    assert!(
        seen == der2,
        "the renewed certificate is served: {}",
        app.stderr()
    );
    assert_eq!(
        https_health(tls_port, &client).unwrap().0.lines().next(),
        Some("HTTP/1.1 200 OK")
    );

    // A TLS client that never says hello is cut off by the request deadline.
    let mut silent = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(10)));
    assert!(
        t0.elapsed() > Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );

    // Missing or unparsable files are refused at start with file, key, reason.
    for (cert, key, bad) in [
        ("missing.pem", "key.pem", "http.tls_cert"),
        ("cert.pem", "cert.pem", "http.tls_key"),
    ] {
        let text = cfg(
            &dir.0,
            x.port,
            port,
            &format!(
                "tls_listen = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\""
            ),
        );
        let path = dir.write("bad.toml", text);
        let out = Command::new(env!("CARGO_BIN_EXE_push-appserver"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("bad.toml") && err.contains(bad), "{err}");
    }
}

#[test]
fn shutdown_closes_idle_connections_and_lets_served_requests_finish() {
    let dir = TempDir::new("http-shutdown");
    let x = FakeXmpp::new();
    let port = free_port();
    let path = dir.write(
        "config.toml",
        cfg(&dir.0, x.port, port, "request_timeout_secs = 30"),
    );
    let settings = push_appserver::config::Settings::load(&path).unwrap();
    let running = push_appserver::server::start(settings).unwrap();
    let api = running.http.as_ref().expect("the API runs");
    assert_eq!(api.addr, Some(([127, 0, 0, 1], port).into()));
    assert!(wait_healthy(port, T));
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut served = stuck_post(port, 23);
    std::thread::sleep(Duration::from_millis(200));
    std::thread::scope(|s| {
        let stopping = s.spawn(|| {
            let t0 = Instant::now();
            smol::block_on(api.shutdown(Duration::from_secs(20)));
            t0.elapsed()
        });
        assert!(
            closed_within(&mut idle, Duration::from_secs(10)),
            "idle closed"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "no new connections"
        );
        served.write_all(b"fcm&node=n&token=t").unwrap();
        served
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut out = String::new();
        let _ = served.read_to_string(&mut out);
        assert!(
            out.starts_with("HTTP/1.1 200") && out.contains("Connection: close"),
            "{out}"
        );
        let took = stopping.join().unwrap();
        // Done once drained, not at the end of the 20 s grace; the bound
        // only tells the two apart.
        assert!(
            took < Duration::from_secs(10),
            "done once drained: {took:?}"
        );
    });
    assert_eq!(api.connections(), 0);
}
