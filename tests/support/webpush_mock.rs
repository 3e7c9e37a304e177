//! A Web Push endpoint over TLS (HTTP/1.1) on 127.0.0.1, in the test
//! process: records each request and answers a settable status.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::pki::Pki;

/// One request as the Web Push mock saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request head.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A Web Push endpoint over TLS (HTTP/1.1) on 127.0.0.1 answering `status`.
pub struct WebPushMock {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The status it answers.
    pub status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Its CA, for `webpush_ca`.
    pub pki: Pki,
}

impl WebPushMock {
    pub fn start() -> WebPushMock {
        let pki = Pki::new();
        let config = pki.server_config(false, b"http/1.1");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(201));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, sn) = (status.clone(), seen.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().take(50) {
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p);
                    }
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let s = Seen {
                    head: head.clone(),
                    body: Vec::new(),
                };
                let len: usize = s
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                sn.lock().unwrap().push(Seen { head, body });
                let code = st.load(Ordering::SeqCst);
                let _ = tls.write_all(
                    format!(
                        "HTTP/1.1 {code} X\r\nLocation: https://127.0.0.1:{port}/elsewhere\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        WebPushMock {
            port,
            status,
            seen,
            pki,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
