//! `/health` as JSON, for monitors and container health checks (`Accept:
//! application/json`): is the process up, is every component linked to
//! its XMPP server, and how did each app's latest pushes go. 503 while a
//! link is down. Names no device, node, token or secret.

use serde_json::{json, Value};

use super::Backend;
use crate::clock::rfc3339;

fn at(ms: u64) -> Value {
    if ms == 0 {
        return Value::Null;
    }
    json!(rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    ))
}

/// The status and the JSON document.
pub fn health(backend: &Backend) -> (u16, String) {
    let components: Vec<Value> = backend
        .links
        .iter()
        .map(|(jid, link)| {
            let state = match (link.is_connected(), link.connects()) {
                (true, _) => "connected",
                (false, 0) => "connecting",
                (false, _) => "disconnected",
            };
            json!({
                "jid": jid,
                "link": state,
                "connects": link.connects(),
                "last_error": link.last_error(),
            })
        })
        .collect();
    let all_linked = backend.links.iter().all(|(_, l)| l.is_connected());
    let apps: Vec<Value> = crate::metrics::global()
        .apps()
        .into_iter()
        .map(|(name, m)| {
            let last_error = m
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|(ms, why)| json!({ "at": at(ms), "error": why }));
            json!({
                "name": name,
                "last_success": at(m.last_success_ms.load(std::sync::atomic::Ordering::Relaxed)),
                "last_error": last_error,
            })
        })
        .collect();
    let store_error = backend.registrations.write_error();
    let status = if !all_linked {
        "link down"
    } else if store_error.is_some() {
        "store writes failing"
    } else {
        "ok"
    };
    let doc = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": backend.started.elapsed().as_secs(),
        "components": components,
        "apps": apps,
        "registrations_about": backend.registrations.approximate_count(),
        "store": { "writes": if store_error.is_some() { "failing" } else { "ok" } },
    });
    (if all_linked { 200 } else { 503 }, doc.to_string())
}
