//! `/health` as JSON, for monitors and container health checks (`Accept:
//! application/json`): is the process up, is every component linked to
//! its XMPP server, and how did each app's latest pushes go. 503 while a
//! link is down. Names no device, node, token or secret.

use serde_json::{json, Value};

use super::snapshot::Snapshot;
use crate::clock::rfc3339_ms;
use crate::metrics::PushResult;

/// An RFC 3339 time for ms since the epoch; `null` for 0 (never).
fn at(ms: u64) -> Value {
    if ms == 0 {
        return Value::Null;
    }
    json!(rfc3339_ms(ms))
}

/// What a client outside `[http] status_from` is told: the status word
/// and whether every link is up, nothing about traffic or errors.
pub fn brief(s: &Snapshot) -> (u16, String) {
    let doc = json!({ "status": s.status() });
    (if s.all_linked() { 200 } else { 503 }, doc.to_string())
}

/// The status and the JSON document.
pub fn health(s: &Snapshot) -> (u16, String) {
    let components: Vec<Value> = s
        .links
        .iter()
        .map(|l| {
            json!({
                "jid": l.jid,
                "link": l.state,
                "connects": l.connects,
                "last_error": l.last_error,
            })
        })
        .collect();
    let apps: Vec<Value> = s
        .apps
        .iter()
        .map(|a| {
            let pushes: serde_json::Map<String, Value> = PushResult::ALL
                .iter()
                .zip(a.outcomes)
                .map(|(r, n)| (r.label().to_owned(), json!(n)))
                .collect();
            json!({
                "name": a.name,
                "log_only": a.log_only,
                "failing": a.failing(),
                "pushes": pushes,
                "last_success": at(a.last_success_ms),
                "last_error": a.last_error.as_ref().map(|(ms, why)| json!({ "at": at(*ms), "error": why })),
            })
        })
        .collect();
    let doc = json!({
        "status": s.status(),
        "version": s.version,
        "uptime_secs": s.uptime_secs,
        "components": components,
        "apps": apps,
        "registrations": s.registrations,
        "store": {
            "open": !s.store_opening,
            "writes": if s.store_error.is_some() { "failing" } else { "ok" },
        },
        "problems": s.problems(),
    });
    (if s.all_linked() { 200 } else { 503 }, doc.to_string())
}
