//! Real-path benchmark (issue 9): a private XMPP server on loopback
//! (Prosody or ejabberd, `--through`) with two components, the
//! `push-appserver` binary (APNS provider to an in-process mock over
//! HTTP/2+TLS) and a trivial echo component that answers every iq at once
//! (the ceiling of the XMPP server itself). A c2s client registers the
//! devices through the ad-hoc command, then sends XEP-0357 publishes
//! through the server at fixed windows, first to the echo component, then
//! to the app server. Reports pushes/s, reply latency p50/p99, the CPU per
//! push of the app server and of the XMPP server (from /proc; for
//! ejabberd the beam.smp of the private node and its child processes),
//! the app server's RSS, and whether the store's files changed while only
//! pushes flowed. `--through prosody,ejabberd` runs both, one after the
//! other, each with a fresh app server.
//!
//! cargo build --release --bins --example bench_real
//! ./target/release/examples/bench_real --through prosody,ejabberd --windows 1,64,512
//!
//! Needs `prosody` and `prosodyctl` (Debian `prosody`) and/or ejabberd
//! (Debian `ejabberd`: `erl` and `ERL_LIBS` are read from ejabberdctl).
//! Bounded: at most `--pushes` iqs and `--max-secs` seconds per run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;

#[path = "support/ejabberd.rs"]
mod ejabberd;
#[path = "support/kids.rs"]
mod kids;
#[path = "support/latency.rs"]
mod latency;
#[path = "support/procfs.rs"]
mod procfs;
#[path = "support/xmpp_server.rs"]
mod xmpp_server;
use kids::{kill_kids_on_panic, Kids};
use procfs::{cpu_secs, status_kib};
use xmpp_server::{Kind, Programs, XmppServer};

// The tests' mock: only part of it is used here.
#[allow(dead_code)]
#[path = "../tests/support/h2_mock.rs"]
mod h2_mock;
// The tests' mock: only part of it is used here.
#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;
use push_appserver::link::handshake::{handshake, stream_header};
use push_appserver::xml::{parse_element, parse_header, Element, Frame, Framer};

/// push-appserver real-path benchmark through Prosody and/or ejabberd (loopback only)
#[derive(FromArgs)]
struct Args {
    /// app server binary (default: target/release/push-appserver)
    #[argh(option, default = "String::from(\"target/release/push-appserver\")")]
    binary: String,
    /// XMPP servers to run through, comma-separated: prosody, ejabberd
    /// (default prosody)
    #[argh(option, default = "String::from(\"prosody\")")]
    through: String,
    /// prosody binary (prosodyctl is taken from the same directory)
    #[argh(option, default = "String::from(\"/usr/bin/prosody\")")]
    prosody: String,
    /// ejabberdctl script, read for the erl and ERL_LIBS it uses (never run)
    #[argh(option, default = "String::from(\"/usr/sbin/ejabberdctl\")")]
    ejabberdctl: String,
    /// registered devices
    #[argh(option, default = "5000")]
    devices: usize,
    /// publish iqs per run
    #[argh(option, default = "20000")]
    pushes: usize,
    /// windows (iqs in flight), comma-separated; `4x128` is four c2s
    /// sessions with 128 in flight each
    #[argh(option, default = "String::from(\"1,64,512\")")]
    windows: String,
    /// how the app server authenticates to (mock) APNS: `token` (an ES256
    /// provider token) or `cert` (a TLS client certificate)
    #[argh(option, default = "String::from(\"token\")")]
    apns_auth: String,
    /// the app server's `[store] record_cache` (default: its own default)
    #[argh(option)]
    record_cache: Option<usize>,
    /// give up on a run after this many seconds
    #[argh(option, default = "120")]
    max_secs: u64,
    /// skip the echo-component runs
    #[argh(switch)]
    no_echo: bool,
}

const SECRET: &str = "bench-real-secret";
const PUSH_JID: &str = "push.localhost";
const ECHO_JID: &str = "echo.localhost";
const T: Duration = Duration::from_secs(20);

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A blocking XML stream reader.
struct Reader {
    stream: TcpStream,
    framer: Framer,
    buf: Vec<u8>,
}

impl Reader {
    fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            framer: Framer::new(1 << 20),
            buf: vec![0; 64 * 1024],
        }
    }

    /// The next frame, or `None` when the stream ends or fails.
    fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.framer.next_frame().ok()? {
                return Some(f);
            }
            let n = self.stream.read(&mut self.buf).ok()?;
            if n == 0 {
                return None;
            }
            self.framer.push(&self.buf[..n]);
        }
    }

    fn stanza(&mut self) -> Element {
        match self.next() {
            Some(Frame::Stanza(b)) => parse_element(&b).expect("a well-formed stanza"),
            other => panic!("expected a stanza, got {:?}", other.is_some()),
        }
    }
}

/// A c2s session: SASL PLAIN on the plain loopback stream, then bind.
fn c2s_login(port: u16, user: &str, pw: &str, resource: &str) -> (TcpStream, Reader) {
    let start = Instant::now();
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() > T => panic!("c2s connect: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(T)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let open = b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    w.write_all(open).unwrap();
    let mut r = Reader::new(stream.try_clone().unwrap());
    assert!(matches!(r.next(), Some(Frame::Header(_))));
    let _features = r.stanza();
    let auth = base64(format!("\0{user}\0{pw}").as_bytes());
    w.write_all(
        format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{auth}</auth>")
            .as_bytes(),
    )
    .unwrap();
    let success = r.stanza();
    assert_eq!(success.name, "success", "SASL PLAIN refused: {success:?}");
    // The stream restarts: a fresh parser for the new header.
    let mut r = Reader::new(stream);
    w.write_all(open).unwrap();
    assert!(matches!(r.next(), Some(Frame::Header(_))));
    let _features = r.stanza();
    w.write_all(
        format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>"
        )
        .as_bytes(),
    )
    .unwrap();
    let bound = r.stanza();
    assert_eq!(bound.get_attr("type"), Some("result"), "bind: {bound:?}");
    (w, r)
}

/// The echo component: answers every iq get/set with an empty result,
/// one write for all the replies a read brought.
fn echo_component(port: u16) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("echo connect");
    stream.set_nodelay(true).unwrap();
    let mut w = stream.try_clone().unwrap();
    w.write_all(stream_header(ECHO_JID).as_bytes()).unwrap();
    let mut r = Reader::new(stream);
    let Some(Frame::Header(h)) = r.next() else {
        panic!("echo: no stream header")
    };
    let id = parse_header(&h)
        .ok()
        .and_then(|e| e.get_attr("id").map(str::to_owned))
        .expect("echo: stream id");
    w.write_all(handshake(&id, SECRET).as_bytes()).unwrap();
    let _ok = r.stanza();
    let mut out = String::new();
    loop {
        loop {
            match r.framer.next_frame() {
                Ok(Some(Frame::Stanza(b))) => {
                    let Ok(el) = parse_element(&b) else { continue };
                    let ty = el.get_attr("type").unwrap_or("");
                    if el.name == "iq" && (ty == "get" || ty == "set") {
                        out.push_str(&format!(
                            "<iq type='result' from='{}' to='{}' id='{}'/>",
                            el.get_attr("to").unwrap_or(""),
                            el.get_attr("from").unwrap_or(""),
                            el.get_attr("id").unwrap_or("")
                        ));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !out.is_empty() {
            if w.write_all(out.as_bytes()).is_err() {
                return;
            }
            out.clear();
        }
        let n = match r.stream.read(&mut r.buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = r.buf[..n].to_vec();
        r.framer.push(&data);
    }
}

fn publish(to: &str, id: usize, node: &str, secret: &str) -> String {
    format!(
        "<iq type='set' to='{to}' id='{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>1</value></field><field var='last-message-sender'><value>juliet@capulet.lit/balcony</value></field><field var='last-message-body'><value>New Message!</value></field></x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>{secret}</value></field></x></publish-options></pubsub></iq>"
    )
}

/// One run's figures.
struct Run {
    done: usize,
    errors: usize,
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    app_cpu_us: f64,
    xmpp_cpu_us: f64,
}

/// Sends `n` publishes to `to` over every session at once, `window` in
/// flight on each (session `c` of `C` sends the pushes `k` with
/// `k % C == c`); ids are the push numbers, so late replies of an
/// earlier run are recognised.
#[allow(clippy::too_many_arguments)]
fn run(
    sessions: &mut [(TcpStream, Reader)],
    to: &'static str,
    window: u64,
    n: usize,
    devices: &Arc<Vec<(String, String)>>,
    app_pid: u32,
    server: &XmppServer,
    max: Duration,
) -> Run {
    let deadline = Instant::now() + max;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let t0 = Instant::now();
    let (app0, xmpp0) = (cpu_secs(app_pid), server.cpu_secs());
    let count = sessions.len();
    let shares: Vec<(Vec<u64>, usize)> = std::thread::scope(|scope| {
        let drivers: Vec<_> = sessions
            .iter_mut()
            .enumerate()
            .map(|(c, (w, r))| {
                let mine: Vec<usize> = (c..n).step_by(count).collect();
                let sent_at = Arc::clone(&sent_at);
                scope.spawn(move || drive(w, r, to, window, mine, devices, &sent_at, t0, deadline))
            })
            .collect();
        drivers.into_iter().map(|d| d.join().unwrap()).collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    let (app1, xmpp1) = (cpu_secs(app_pid), server.cpu_secs());
    let errors = shares.iter().map(|s| s.1).sum();
    let mut latencies: Vec<u64> = shares.into_iter().flat_map(|s| s.0).collect();
    latencies.sort_unstable();
    let pct = |p: f64| latency::percentile_us(&latencies, p);
    let done = latencies.len().max(1);
    Run {
        done: latencies.len(),
        errors,
        per_sec: latencies.len() as f64 / secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        app_cpu_us: (app1 - app0) / done as f64 * 1e6,
        xmpp_cpu_us: (xmpp1 - xmpp0) / done as f64 * 1e6,
    }
}

/// One session's share of a run: sends the pushes `mine` with `window`
/// in flight and reads their replies; the latencies (ns) and the errors.
#[allow(clippy::too_many_arguments)]
fn drive(
    w: &TcpStream,
    r: &mut Reader,
    to: &'static str,
    window: u64,
    mine: Vec<usize>,
    devices: &Arc<Vec<(String, String)>>,
    sent_at: &Arc<Vec<AtomicU64>>,
    t0: Instant,
    deadline: Instant,
) -> (Vec<u64>, usize) {
    let n = sent_at.len();
    let total = mine.len();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sent_at, received, stop) = (sent_at.clone(), received.clone(), stop.clone());
        let devices = Arc::clone(devices);
        let mut w = w.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut out = String::with_capacity(256 * 1024);
            let mut i = 0usize;
            while i < total && !stop.load(Ordering::Relaxed) {
                let room = window.saturating_sub(i as u64 - received.load(Ordering::Acquire));
                if room == 0 {
                    // Parked, not spinning: a spinning sender would take a
                    // core from the XMPP server and the components.
                    std::thread::park_timeout(Duration::from_millis(5));
                    continue;
                }
                let end = (i + room as usize).min(total);
                let now = t0.elapsed().as_nanos() as u64;
                for &k in &mine[i..end] {
                    let (node, secret) = &devices[k % devices.len()];
                    out.push_str(&publish(to, k, node, secret));
                    sent_at[k].store(now, Ordering::Relaxed);
                }
                if w.write_all(out.as_bytes()).is_err() {
                    return;
                }
                out.clear();
                i = end;
            }
        })
    };
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0usize;
    while latencies.len() < total {
        if Instant::now() > deadline {
            eprintln!("time limit reached");
            break;
        }
        let Some(frame) = r.next() else { break };
        let Frame::Stanza(b) = frame else { continue };
        let Ok(el) = parse_element(&b) else { continue };
        let Some(k) = el.get_attr("id").and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        if el.name != "iq" || k >= n {
            continue;
        }
        if el.get_attr("type") != Some("result") {
            if errors == 0 {
                eprintln!("first error reply: {el:?}");
            }
            errors += 1;
        }
        let now = t0.elapsed().as_nanos() as u64;
        latencies.push(now.saturating_sub(sent_at[k].load(Ordering::Relaxed)));
        received.fetch_add(1, Ordering::Release);
        sender.thread().unpark();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    (latencies, errors)
}

/// A `--windows` entry: `W`, or `CxW` for C sessions with W in flight each.
fn parse_window(s: &str) -> Option<(usize, u64)> {
    let (c, w) = s.split_once('x').unwrap_or(("1", s));
    let (c, w) = (c.parse::<usize>().ok()?, w.parse::<u64>().ok()?);
    (c >= 1 && w >= 1).then_some((c, w))
}

/// Bytes in use in the store's journals: fjall preallocates a journal
/// file and fills it from the start, so the used part ends at the last
/// byte that is not zero.
fn journal_used(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            total += journal_used(&p);
        } else if p.extension().is_some_and(|x| x == "jnl") {
            if let Ok(b) = std::fs::read(&p) {
                total += b.iter().rposition(|&x| x != 0).map_or(0, |i| i as u64 + 1);
            }
        }
    }
    total
}

/// What every server's run shares: the options, the mock APNS and its PKI.
struct Bench {
    args: Args,
    /// (c2s sessions, window of each).
    windows: Vec<(usize, u64)>,
    cert_auth: bool,
    programs: Programs,
    pki: pki::Pki,
    mock: h2_mock::MockServer,
}

fn main() {
    let args: Args = argh::from_env();
    kill_kids_on_panic();
    let windows: Vec<(usize, u64)> = args
        .windows
        .split(',')
        .map(|w| parse_window(w.trim()).expect("--windows: numbers, or CxW"))
        .collect();
    let cert_auth = match args.apns_auth.as_str() {
        "token" => false,
        "cert" => true,
        other => panic!("--apns-auth: token or cert, not {other}"),
    };
    let kinds = Kind::parse_list(&args.through).unwrap_or_else(|e| panic!("--through: {e}"));
    let dir = std::env::temp_dir().join(format!("pa-bench-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = pki::Pki::new();
    let mock = smol::block_on(h2_mock::start(
        &pki,
        h2_mock::MockOptions {
            client_auth: cert_auth,
            ..Default::default()
        },
        Arc::new(|_| h2_mock::Reply::ok()),
    ));
    let programs = Programs {
        prosody: PathBuf::from(&args.prosody),
        ejabberdctl: PathBuf::from(&args.ejabberdctl),
    };
    let bench = Bench {
        args,
        windows,
        cert_auth,
        programs,
        pki,
        mock,
    };
    for (i, &kind) in kinds.iter().enumerate() {
        if i > 0 {
            println!();
        }
        through(&bench, kind, &dir.join(kind.to_string().to_lowercase()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The whole bench through one server: start it, a fresh app server and
/// the echo component, register the devices, run the windows, report.
fn through(b: &Bench, kind: Kind, dir: &Path) {
    let args = &b.args;
    let mut kids = Kids::default();
    let server = XmppServer::start(
        kind,
        &b.programs,
        dir,
        &mut kids,
        &[PUSH_JID, ECHO_JID],
        SECRET,
        &[("bench", "bench-pw")],
    )
    .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let port = |jid| {
        server
            .component_port(jid)
            .unwrap_or_else(|| panic!("no port for {jid}"))
    };
    let (comp, echo_port) = (port(PUSH_JID), port(ECHO_JID));

    // The app server, with its own store.
    let auth = if b.cert_auth {
        let year = std::time::SystemTime::now() + Duration::from_secs(365 * 86_400);
        let (pem, _) = b.pki.client_pem("bench-client", year);
        format!("cert = {:?}\n", pem.display().to_string())
    } else {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let p8 = dir.join("AuthKey.p8");
        std::fs::write(&p8, key.serialize_pem()).unwrap();
        format!(
            "auth_key = {:?}\nkey_id = \"ABCDE12345\"\nteam_id = \"TEAM123456\"\n",
            p8.display().to_string()
        )
    };
    let app_cfg = dir.join("appserver.toml");
    let data = dir.join("data");
    std::fs::write(
        &app_cfg,
        format!(
            "data_dir = \"{data}\"\nrate_limit = 0\nlog_level = \"warn\"\n[http]\nlisten = \"off\"\n\
             [[component]]\njid = \"{PUSH_JID}\"\nserver = \"127.0.0.1:{comp}\"\nsecret = \"{SECRET}\"\n\
             types = [\"apns\"]\n\
             [registrations]\nmax_per_jid = 1000000\ncommands_per_minute_per_jid = 1000000\n\
             commands_per_minute_per_domain = 1000000\nnew_per_minute = 16000000\n\
             [limits]\npushes_per_second_per_domain = 1000000\n\
             [app.apns]\nprovider = \"apns\"\ntopic = \"org.example.bench\"\nendpoint = \"{url}\"\n\
             capath = {ca:?}\n{auth}",
            data = data.display(),
            url = b.mock.url(),
            ca = b.pki.ca_pem.display().to_string(),
        ) + &args
            .record_cache
            .map(|n| format!("[store]\nrecord_cache = {n}\n"))
            .unwrap_or_default(),
    )
    .unwrap();
    let app = Command::new(&args.binary)
        .args(["run", "--config"])
        .arg(&app_cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.binary));
    let app_pid = kids.push(app);
    std::thread::spawn(move || echo_component(echo_port));

    // The load generator's session; wait until both components answer.
    // One c2s session per client of the widest window; the first also
    // registers the devices.
    let most = b.windows.iter().map(|w| w.0).max().unwrap_or(1);
    let mut sessions: Vec<(TcpStream, Reader)> = (0..most)
        .map(|i| c2s_login(server.c2s, "bench", "bench-pw", &format!("bench{i}")))
        .collect();
    let (w, r) = &mut sessions[0];
    for jid in [PUSH_JID, ECHO_JID] {
        let start = Instant::now();
        loop {
            (&*w)
                .write_all(
                    format!(
                        "<iq type='get' to='{jid}' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>"
                    )
                    .as_bytes(),
                )
                .unwrap();
            let el = r.stanza();
            if el.get_attr("type") == Some("result") {
                break;
            }
            assert!(start.elapsed() < T, "{jid} did not come up: {el:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let devices = Arc::new(register_devices(w, r, args.devices));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "through {}; {} devices registered; load average {}",
        server.describe(),
        args.devices,
        load.trim()
    );
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib = status_kib(app_pid, "VmRSS:");
    let store = data.join("store");
    let journal_before = journal_used(&store);
    let mut pushed = 0;

    println!("| window | target | pushes/s | p50 / p99 ms | app server CPU/push | XMPP server CPU/push | errors |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let max = Duration::from_secs(args.max_secs);
    for &(clients, window) in &b.windows {
        let targets: &[&'static str] = if args.no_echo {
            &[PUSH_JID]
        } else {
            &[ECHO_JID, PUSH_JID]
        };
        for &to in targets {
            let f = run(
                &mut sessions[..clients],
                to,
                window,
                args.pushes,
                &devices,
                app_pid,
                &server,
                max,
            );
            b.mock.seen.lock().unwrap().clear();
            if to == PUSH_JID {
                pushed += f.done;
            }
            let name = if to == ECHO_JID { "echo" } else { "app server" };
            let shown = match clients {
                1 => window.to_string(),
                c => format!("{c}x{window}"),
            };
            println!(
                "| {shown} | {name} | {:.0} | {:.2} / {:.2} | {:.0} µs | {:.0} µs | {} of {} |",
                f.per_sec,
                f.p50_us / 1000.0,
                f.p99_us / 1000.0,
                f.app_cpu_us,
                f.xmpp_cpu_us,
                f.errors,
                f.done
            );
        }
    }
    let journal_after = journal_used(&store);
    println!(
        "app server RSS: idle {:.1} MiB (after registering), peak {:.1} MiB, now {:.1} MiB; \
         store journal grew by {:.1} KiB over {pushed} pushes; APNS requests seen so far: {}",
        idle_kib as f64 / 1024.0,
        status_kib(app_pid, "VmHWM:") as f64 / 1024.0,
        status_kib(app_pid, "VmRSS:") as f64 / 1024.0,
        journal_after.saturating_sub(journal_before) as f64 / 1024.0,
        b.mock.stats.requests()
    );
    // The app server first: it would log the server's going away.
    kids.kill(app_pid);
    drop(sessions);
    server.stop(&mut kids);
}

/// Registers `n` devices through the ad-hoc command, pipelined in chunks;
/// returns each one's `(node, secret)`.
fn register_devices(w: &TcpStream, r: &mut Reader, n: usize) -> Vec<(String, String)> {
    let mut devices = vec![(String::new(), String::new()); n];
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let mut out = String::new();
        for i in chunk {
            out.push_str(&format!(
                "<iq type='set' to='{PUSH_JID}' id='r{i}'><command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='type'><value>apns</value></field><field var='node'><value>dev{i}</value></field><field var='token'><value>{i:064x}</value></field></x></command></iq>"
            ));
        }
        (&*w).write_all(out.as_bytes()).unwrap();
        for _ in chunk {
            let el = r.stanza();
            let i: usize = el
                .get_attr("id")
                .and_then(|id| id.strip_prefix('r'))
                .and_then(|i| i.parse().ok())
                .filter(|&i| i < n)
                .unwrap_or_else(|| panic!("unexpected reply {el:?}"));
            let field = |var: &str| {
                el.elements()
                    .next()
                    .and_then(|c| c.elements().next())
                    .and_then(|x| x.elements().find(|f| f.get_attr("var") == Some(var)))
                    .and_then(|f| f.elements().next().map(|v| v.text_content()))
                    .unwrap_or_else(|| panic!("registration failed: {el:?}"))
            };
            devices[i] = (field("node"), field("secret"));
        }
    }
    devices
}
