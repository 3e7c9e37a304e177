//! Footprint benchmark (BENCHMARKS.md, "Footprint budget"): fills a store
//! with N registrations directly through the library (batches of 1,000,
//! one fsync each, not over HTTP), then starts the `push-appserver` binary
//! on it and measures
//!
//! - start to serving `/health` (several starts, SIGTERM in between), and
//!   start to the store being open (it opens after the listeners),
//! - idle RSS with the component link up,
//! - pushes/s and server CPU per push over the link to the `log` provider,
//!   the publishes spread over up to 10,000 devices across the whole store:
//!   first one push per device (each a lookup in the store), then
//!   `--pushes` more (the record cache serves those it holds).
//!
//! ```sh
//! cargo build --release && cargo build --release --example footprint
//! ./target/release/examples/footprint --registrations 1000000 --data /var/tmp/pa-1m
//! ```
//!
//! `--data DIR` keeps the filled store for the next run (filled once per
//! N). Loopback only; bounded by `--pushes` and `--max-secs`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use argh::FromArgs;

#[path = "support/procfs.rs"]
mod procfs;
use procfs::{cpu_secs, status_kib};
use push_appserver::registrations::{NewDevice, Registrations};
use push_appserver::xml::{parse_element, parse_header, Frame, Framer};

/// push-appserver footprint benchmark (loopback only)
#[derive(FromArgs)]
struct Args {
    /// app server binary (default: target/release/push-appserver)
    #[argh(option, default = "String::from(\"target/release/push-appserver\")")]
    binary: String,
    /// registrations in the store
    #[argh(option, default = "100_000")]
    registrations: usize,
    /// data folder to fill (kept) or reuse; default: a temporary one
    #[argh(option)]
    data: Option<PathBuf>,
    /// server starts timed (the first may replay the fill's journal)
    #[argh(option, default = "3")]
    starts: usize,
    /// publish iqs to send
    #[argh(option, default = "100_000")]
    pushes: usize,
    /// iqs in flight at most
    #[argh(option, default = "256")]
    window: usize,
    /// block cache of the server in MiB (`[store] cache_mb`); 0 leaves it
    /// unset: sized by the store (the default)
    #[argh(option, default = "0")]
    cache_mb: u64,
    /// stop with SIGKILL between the timed starts (as after a crash: the
    /// journal is replayed) instead of SIGTERM
    #[argh(switch)]
    kill: bool,
    /// devices the pushes go to, spread across the store (at most 10,000;
    /// the same number at two store sizes compares the stores alone)
    #[argh(option, default = "10_000")]
    devices: usize,
    /// give up after this many seconds (per phase)
    #[argh(option, default = "120")]
    max_secs: u64,
}

const SECRET: &str = "footprint-secret";
const JID: &str = "push.bench";
const SAMPLE: usize = 10_000;

fn du_kib(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += du_kib(&e.path()),
                Ok(m) => total += m.len() / 1024,
                Err(_) => {}
            }
        }
    }
    total
}

/// Fills `data` with `n` registrations (owners `u<i>@bench`) unless a
/// previous run did; returns (node, secret) of up to [`SAMPLE`] devices
/// spread over the whole store.
fn fill(data: &Path, n: usize) -> Vec<(String, String)> {
    let sample_file = data.join(format!("footprint-sample-{n}.txt"));
    if let Ok(s) = std::fs::read_to_string(&sample_file) {
        println!(
            "store                   reused {} ({n} registrations)",
            data.display()
        );
        return s
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
    }
    let t = Instant::now();
    let regs = Registrations::open(&data.join("data"), 4 << 20).expect("open the store");
    let every = (n / SAMPLE).max(1);
    let mut sample = Vec::new();
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let owners: Vec<String> = (i..end).map(|k| format!("u{k}@bench")).collect();
        let devices: Vec<String> = (i..end).map(|k| format!("d{k}")).collect();
        let tokens: Vec<String> = (i..end).map(|k| format!("{k:064x}")).collect();
        let batch: Vec<NewDevice<'_>> = (0..end - i)
            .map(|j| NewDevice {
                owner: &owners[j],
                device: &devices[j],
                token: &tokens[j],
            })
            .collect();
        let done = regs
            .register_owned_batch(JID, "bench", &batch, SystemTime::now())
            .expect("batch registered");
        for (j, r) in done.into_iter().enumerate() {
            if (i + j) % every == 0 {
                sample.push((r.registration.node, r.secret));
            }
        }
        i = end;
    }
    assert_eq!(
        regs.count().expect("count"),
        n as u64,
        "store was not empty"
    );
    regs.sync().expect("sync");
    drop(regs);
    let lines: String = sample.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&sample_file, lines).expect("write the sample");
    println!(
        "store                   filled with {n} registrations in {:.1}s, {:.1} MiB on disk",
        t.elapsed().as_secs_f64(),
        du_kib(&data.join("data")) as f64 / 1024.0
    );
    sample
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `/health` until it answers 200; the time from `started`.
fn until_health(child: &mut Child, port: u16, started: Instant, limit: Duration) -> Duration {
    let req =
        b"GET /push_appserver/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited at start: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = [0u8; 16];
            if s.write_all(req).is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 200")
            {
                return started.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("/health did not answer within {limit:?}");
}

/// Polls the JSON health until the store is open (it opens after the
/// listeners, issue 20); the time from `started`.
fn until_store_open(port: u16, started: Instant, limit: Duration) -> Duration {
    let req = b"GET /push_appserver/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Accept: application/json\r\nConnection: close\r\n\r\n";
    while started.elapsed() < limit {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut answer = Vec::new();
            if s.write_all(req).is_ok() && s.read_to_end(&mut answer).is_ok() {
                let text = String::from_utf8_lossy(&answer);
                // A release from before issue 20 opens its store before it
                // listens and names no "open".
                let older = text.contains("\"store\":") && !text.contains("\"open\":");
                if text.contains("\"open\":true") || older {
                    return started.elapsed();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the store did not open within {limit:?}");
}

fn stop(child: &mut Child, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

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

/// The component link as the XMPP server's side holds it.
struct Link {
    writer: TcpStream,
    reader: Reader,
    next_id: usize,
}

/// What one flood measured.
struct Flood {
    answered: usize,
    errors: usize,
    secs: f64,
    /// Server CPU seconds.
    cpu: f64,
}

impl Link {
    /// Sends `n` publishes over `sample` in order, at most `window`
    /// unanswered, and reads every reply (bounded by `limit`).
    fn flood(
        &mut self,
        pid: u32,
        sample: &[(String, String)],
        n: usize,
        window: usize,
        limit: Duration,
    ) -> Flood {
        let t0 = Instant::now();
        let cpu0 = cpu_secs(pid);
        let (mut sent, mut answered, mut errors) = (0usize, 0usize, 0usize);
        let mut out = String::with_capacity(256 * 1024);
        while answered < n && t0.elapsed() < limit {
            while sent < n && sent - answered < window {
                let (node, secret) = &sample[sent % sample.len()];
                out.push_str(&publish(self.next_id, node, secret));
                self.next_id += 1;
                sent += 1;
            }
            if !out.is_empty() {
                self.writer.write_all(out.as_bytes()).expect("write");
                out.clear();
            }
            let Some(Frame::Stanza(b)) = self.reader.next() else {
                panic!("link closed")
            };
            let el = parse_element(&b).expect("reply");
            if el.get_attr("type") != Some("result") {
                errors += 1;
            }
            answered += 1;
        }
        Flood {
            answered,
            errors,
            secs: t0.elapsed().as_secs_f64(),
            cpu: cpu_secs(pid) - cpu0,
        }
    }
}

fn publish(id: usize, node: &str, secret: &str) -> String {
    format!(
        "<iq type='set' from='bench' to='{JID}' id='{id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>1</value></field><field var='last-message-body'><value>New Message!</value></field></x></notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>{secret}</value></field></x></publish-options></pubsub></iq>"
    )
}

fn main() {
    let args: Args = argh::from_env();
    let limit = Duration::from_secs(args.max_secs);
    let temp = args.data.is_none();
    let dir = args.data.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("pa-footprint-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("data folder");
    let sample = if args.registrations > 0 {
        fill(&dir, args.registrations)
    } else {
        Vec::new()
    };
    // Every k-th of the sample: still spread across the whole store.
    let keep = sample.len().div_ceil(args.devices.max(1)).max(1);
    let sample: Vec<_> = sample.into_iter().step_by(keep).collect();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let xmpp_port = listener.local_addr().expect("addr").port();
    let http_port = free_port();
    let cfg = dir.join("footprint.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"warn\"\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             [[component]]\njid = \"{JID}\"\nserver = \"127.0.0.1:{xmpp_port}\"\n\
             secret = \"{SECRET}\"\ntypes = [\"bench\"]\n\
             [store]\n{}max_registrations = 100000000\n\
             [limits]\npushes_per_second_per_domain = 1000000\n\
             [app.bench]\nprovider = \"log\"\n",
            dir.join("data").display(),
            match args.cache_mb {
                0 => String::new(),
                mb => format!("cache_mb = {mb}\n"),
            }
        ),
    )
    .expect("write config");
    let spawn = || {
        Command::new(&args.binary)
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            // Not inherited: a server left behind must not hold our output open.
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.binary))
    };

    // Start to /health, several times; the last start stays up.
    let mut times = Vec::new();
    let mut opened = Vec::new();
    let mut child = None;
    for k in 0..args.starts.max(1) {
        let started = Instant::now();
        let mut c = spawn();
        times.push(until_health(&mut c, http_port, started, limit).as_secs_f64() * 1000.0);
        opened.push(until_store_open(http_port, started, limit).as_secs_f64() * 1000.0);
        if k + 1 < args.starts.max(1) {
            stop(
                &mut c,
                if args.kill {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                },
            );
        } else {
            child = Some(c);
        }
    }
    let mut child = child.expect("a running server");
    let pid = child.id();
    let shown: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "start to /health        {} ms (starts in order; min {:.0} ms)",
        shown.join(", "),
        times.iter().cloned().fold(f64::MAX, f64::min)
    );
    let shown: Vec<String> = opened.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "start to store open     {} ms (pushes and registrations wait until then)",
        shown.join(", ")
    );

    // The component link, then idle RSS. Servers stopped above may have
    // left connections in the listen backlog: skip those that are dead.
    listener.set_nonblocking(true).expect("nonblocking");
    let t = Instant::now();
    let (mut writer, reader) = loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) if t.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => panic!("the server did not connect: {e}"),
        };
        stream.set_nonblocking(false).expect("blocking");
        stream.set_nodelay(true).expect("nodelay");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = Reader {
            stream,
            framer: Framer::new(1 << 20),
            buf: vec![0; 64 * 1024],
        };
        // A stopped server's header can still be buffered: only a live
        // one answers our header with its handshake.
        let Some(Frame::Header(h)) = reader.next() else {
            continue;
        };
        assert_eq!(parse_header(&h).expect("header").get_attr("to"), Some(JID));
        if writer
            .write_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='fp1'>")
            .is_err()
        {
            continue;
        }
        if let Some(Frame::Stanza(_)) = reader.next() {
            let _ = reader.stream.set_read_timeout(Some(limit));
            break (writer, reader);
        }
    };
    writer.write_all(b"<handshake/>").expect("write");
    std::thread::sleep(Duration::from_secs(1));
    let idle_kib = status_kib(pid, "VmRSS:");
    println!(
        "idle RSS                {:.1} MiB ({} registrations, cache_mb {})",
        idle_kib as f64 / 1024.0,
        args.registrations,
        match args.cache_mb {
            0 => "auto".to_owned(),
            mb => mb.to_string(),
        }
    );

    // Pushes, spread over the sample, with at most `window` unanswered:
    // first each device once (its record is read from the store: the
    // lookups a store's size can make dearer), then `--pushes` more
    // (served from the record cache as far as it holds the sample).
    if !sample.is_empty() && args.pushes > 0 {
        let mut link = Link {
            writer,
            reader,
            next_id: 0,
        };
        let first = link.flood(pid, &sample, sample.len(), args.window, limit);
        let repeat = link.flood(pid, &sample, args.pushes, args.window, limit);
        println!(
            "first push per device   {} pushes ({} errors), {:.0} pushes/s, server CPU {:.1} us per push",
            first.answered,
            first.errors,
            first.answered as f64 / first.secs,
            first.cpu / first.answered.max(1) as f64 * 1e6
        );
        println!(
            "pushes                  {} answered ({} errors) over {} devices, window {}",
            repeat.answered,
            repeat.errors,
            sample.len(),
            args.window
        );
        println!(
            "throughput              {:.0} pushes/s",
            repeat.answered as f64 / repeat.secs
        );
        println!(
            "server CPU per push     {:.1} us",
            repeat.cpu / repeat.answered.max(1) as f64 * 1e6
        );
        println!(
            "server RSS peak         {:.1} MiB",
            status_kib(pid, "VmHWM:") as f64 / 1024.0
        );
    }
    stop(&mut child, libc::SIGTERM);
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
