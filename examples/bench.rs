//! Load benchmark: plays the XMPP server side of XEP-0114 on loopback,
//! starts the `push-appserver` binary against it (log provider, no file),
//! registers M devices through the ad-hoc command, then floods N publish
//! iqs with a window of W in flight. Reports pushes/s, p50/p99 reply
//! latency, the server's CPU time per push and its idle and peak RSS.
//!
//! cargo build --release && cargo run --release --example bench -- --pushes 200000 --window 256
//!
//! `--provider apns` or `--provider fcm` sends through the real provider to
//! a mock APNS / FCM (HTTP/2 over TLS on 127.0.0.1) run inside this process,
//! so the full path is measured: component in, provider out.
//!
//! Bounded: at most `--pushes` iqs and `--max-secs` seconds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;

#[path = "support/latency.rs"]
mod latency;
#[path = "support/procfs.rs"]
mod procfs;
use procfs::{cpu_secs, status_kib};

// The tests' mock: only part of it is used here.
#[allow(dead_code)]
#[path = "../tests/support/fcm_mock.rs"]
mod fcm_mock;
// The tests' mock: only part of it is used here.
#[allow(dead_code)]
#[path = "../tests/support/h2_mock.rs"]
mod h2_mock;
// The tests' mock: only part of it is used here.
#[allow(dead_code)]
#[path = "../tests/support/pki.rs"]
mod pki;
use push_appserver::xml::{parse_element, parse_header, Frame, Framer};

/// push-appserver load benchmark (loopback only)
#[derive(FromArgs)]
struct Args {
    /// app server binary (default: target/release/push-appserver)
    #[argh(option, default = "String::from(\"target/release/push-appserver\")")]
    binary: String,
    /// registered devices
    #[argh(option, default = "1000")]
    devices: usize,
    /// publish iqs to send
    #[argh(option, default = "200000")]
    pushes: usize,
    /// iqs in flight at most
    #[argh(option, default = "256")]
    window: u64,
    /// give up after this many seconds
    #[argh(option, default = "120")]
    max_secs: u64,
    /// log (default), apns or fcm (to an in-process mock)
    #[argh(option, default = "String::from(\"log\")")]
    provider: String,
}

/// Keeps the in-process mocks alive.
#[allow(dead_code)]
enum Mock {
    None,
    Apns(Box<(h2_mock::MockServer, pki::Pki)>),
    Fcm(Box<fcm_mock::Google>),
}

/// The `[app.<type>]` body for the chosen provider, and its mock.
fn provider_config(provider: &str, dir: &std::path::Path) -> (String, Mock) {
    match provider {
        "log" => (
            "provider = \"log\"\npush_priority = \"auto\"\n".into(),
            Mock::None,
        ),
        "apns" => {
            let pki = pki::Pki::new();
            let server = smol::block_on(h2_mock::start(
                &pki,
                h2_mock::MockOptions::default(),
                Arc::new(|_| h2_mock::Reply::ok()),
            ));
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let p8 = dir.join("AuthKey.p8");
            std::fs::write(&p8, key.serialize_pem()).unwrap();
            let cfg = format!(
                "provider = \"apns\"\ntopic = \"org.example.bench\"\nendpoint = \"{}\"\n\
                 capath = {:?}\nauth_key = {:?}\nkey_id = \"ABCDE12345\"\nteam_id = \"TEAM123456\"\n",
                server.url(),
                pki.ca_pem.display().to_string(),
                p8.display().to_string()
            );
            (cfg, Mock::Apns(Box::new((server, pki))))
        }
        "fcm" => {
            let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
            let cfg = format!("provider = \"fcm\"\n{}", google.config());
            (cfg, Mock::Fcm(Box::new(google)))
        }
        other => panic!("unknown provider {other:?} (log, apns, fcm)"),
    }
}

const SECRET: &str = "bench-secret";
const JID: &str = "push.bench";

struct Reader {
    stream: TcpStream,
    framer: Framer,
    buf: Vec<u8>,
}

impl Reader {
    fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.framer.next_frame().expect("bad XML from app server") {
                return Some(f);
            }
            let n = self.stream.read(&mut self.buf).ok()?;
            if n == 0 {
                return None;
            }
            self.framer.push(&self.buf[..n]);
        }
    }
}

fn main() {
    let args: Args = argh::from_env();
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("pa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.toml");
    let (app, _mock) = provider_config(&args.provider, &dir);
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"warn\"\n[http]\nlisten = \"off\"\n\
             [[component]]\njid = \"{JID}\"\nserver = \"127.0.0.1:{port}\"\nsecret = \"{SECRET}\"\n\
             types = [\"bench\"]\n\
             [registrations]\nmax_per_domain = 10000000\ncommands_per_minute_per_domain = 16000000\n\
             commands_per_minute_per_jid = 1000\nnew_per_minute = 16000000\n\
             [limits]\npushes_per_second_per_domain = 1000000\n[app.bench]\n{app}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&args.binary)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.binary));
    let pid = child.id();

    // Bounded: a server that exits (a bad config) must not hang the bench.
    listener.set_nonblocking(true).unwrap();
    let accept_deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < accept_deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the server exited before connecting: {status}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the server did not connect within 10 s: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = Reader {
        stream,
        framer: Framer::new(1 << 20),
        buf: vec![0; 64 * 1024],
    };
    let Some(Frame::Header(h)) = reader.next() else {
        panic!("no header")
    };
    assert_eq!(parse_header(&h).unwrap().get_attr("to"), Some(JID));
    writer
        .write_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='bench1'>")
        .unwrap();
    let Some(Frame::Stanza(_hs)) = reader.next() else {
        panic!("no handshake")
    };
    writer.write_all(b"<handshake/>").unwrap();

    // Register devices (pipelined).
    let reg_started = Instant::now();
    let mut regs = String::new();
    for i in 0..args.devices {
        regs.push_str(&format!(
            "<iq type='set' from='u{i}@bench' to='{JID}' id='r{i}'><command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='type'><value>bench</value></field><field var='node'><value>node{i}</value></field><field var='token'><value>{i:064x}</value></field></x></command></iq>"
        ));
    }
    writer.write_all(regs.as_bytes()).unwrap();
    // (node, secret) from each reply: nodes are derived per requester.
    let mut secrets = vec![(String::new(), String::new()); args.devices];
    for _ in 0..args.devices {
        let Some(Frame::Stanza(b)) = reader.next() else {
            panic!("link closed")
        };
        let el = parse_element(&b).unwrap();
        let i: usize = el.get_attr("id").unwrap()[1..].parse().unwrap();
        let field = |var: &str| {
            el.elements()
                .next()
                .and_then(|c| c.elements().next())
                .and_then(|x| x.elements().find(|f| f.get_attr("var") == Some(var)))
                .map(|f| f.elements().next().unwrap().text_content())
                .unwrap_or_else(|| panic!("registration failed: {el:?}"))
        };
        secrets[i] = (field("node"), field("secret"));
    }
    let reg_secs = reg_started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss_kib = status_kib(pid, "VmRSS:");

    // Flood.
    let n = args.pushes;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let cpu0 = cpu_secs(pid);
    let sender = {
        let (sent_at, received, stop) = (sent_at.clone(), received.clone(), stop.clone());
        let window = args.window;
        std::thread::spawn(move || {
            let mut out = String::with_capacity(256 * 1024);
            let mut i = 0usize;
            while i < n && !stop.load(Ordering::Relaxed) {
                let room = window.saturating_sub(i as u64 - received.load(Ordering::Acquire));
                if room == 0 {
                    std::thread::yield_now();
                    continue;
                }
                let batch_end = (i + room as usize).min(n);
                let now = t0.elapsed().as_nanos() as u64;
                for k in i..batch_end {
                    let d = k % secrets.len();
                    out.push_str(&format!(
                        "<iq type='set' from='bench' to='{JID}' id='{k}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{}'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>1</value></field><field var='last-message-body'><value>New Message!</value></field></x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>{}</value></field></x></publish-options></pubsub></iq>",
                        secrets[d].0, secrets[d].1
                    ));
                    sent_at[k].store(now, Ordering::Relaxed);
                }
                writer.write_all(out.as_bytes()).unwrap();
                out.clear();
                i = batch_end;
            }
        })
    };
    let mut latencies = Vec::with_capacity(n);
    let mut errors = 0usize;
    while (received.load(Ordering::Relaxed) as usize) < n {
        if Instant::now() > deadline {
            eprintln!("time limit reached");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let Some(Frame::Stanza(b)) = reader.next() else {
            break;
        };
        let el = parse_element(&b).unwrap();
        if el.get_attr("type") != Some("result") {
            errors += 1;
        }
        let k: usize = el.get_attr("id").unwrap().parse().unwrap();
        let now = t0.elapsed().as_nanos() as u64;
        latencies.push(now.saturating_sub(sent_at[k].load(Ordering::Relaxed)));
        received.fetch_add(1, Ordering::Release);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    let peak_rss_kib = status_kib(pid, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    latencies.sort_unstable();
    let pct = |p: f64| latency::percentile_us(&latencies, p);
    let done = latencies.len();
    println!(
        "devices registered      {} in {:.2}s",
        args.devices, reg_secs
    );
    println!(
        "pushes answered         {done} of {n} ({errors} errors), window {}",
        args.window
    );
    println!("throughput              {:.0} pushes/s", done as f64 / secs);
    println!(
        "reply latency p50 / p99 {:.0} us / {:.0} us",
        pct(0.50),
        pct(0.99)
    );
    println!(
        "server CPU              {:.2} s per 10,000 pushes ({:.1} us per push)",
        cpu / done as f64 * 10_000.0,
        cpu / done as f64 * 1e6
    );
    println!(
        "server RSS idle / peak  {:.1} MiB / {:.1} MiB",
        idle_rss_kib as f64 / 1024.0,
        peak_rss_kib as f64 / 1024.0
    );
}
