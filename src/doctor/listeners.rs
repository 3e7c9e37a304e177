//! The HTTP listeners as a check, and the running server they may belong
//! to: when a push-appserver already answers on `[http] listen`, its own
//! JSON health says how its links are, and no second link is opened.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{Check, Level};
use crate::config::Settings;

/// What the running server's JSON health said.
#[derive(Debug, Clone)]
pub struct Running {
    /// Where it answered.
    pub addr: SocketAddr,
    /// Its health document.
    pub health: serde_json::Value,
}

/// The push-appserver answering on `[http] listen`, if one does.
pub fn running(settings: &Settings) -> Option<Running> {
    let mut addr = settings.http.listen?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    s.write_all(
        b"GET /push_appserver/v1/health HTTP/1.1\r\nHost: localhost\r\n\
          Accept: application/json\r\nConnection: close\r\n\r\n",
    )
    .ok()?;
    // 5 s and 256 KiB in all, however the peer trickles.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < 256 * 1024 && std::time::Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&out);
    let (_, body) = text.split_once("\r\n\r\n")?;
    let health: serde_json::Value = serde_json::from_str(body).ok()?;
    health.get("version")?;
    Some(Running { addr, health })
}

/// One line per listener: free to bind, or served by the running server.
pub fn check(settings: &Settings, running: Option<&Running>) -> Vec<Check> {
    if let Some(r) = running {
        let version = r.health["version"].as_str().unwrap_or("?");
        return vec![Check::new(
            Level::Ok,
            format!("http {}", r.addr),
            format!("a push-appserver {version} is running and answers here; its links are read from its health"),
        )];
    }
    let addrs: Vec<String> = [
        settings.http.listen,
        settings.http.tls.as_ref().map(|t| t.listen),
        settings.metrics.listen.filter(|_| settings.metrics.enabled),
    ]
    .into_iter()
    .flatten()
    .map(|a| a.to_string())
    .collect();
    if addrs.is_empty() {
        return vec![Check::new(Level::Ok, "http", "no listener configured")];
    }
    let what = format!("http {}", addrs.join(", "));
    // Binding needs the executor's reactor for the sockets; they are
    // closed again at once.
    match crate::http::Bound::bind(settings) {
        Ok(_) => vec![Check::new(
            Level::Ok,
            what,
            "free: the server can listen there",
        )],
        Err(e) => vec![Check::new(Level::Fail, what, e.to_string())],
    }
}

/// A component's link as the running server reports it.
pub fn link_of_running(r: &Running, jid: &str) -> Check {
    let what = format!("component {jid}");
    let link = r.health["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["jid"] == jid));
    match link {
        Some(l) if l["link"] == "connected" => {
            Check::new(Level::Ok, what, "the running server's link is connected")
        }
        Some(l) => Check::new(
            Level::Fail,
            what,
            format!(
                "the running server's link is {}: {}",
                l["link"].as_str().unwrap_or("?"),
                l["last_error"].as_str().unwrap_or("no error recorded")
            ),
        ),
        None => Check::new(
            Level::Fail,
            what,
            "the running server has no such component: it runs another configuration",
        ),
    }
}
