//! Shared pieces of the reliability tests (`tests/reliability/`): a
//! flooding XEP-0114 component that publishes through a real XMPP server
//! and counts the answer to every iq by id, RSS of a process, and figures
//! (std only, plus the crate's own framer and parser); the fault proxy in
//! front of the mock providers ([`proxy`]), the app server under the
//! power-loss shim ([`rig`]) and the durability model ([`durable`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use push_appserver::xml::{parse_element, parse_header, Element, Frame, Framer};

pub mod durable;
pub mod proxy;
pub mod rig;

/// Whether the long forms run (`PUSH_RELIABILITY_FULL=1`).
pub fn full() -> bool {
    std::env::var("PUSH_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

/// `VmRSS` (or another `/proc/<pid>/status` field) in KiB.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The pid of the process whose command line contains `needle`.
pub fn pid_with_arg(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmd)
            .contains(needle)
            .then_some(pid)
    })
}

/// The `p`-th percentile (0..=100) of `v` (sorted here).
pub fn percentile(v: &mut [Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) * p) / 100]
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// How an iq was answered.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Publishes written to the socket.
    pub sent: u64,
    /// Answers per id (only ids answered at least once).
    pub answers: HashMap<u64, u32>,
    /// `result` answers.
    pub results: u64,
    /// Errors the XMPP server made because the component was away
    /// (Prosody: "Component unavailable"; ejabberd, which then tries
    /// server-to-server: "Access denied by service policy").
    pub bounced: u64,
    /// Other errors, `type/condition`, with counts.
    pub errors: HashMap<String, u64>,
    /// Answers to ids never sent.
    pub unknown: u64,
    /// Connections made to the XMPP server.
    pub connects: u64,
}

impl Tally {
    pub fn duplicates(&self) -> u64 {
        self.answers.values().filter(|n| **n > 1).count() as u64
    }
    pub fn answered(&self) -> u64 {
        self.answers.len() as u64
    }
}

/// An external component (XEP-0114) at a real XMPP server.
pub struct Component {
    stream: TcpStream,
    framer: Framer,
}

impl Component {
    /// Connects and authenticates as `jid` with `secret`.
    pub fn connect(port: u16, jid: &str, secret: &str) -> Result<Component, String> {
        let stream = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500),
        )
        .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let mut c = Component {
            stream,
            framer: Framer::new(1 << 20),
        };
        c.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{jid}'>"
        ))?;
        let id = match c.frame(Duration::from_secs(3))? {
            Some(Frame::Header(h)) => parse_header(&h)
                .map_err(|e| format!("header: {e}"))?
                .get_attr("id")
                .ok_or("no stream id")?
                .to_owned(),
            other => return Err(format!("expected a stream header, got {other:?}")),
        };
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{id}{secret}").as_bytes(),
        );
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        c.send(&format!("<handshake>{hex}</handshake>"))?;
        match c.recv(Duration::from_secs(3))? {
            Some(el) if el.name == "handshake" => Ok(c),
            other => Err(format!("handshake refused: {other:?}")),
        }
    }

    pub fn send(&mut self, xml: &str) -> Result<(), String> {
        self.stream
            .write_all(xml.as_bytes())
            .map_err(|e| format!("write: {e}"))
    }

    /// The next frame within `timeout`; `Ok(None)` on timeout, `Err` when
    /// the stream ended or broke.
    pub fn frame(&mut self, timeout: Duration) -> Result<Option<Frame>, String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16384];
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::End)) => return Err("stream ended".into()),
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => return Err(format!("bad XML from the server: {e}")),
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    continue;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// The next stanza within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Element>, String> {
        match self.frame(timeout)? {
            Some(Frame::Stanza(b)) => parse_element(&b)
                .map(Some)
                .map_err(|e| format!("bad stanza: {e}")),
            Some(other) => Err(format!("unexpected frame {other:?}")),
            None => Ok(None),
        }
    }

    /// Sends an iq and waits (bounded) for the answer with its id.
    pub fn iq(&mut self, id: &str, xml: &str) -> Result<Element, String> {
        self.send(xml)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(el) = self.recv(Duration::from_millis(100))? {
                if el.get_attr("id") == Some(id) {
                    return Ok(el);
                }
            }
        }
        Err(format!("no answer to iq {id}"))
    }
}

/// `(type, condition, text)` of an error answer.
pub fn error_of(el: &Element) -> (String, String, String) {
    let Some(e) = el.elements().find(|c| c.name == "error") else {
        return (String::new(), String::new(), String::new());
    };
    let ns = "urn:ietf:params:xml:ns:xmpp-stanzas";
    let cond = e
        .elements()
        .find(|c| &*c.ns == ns && c.name != "text")
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let text = e
        .elements()
        .find(|c| &*c.ns == ns && c.name == "text")
        .map(|c| c.text_content())
        .unwrap_or_default();
    (
        e.get_attr("type").unwrap_or_default().to_owned(),
        cond,
        text,
    )
}

/// Registers `device` for `from` with `v1-register-push` at `push_jid`:
/// the node and secret of the reply.
pub fn register(
    c: &mut Component,
    from: &str,
    push_jid: &str,
    device: &str,
) -> Result<(String, String), String> {
    let id = format!("reg-{device}");
    let reply = c.iq(
        &id,
        &format!(
            "<iq type='set' from='{from}' to='{push_jid}' id='{id}'>\
             <command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' \
             action='execute'><x xmlns='jabber:x:data' type='submit'>\
             <field var='type'><value>fcm</value></field>\
             <field var='node'><value>{device}</value></field>\
             <field var='token'><value>token-{device}</value></field></x></command></iq>"
        ),
    )?;
    if reply.get_attr("type") != Some("result") {
        return Err(format!("registration refused: {:?}", error_of(&reply)));
    }
    let field = |var: &str| {
        reply
            .elements()
            .find(|c| c.name == "command")?
            .elements()
            .find(|c| c.name == "x")?
            .elements()
            .find(|f| f.get_attr("var") == Some(var))?
            .elements()
            .next()
            .map(|v| v.text_content())
    };
    match (field("node"), field("secret")) {
        (Some(n), Some(s)) => Ok((n, s)),
        _ => Err(format!("registration answer lacks node/secret: {reply:?}")),
    }
}

/// A XEP-0357 publish `f<id>` from `from` to `to`.
pub fn publish(id: u64, from: &str, to: &str, node: &str, secret: &str) -> String {
    format!(
        "<iq type='set' from='{from}' to='{to}' id='f{id}'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item>\
         <notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
         <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
         <field var='message-count'><value>1</value></field></x></notification>\
         </item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='secret'><value>{secret}</value></field></x></publish-options></pubsub></iq>"
    )
}

/// Where and as whom the flood runs.
#[derive(Clone)]
pub struct FloodTarget {
    pub port: u16,
    /// This component's JID (also the `from` of the publishes).
    pub jid: String,
    pub secret: String,
    /// The app server's component JID.
    pub push_jid: String,
    /// (node, secret) of the registrations to publish to.
    pub regs: Vec<(String, String)>,
    /// Most publishes unanswered at once.
    pub window: u64,
}

/// A thread publishing as fast as the window allows, reconnecting (every
/// 20 ms) whenever the XMPP server goes away, and counting every answer.
pub struct Flood {
    pub tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    pub fn start(t: FloodTarget, first: Component) -> Flood {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ta, st) = (tally.clone(), stop.clone());
        let thread = std::thread::spawn(move || flood(t, first, &ta, &st));
        Flood {
            tally,
            stop,
            thread: Some(thread),
        }
    }

    pub fn snapshot(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Stops publishing, waits `settle` for late answers, returns the tally.
    pub fn finish(mut self, settle: Duration) -> Tally {
        std::thread::sleep(settle);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn flood(t: FloodTarget, first: Component, tally: &Mutex<Tally>, stop: &AtomicBool) {
    let mut conn = Some(first);
    let mut next_id: u64 = 0;
    let stopping = || stop.load(Ordering::SeqCst);
    tally.lock().unwrap().connects += 1;
    while !stopping() {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Component::connect(t.port, &t.jid, &t.secret) {
                Ok(c) => {
                    tally.lock().unwrap().connects += 1;
                    c
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        // Unanswered publishes of this connection; those of a lost one are
        // gone with it (answered never, which is allowed).
        let mut outstanding: u64 = 0;
        let broken = loop {
            if stopping() {
                // Publishing ended: collect late answers for a moment.
                let until = Instant::now() + Duration::from_millis(300);
                while Instant::now() < until {
                    match c.recv(Duration::from_millis(20)) {
                        Ok(Some(el)) => count(&el, tally, next_id),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                break false;
            }
            let mut batch = String::new();
            while outstanding < t.window && batch.len() < 32 * 1024 {
                let (node, secret) = &t.regs[(next_id as usize) % t.regs.len()];
                batch.push_str(&publish(next_id, &t.jid, &t.push_jid, node, secret));
                next_id += 1;
                outstanding += 1;
                tally.lock().unwrap().sent += 1;
            }
            if !batch.is_empty() && c.send(&batch).is_err() {
                break true;
            }
            match c.recv(Duration::from_millis(20)) {
                Ok(Some(el)) => {
                    if el.name == "iq" {
                        outstanding = outstanding.saturating_sub(1);
                        count(&el, tally, next_id);
                    }
                }
                Ok(None) => {}
                Err(_) => break true,
            }
        };
        if !broken {
            break;
        }
    }
}

fn count(el: &Element, tally: &Mutex<Tally>, next_id: u64) {
    let mut t = tally.lock().unwrap();
    let id = el
        .get_attr("id")
        .and_then(|i| i.strip_prefix('f'))
        .and_then(|i| i.parse::<u64>().ok());
    match id {
        Some(id) if id < next_id => *t.answers.entry(id).or_default() += 1,
        _ => {
            t.unknown += 1;
            return;
        }
    }
    match el.get_attr("type") {
        Some("result") => t.results += 1,
        _ => {
            let (ty, cond, text) = error_of(el);
            if text.contains("Component unavailable")
                || text.contains("not connected")
                || text.contains("Access denied by service policy")
                || cond == "service-unavailable"
                || cond == "remote-server-not-found"
            {
                t.bounced += 1;
            } else {
                *t.errors.entry(format!("{ty}/{cond}: {text}")).or_default() += 1;
            }
        }
    }
}
