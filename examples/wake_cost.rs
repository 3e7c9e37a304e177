//! What one sleep and wake-up costs on this machine: a child process echoes
//! 700-byte messages back over loopback TCP with blocking reads, so each
//! round trip puts it to sleep in the kernel once and wakes it once. Its CPU
//! time per round trip is the floor under any server's CPU per push at
//! window 1, where every push waits for two such wake-ups (the publish from
//! the XMPP server, the answer from APNS or FCM). BENCHMARKS.md compares
//! the app server against it.
//!
//! `--smol` makes the child echo with smol (async-io's reactor, as the app
//! server does): the difference is what the runtime adds per wake-up.
//!
//! cargo build --release --example wake_cost && ./target/release/examples/wake_cost [--smol]
//!
//! Bounded: `--round-trips` (default 50,000) and `--max-secs` (default 60).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use argh::FromArgs;

#[path = "support/procfs.rs"]
mod procfs;

/// CPU per round trip of a blocking loopback echo (see the file's doc)
#[derive(FromArgs)]
struct Args {
    /// round trips to time
    #[argh(option, default = "50_000")]
    round_trips: u64,
    /// give up after this many seconds
    #[argh(option, default = "60")]
    max_secs: u64,
    /// echo with smol's async sockets instead of blocking ones
    #[argh(switch)]
    smol: bool,
    /// run as the echoing child (internal)
    #[argh(switch)]
    echo: bool,
}

/// The child: accepts one connection and echoes until it closes.
fn echo() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    println!("{}", listener.local_addr().expect("address").port());
    let (mut s, _) = listener.accept().expect("accept");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The child with smol: the same echo through async-io's reactor.
fn echo_smol() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        println!("{}", listener.local_addr().expect("address").port());
        let (mut s, _) = listener.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

fn main() {
    let args: Args = argh::from_env();
    if args.echo {
        return if args.smol { echo_smol() } else { echo() };
    }
    let me = std::env::current_exe().expect("own path");
    let mut child = Command::new(me)
        .arg("--echo")
        .args(args.smol.then_some("--smol"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo child");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut port)
        .expect("child port");
    let port: u16 = port.trim().parse().expect("a port number");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let limit = Duration::from_secs(args.max_secs);
    let msg = [b'x'; 700];
    let mut buf = [0u8; 4096];
    let (t0, cpu0) = (Instant::now(), procfs::cpu_secs(child.id()));
    let mut done = 0u64;
    while done < args.round_trips && t0.elapsed() < limit {
        s.write_all(&msg).expect("write");
        let mut got = 0;
        while got < msg.len() {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => panic!("the echo child went away"),
                Ok(n) => got += n,
            }
        }
        done += 1;
    }
    let (secs, cpu) = (
        t0.elapsed().as_secs_f64(),
        procfs::cpu_secs(child.id()) - cpu0,
    );
    drop(s);
    let _ = child.wait();
    println!(
        "round trips             {done} in {secs:.2} s ({:.0}/s)",
        done as f64 / secs
    );
    println!(
        "echo CPU                {:.1} us per round trip (one sleep and one wake-up, a read and a write; {})",
        cpu / done.max(1) as f64 * 1e6,
        if args.smol { "smol" } else { "blocking" }
    );
}
