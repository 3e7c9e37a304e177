//! HTML pages of the HTTP API: debug forms, settings and health.

use super::Backend;
use crate::clock::rfc3339_ms;
use crate::registrations::{PushStats, Registration};
use crate::xml::escape;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{t}</title></head>\
         <body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    )
}

/// The try-it form for a POST endpoint.
pub fn form(endpoint: &str, fields: &[&str]) -> String {
    let mut body = format!("<form method='post' action='/push_appserver/v1/{endpoint}'>\n");
    for f in fields {
        body.push_str(&format!(
            "<p><label>{f}: <input type='text' name='{f}' size='70'></label></p>\n"
        ));
    }
    body.push_str("<p><input type='submit' value='Send'></p>\n</form>");
    page(&format!("push_appserver: {endpoint}"), &body)
}

/// The list of registered nodes of a component.
pub fn settings_list(component: &str, nodes: &[String], truncated: bool) -> String {
    let mut body = format!(
        "<p>Component {}: {} node(s)",
        escape(component),
        nodes.len()
    );
    if truncated {
        body.push_str(" (list truncated)");
    }
    body.push_str("</p>\n<ul>\n");
    for n in nodes {
        let href: String = n
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        body.push_str(&format!(
            "<li><a href='/push_appserver/v1/settings/{href}'>{}</a></li>\n",
            escape(n)
        ));
    }
    body.push_str("</ul>");
    page("push_appserver: settings", &body)
}

/// The stored data of one node.
pub fn settings_node(r: &Registration, stats: &PushStats) -> String {
    let mut rows = vec![
        ("type", r.push_type.clone()),
        ("node", r.node.clone()),
        ("token", r.token.clone()),
        ("component", r.component.clone()),
        ("registered", rfc3339_ms(r.registered_ms)),
        ("renewed", rfc3339_ms(r.renewed_ms)),
        (
            "secret",
            "(derived from the server key, not stored)".to_owned(),
        ),
    ];
    if let Some(ms) = stats.last_successful_push_ms {
        rows.push(("last_successful_push", rfc3339_ms(ms)));
    }
    if let Some(ms) = stats.last_push_error_ms {
        rows.push(("last_push_error", rfc3339_ms(ms)));
    }
    if let Some(reason) = &stats.last_push_error_reason {
        rows.push(("last_push_error_reason", reason.clone()));
    }
    let mut body = String::from("<pre>{\n");
    for (k, v) in rows {
        body.push_str(&format!("  {k} = \"{}\",\n", escape(&v)));
    }
    body.push_str("}</pre>");
    page(&format!("push_appserver: {}", r.node), &body)
}

/// The health page: always contains RUNNING while the process serves.
pub fn health(backend: &Backend) -> String {
    let mut body = String::from("<p>RUNNING</p>\n<ul>\n");
    for (jid, link) in &backend.links {
        let state = if link.is_connected() {
            "connected".to_owned()
        } else {
            match link.last_error() {
                Some(e) => format!("disconnected ({})", escape(&e)),
                None => "connecting".to_owned(),
            }
        };
        body.push_str(&format!(
            "<li>component {}: {state}, {} stanza(s) received</li>\n",
            escape(jid),
            link.stanzas()
        ));
    }
    let profiles = backend.pushes.apps();
    let mut apps: Vec<_> = profiles.iter().collect();
    apps.sort_by(|a, b| a.0.cmp(b.0));
    for (name, app) in apps {
        body.push_str(&format!(
            "<li>app {}: {}</li>\n",
            escape(name),
            escape(&app.provider.health())
        ));
    }
    if backend.unifiedpush.any() {
        let counts = crate::metrics::global()
            .apps()
            .into_iter()
            .find(|(name, _)| name == crate::unifiedpush::METRIC_APP)
            .map(|(_, m)| {
                crate::metrics::PushResult::ALL
                    .iter()
                    .map(|r| format!("{} {}", r.label(), m.outcomes[*r as usize].get()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        body.push_str(&format!("<li>UnifiedPush relays: {counts}</li>\n"));
    }
    // Exact, from the counters (the store's own estimate said "about 4"
    // when 3 existed).
    let registrations = backend
        .registrations
        .count()
        .map_or_else(|e| format!("unknown ({e})"), |n| n.to_string());
    body.push_str(&format!("<li>registrations: {registrations}</li>\n"));
    body.push_str("<li><a href='/push_appserver/v1/status'>status page</a></li>\n");
    match backend.registrations.write_error() {
        Some(e) => body.push_str(&format!(
            "<li>store: WRITES FAILING ({}); registrations are refused, pushes go on; \
             retrying by itself ({})</li>\n",
            escape(&e),
            escape(
                &backend
                    .registrations
                    .recovery_note()
                    .unwrap_or_else(|| "once disk space is free".to_owned())
            )
        )),
        None if backend.registrations.is_opening() => body.push_str(
            "<li>store: opening (replaying its journal after the start); pushes and \
             registrations wait for it</li>\n",
        ),
        None => body.push_str("<li>store: writes ok</li>\n"),
    }
    body.push_str("</ul>");
    page("push_appserver: health", &body)
}
