//! Test harness: a fake XMPP server speaking real XEP-0114 on 127.0.0.1,
//! and the `push-appserver` binary run with a generated config.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use push_appserver::xml::{parse_element, Element, Frame, Framer};

pub use super::pki::TempDir;

pub const SECRET: &str = "component-secret";
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A port for the app server to listen on, free when this returns. Taken
/// below the kernel's ephemeral range (from 32768 on Linux), from a
/// counter this process steps through: a port the kernel handed out (port
/// 0) could be given to another test's outgoing connection before the app
/// server binds it, and two tests of one binary never get the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Each test binary starts at its own place in the span.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() * 61 % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// The XMPP server side of XEP-0114.
pub struct FakeXmpp {
    pub listener: TcpListener,
    pub port: u16,
}

impl FakeXmpp {
    pub fn new() -> FakeXmpp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        FakeXmpp { listener, port }
    }

    /// Accepts the next component connection and completes the handshake.
    pub fn accept(&self, timeout: Duration) -> Conn {
        let mut conn = self.accept_raw(timeout);
        conn.handshake(SECRET).expect("handshake");
        conn
    }

    /// Accepts a connection and reads its stream header, no handshake yet.
    pub fn accept_raw(&self, timeout: Duration) -> Conn {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no component connected in {timeout:?}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut c = Conn {
            stream,
            framer: Framer::new(1 << 20),
            stream_id: format!("id{}", fastrand::u32(..)),
        };
        match c.next_frame(Duration::from_secs(5)) {
            Some(Frame::Header(h)) => {
                let h = push_appserver::xml::parse_header(&h).unwrap();
                assert_eq!(
                    h.get_attr("xmlns").or(Some("jabber:component:accept")),
                    Some("jabber:component:accept")
                );
                let to = h.get_attr("to").unwrap().to_owned();
                write!(
                    c.stream,
                    "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
                     xmlns='jabber:component:accept' from='{to}' id='{}'>",
                    c.stream_id
                )
                .unwrap();
            }
            other => panic!("expected a stream header, got {other:?}"),
        }
        c
    }
}

pub struct Conn {
    pub stream: TcpStream,
    framer: Framer,
    pub stream_id: String,
}

impl Conn {
    /// Checks the handshake digest; accepts it if it matches `secret`.
    pub fn handshake(&mut self, secret: &str) -> Result<(), String> {
        let el = self.recv(Duration::from_secs(5)).ok_or("no handshake")?;
        assert_eq!(el.name, "handshake");
        let expected = {
            let d = ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                format!("{}{secret}", self.stream_id).as_bytes(),
            );
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        if el.text_content() == expected {
            self.send("<handshake/>");
            Ok(())
        } else {
            self.send("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
            Err("wrong handshake".into())
        }
    }

    pub fn send(&mut self, xml: &str) {
        self.stream.write_all(xml.as_bytes()).unwrap();
    }

    /// The next frame within `timeout`, None on timeout or EOF.
    pub fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            match self.framer.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(e) => panic!("app server sent bad XML: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return None,
            }
        }
    }

    /// The next stanza within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<Element> {
        match self.next_frame(timeout)? {
            Frame::Stanza(b) => Some(parse_element(&b).unwrap()),
            Frame::End => None,
            Frame::Header(_) => panic!("second header"),
            Frame::Skipped { .. } => panic!("the app server sent a stanza over 1 MiB"),
        }
    }

    /// Sends an iq and waits for the reply with the same id.
    pub fn iq(&mut self, xml: &str) -> Element {
        let sent = parse_element(xml.as_bytes()).unwrap();
        let id = sent.get_attr("id").unwrap().to_owned();
        self.send(xml);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(el) = self.recv(Duration::from_millis(200)) {
                if el.get_attr("id") == Some(id.as_str()) {
                    return el;
                }
            }
        }
        panic!("no reply to iq {id}");
    }

    /// True when the peer closed the TCP connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// `(type, condition)` of an error reply, or ("result", "") for results.
pub fn outcome(reply: &Element) -> (String, String) {
    match reply.get_attr("type") {
        Some("error") => {
            let e = reply
                .get_child("error", "jabber:component:accept")
                .expect("error element");
            let cond = e
                .elements()
                .find(|c| &*c.ns == NS_STANZAS && c.name != "text")
                .map(|c| c.name.clone())
                .unwrap_or_default();
            (e.get_attr("type").unwrap_or_default().to_owned(), cond)
        }
        Some(t) => (t.to_owned(), String::new()),
        None => panic!("iq without type"),
    }
}

pub fn register_iq(id: &str, ty: &str, node: &str, token: &str) -> String {
    format!(
        "<iq type='set' from='user@example.com/res' to='push.example.org' id='{id}'>\
         <command xmlns='{NS_COMMANDS}' node='v1-register-push' action='execute'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='type'><value>{ty}</value></field>\
         <field var='node'><value>{node}</value></field>\
         <field var='token'><value>{token}</value></field></x></command></iq>"
    )
}

/// What `v1-register-push` answered: the node to enable push with (derived
/// from the requester and the device id) and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reg {
    pub node: String,
    pub secret: String,
}

/// The node the app server derives for `owner`'s `device` at
/// push.example.org (pinned by a unit test of the derivation).
pub fn node_of(owner: &str, device: &str) -> String {
    push_appserver::registrations::owner::derive_node("push.example.org", owner, device)
}

/// Registers device `device` for user@example.com through the ad-hoc
/// command.
pub fn register(conn: &mut Conn, ty: &str, device: &str, token: &str) -> Reg {
    register_as(conn, "user@example.com/res", ty, device, token).expect("registered")
}

/// Registers device `device` for `from` through the ad-hoc command: the
/// reply's node and secret, or the error's `(type, condition)`.
pub fn register_as(
    conn: &mut Conn,
    from: &str,
    ty: &str,
    device: &str,
    token: &str,
) -> Result<Reg, (String, String)> {
    let reply = conn.iq(&register_iq(
        &format!("reg-{device}-{}", fastrand::u32(..)),
        ty,
        device,
        token,
    )
    .replace("from='user@example.com/res'", &format!("from='{from}'")));
    if outcome(&reply).0 != "result" {
        return Err(outcome(&reply));
    }
    let cmd = reply.get_child("command", NS_COMMANDS).unwrap();
    assert_eq!(cmd.get_attr("status"), Some("completed"));
    let form = cmd.get_child("x", "jabber:x:data").unwrap();
    let field = |var: &str| {
        form.children_named("field", "jabber:x:data")
            .find(|f| f.get_attr("var") == Some(var))
            .and_then(|f| f.get_child("value", "jabber:x:data"))
            .map(|v| v.text_content())
            .unwrap()
    };
    assert_eq!(field("jid"), "push.example.org");
    let bare = from.split('/').next().unwrap().to_lowercase();
    assert_eq!(field("node"), node_of(&bare, device));
    Ok(Reg {
        node: field("node"),
        secret: field("secret"),
    })
}

/// A `v1-unregister-push` command from `from` naming `node` (a device id or
/// a node).
pub fn unregister_iq(id: &str, from: &str, ty: &str, node: &str) -> String {
    format!(
        "<iq type='set' from='{from}' to='push.example.org' id='{id}'>\
         <command xmlns='{NS_COMMANDS}' node='v1-unregister-push' action='execute'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='type'><value>{ty}</value></field>\
         <field var='node'><value>{node}</value></field></x></command></iq>"
    )
}

pub fn publish_iq(id: &str, node: &str, secret: &str, body: Option<&str>) -> String {
    let body = body
        .map(|b| format!("<field var='last-message-body'><value>{b}</value></field>"))
        .unwrap_or_default();
    format!(
        "<iq type='set' from='user@example.com' to='push.example.org' id='{id}'>\
         <pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item>\
         <notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
         <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
         <field var='message-count'><value>1</value></field>{body}</x></notification>\
         </item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='secret'><value>{secret}</value></field></x></publish-options></pubsub></iq>"
    )
}

/// The app server binary with its config and data.
pub struct AppServer {
    pub child: Child,
    pub dir: PathBuf,
    pub http_port: u16,
    pub stderr_path: PathBuf,
}

pub fn config(
    dir: &Path,
    xmpp_port: u16,
    http_port: u16,
    extra_top: &str,
    extra_app: &str,
) -> String {
    format!(
        "data_dir = \"{data}\"\ndebugging = true\nlog_level = \"debug\"\n{extra_top}\n\
         [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp_port}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"fcm\", \"apns\"]\n\
         [app.fcm]\nprovider = \"log\"\nfile = \"{pushes}\"\n{extra_app}\n\
         [app.apns]\nprovider = \"log\"\npush_priority = \"auto\"\nfile = \"{pushes}\"\n",
        data = dir.join("data").display(),
        pushes = dir.join("pushes.jsonl").display(),
    )
}

/// The binary under test: this build's, or `PUSH_APPSERVER_BIN` (e.g. the
/// release build, for the figures the stall probe prints).
pub fn server_binary() -> std::path::PathBuf {
    std::env::var_os("PUSH_APPSERVER_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_push-appserver").into())
}

impl AppServer {
    pub fn start(dir: &Path, config_text: &str, http_port: u16) -> AppServer {
        Self::start_with(dir, config_text, http_port, &[])
    }

    /// [`AppServer::start`] with extra arguments after `run --config FILE`.
    pub fn start_with(dir: &Path, config_text: &str, http_port: u16, extra: &[&str]) -> AppServer {
        Self::start_env(dir, config_text, http_port, extra, &[])
    }

    /// [`AppServer::start_with`] with extra environment variables.
    pub fn start_env(
        dir: &Path,
        config_text: &str,
        http_port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> AppServer {
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config_text).unwrap();
        let stderr_path = dir.join(format!("stderr-{}.log", fastrand::u32(..)));
        let child = Command::new(server_binary())
            .args(["run", "--config"])
            .arg(&cfg)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        AppServer {
            child,
            dir: dir.to_path_buf(),
            http_port,
            stderr_path,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Lines recorded by the log provider.
    pub fn pushes(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("pushes.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `n` pushes are recorded (or the timeout passes).
    pub fn wait_pushes(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.pushes();
            if p.len() >= n || Instant::now() >= deadline {
                return p;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the server to exit by itself: its
    /// status, or `None` while it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A raw HTTP/1.1 request; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(self.http_port, method, path, body, &[])
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- app server stderr ---\n{}", self.stderr());
        }
    }
}

/// A raw HTTP/1.1 request to 127.0.0.1:port.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("HTTP connect: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: 127.0.0.1\r\n");
    }
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    let body = rest
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Whether the server under test is this debug build, the one with the
/// test hooks (`PA_TEST_*`); if not, says which test skips and why.
pub fn own_debug_build(skipped: &str) -> bool {
    let own = std::env::var_os("PUSH_APPSERVER_BIN").is_none() && cfg!(debug_assertions);
    if !own {
        eprintln!("skipped: {skipped}");
    }
    own
}

/// The health endpoint's path.
pub const HEALTH: &str = "/push_appserver/v1/health";

/// GET the health as JSON with these headers (which must ask for JSON):
/// the status and the document.
pub fn health_json(port: u16, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let (status, body) = http(port, "GET", HEALTH, "", headers);
    let doc = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, doc)
}

/// GET /health on a fresh connection: status and time taken, or None when
/// the connection failed or the page lacks `RUNNING`.
pub fn health(port: u16) -> Option<(u16, Duration)> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(
        format!("GET {HEALTH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    text.contains("RUNNING").then_some((status, t0.elapsed()))
}

/// A numeric field of /proc/PID/status (`VmRSS:`, `Threads:`, ...), 0 if
/// absent.
pub fn proc_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The binary on [`config`] with `extra_top` and `extra_app`, and its
/// component link accepted: the temp dir, the fake XMPP server, the app
/// server and the link's connection.
pub fn start_linked(
    name: &str,
    extra_top: &str,
    extra_app: &str,
) -> (TempDir, FakeXmpp, AppServer, Conn) {
    let dir = TempDir::new(name);
    let xmpp = FakeXmpp::new();
    let http_port = free_port();
    let app = AppServer::start(
        &dir.0,
        &config(&dir.0, xmpp.port, http_port, extra_top, extra_app),
        http_port,
    );
    let conn = xmpp.accept(Duration::from_secs(10));
    (dir, xmpp, app, conn)
}
