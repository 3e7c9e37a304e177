//! The HTTP listeners as a check, and the running server they may belong
//! to: when a push-appserver already answers on `[http] listen`, its own
//! JSON health says how its links are, and no second link is opened.

use std::net::SocketAddr;
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
    // ureq, the crate's client for small HTTP calls: 5 s and 256 KiB in
    // all, however the peer trickles; a 503 (a link down) is an answer.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .get(format!("http://{addr}/push_appserver/v1/health"))
        .header("Accept", "application/json")
        .call()
        .ok()?;
    let body = answer
        .body_mut()
        .with_config()
        .limit(256 * 1024)
        .read_to_string()
        .ok()?;
    let health: serde_json::Value = serde_json::from_str(&body).ok()?;
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
