//! A TCP proxy in front of a mock provider that can fail the way networks
//! do: refuse connections (nothing listens on the port), or accept them
//! and never send a byte. Entering a fault cuts every open connection, as
//! an outage would. Std threads only; everything stops when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the upstream.
    None,
    /// Nothing listens: connecting fails with ECONNREFUSED.
    Refuse,
    /// Accept, read nothing, answer nothing.
    Hang,
}

#[derive(Default)]
struct Shared {
    fault: Mutex<Option<Fault>>,
    /// Streams to cut when a fault starts (forwarded and hung ones).
    open: Mutex<Vec<TcpStream>>,
    accepted: AtomicUsize,
    peak_open: AtomicUsize,
    stop: AtomicBool,
}

/// See the module doc.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        // Not a port the kernel hands out (port 0): the proxy closes its
        // listener to refuse connections and binds the port again, and an
        // ephemeral port could meanwhile become some test's outgoing
        // connection (the stall tests open thousands).
        let listener = loop {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", crate::support::harness::free_port())) {
                break l;
            }
        };
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        *shared.fault.lock().unwrap() = Some(Fault::None);
        let sh = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(listener, port, upstream, &sh));
        FaultProxy {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Switches the fault; any fault cuts the open connections.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = Some(fault);
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Connections accepted so far (forwarded or hung).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Most connections held open at once.
    pub fn peak_open(&self) -> usize {
        self.shared.peak_open.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.set(Fault::None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(first: TcpListener, port: u16, upstream: SocketAddr, sh: &Arc<Shared>) {
    let mut listener = Some(first);
    while !sh.stop.load(Ordering::SeqCst) {
        let fault = sh.fault.lock().unwrap().unwrap_or(Fault::None);
        if fault == Fault::Refuse {
            // Closing the listener refuses new connections and resets
            // those waiting in its backlog.
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        let client = match l.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        let _ = client.set_nonblocking(false);
        sh.accepted.fetch_add(1, Ordering::SeqCst);
        let mut open = sh.open.lock().unwrap();
        open.retain(|s| s.peer_addr().is_ok());
        if fault == Fault::Hang {
            open.push(client);
        } else {
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            for s in [&client, &server] {
                if let Ok(c) = s.try_clone() {
                    open.push(c);
                }
            }
            pipe(&client, &server);
            pipe(&server, &client);
        }
        let n = open.len();
        sh.peak_open.fetch_max(n, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread; closes both when either ends.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
