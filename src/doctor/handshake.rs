//! The XEP-0114 handshake as a check: connect to the XMPP server's
//! component port, open a stream, send the handshake and read the answer,
//! then close. Bounded: 5 s to connect, 10 s in all, 64 KiB read.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::{Check, Level};
use crate::link::handshake::{error_condition, handshake, stream_header};
use crate::xml::{parse_element, parse_header, Frame, Framer};

const CONNECT: Duration = Duration::from_secs(5);
const ALL: Duration = Duration::from_secs(10);
const MAX_READ: usize = 64 * 1024;

/// Checks the handshake of component `jid` at `server` with `secret`.
pub fn check(jid: &str, server: &str, secret: &str) -> Check {
    let what = format!("component {jid}");
    match attempt(jid, server, secret) {
        Ok(()) => Check::new(Level::Ok, what, format!("{server} accepted the handshake")),
        Err(why) => Check::new(Level::Fail, what, format!("{server}: {why}")),
    }
}

fn attempt(jid: &str, server: &str, secret: &str) -> Result<(), String> {
    let addrs: Vec<_> = server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = String::from("no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => format!(
                        "connection refused: is the XMPP server running, and is this its \
                         component port? ({e})"
                    ),
                    _ => e.to_string(),
                }
            }
        }
    }
    let mut s = stream.ok_or(last)?;
    let deadline = Instant::now() + ALL;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    s.write_all(stream_header(jid).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut framer = Framer::new(MAX_READ);
    let mut read = 0;
    let mut next = |s: &mut TcpStream| -> Result<Frame, String> {
        let mut buf = [0u8; 4096];
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(format!("the server sent bad XML: {e}")),
            }
            if read > MAX_READ {
                return Err("the server sent 64 KiB without an answer to the handshake".into());
            }
            if Instant::now() > deadline {
                return Err("no answer in 10 s".into());
            }
            match s.read(&mut buf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => {
                    read += n;
                    framer.push(&buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let id = match next(&mut s)? {
        Frame::Header(h) => parse_header(&h)
            .ok()
            .and_then(|h| h.get_attr("id").map(str::to_owned))
            .ok_or("the server's stream header has no id")?,
        Frame::Stanza(b) => return Err(stream_error(&b)),
        _ => return Err("the server did not open a stream".into()),
    };
    s.write_all(handshake(&id, secret).as_bytes())
        .map_err(|e| e.to_string())?;
    let answer = next(&mut s)?;
    let _ = s.write_all(b"</stream:stream>");
    match answer {
        Frame::Stanza(b) if parse_element(&b).is_ok_and(|e| e.name == "handshake") => Ok(()),
        Frame::Stanza(b) => Err(stream_error(&b)),
        _ => Err("the server closed the stream".into()),
    }
}

/// A stream error in words, with what it usually means.
fn stream_error(raw: &[u8]) -> String {
    let condition = parse_element(raw)
        .map(|e| error_condition(&e))
        .unwrap_or_else(|_| "unknown".into());
    let hint = match condition.as_str() {
        "not-authorized" => ": the secret differs from the component_secret (Prosody) or password (ejabberd) configured for this JID",
        "host-unknown" | "improper-addressing" => ": the XMPP server has no component with this JID",
        "conflict" => ": another process is connected as this component",
        _ => "",
    };
    format!("the server refused the handshake ({condition}){hint}")
}
