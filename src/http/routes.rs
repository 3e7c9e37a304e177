//! Which endpoint answers a request, and how: mod_push_appserver's paths, status
//! codes and texts. No business logic: registrations and pushes go to
//! [`api::answer`], pages to [`pages`].

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Backend;

use super::api::{self, ApiRequest};
use super::request::Head;
use super::response::Response;
use super::snapshot::Snapshot;
use super::{form, health, pages, status_page, RateLimiter, MAX_BODY, PREFIX};
use crate::ratelimit::address_key;
use crate::settings::TrustedProxies;
use crate::unifiedpush;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    /// What the API serves from.
    pub backend: Arc<Backend>,
    /// Requests per client.
    pub limiter: Mutex<RateLimiter>,
    /// Proxies whose forwarding headers are believed.
    pub proxies: TrustedProxies,
    /// The `[metrics] listen` listener: it serves `/metrics` only.
    pub metrics_only: bool,
}

impl Shared {
    /// The client of a request from `peer`.
    pub fn client(&self, peer: IpAddr, head: &Head) -> IpAddr {
        self.proxies.client(
            peer,
            head.x_forwarded_for.as_deref(),
            head.forwarded.as_deref(),
        )
    }
}

/// The component JID named by the Host header (port stripped).
fn host_of(head: &Head) -> Option<String> {
    let h = head.host.as_deref()?.to_ascii_lowercase();
    Some(match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => h,
    })
}

/// Answers one complete request from `client`.
pub async fn route(shared: &Shared, head: &Head, body: &[u8], client: IpAddr) -> Response {
    let allowed = shared
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allow(address_key(client), Instant::now());
    if !allowed {
        return Response::error(429, "too many requests");
    }
    let backend = &shared.backend;
    if head.path == "/metrics" || shared.metrics_only {
        return metrics(shared, head).await;
    }
    if let Some(token) = head.path.strip_prefix(unifiedpush::PATH) {
        if backend.unifiedpush.any() {
            return unifiedpush_endpoint(backend, head, body, token).await;
        }
    }
    let Some(endpoint) = head.path.strip_prefix(PREFIX) else {
        return Response::error(404, "unknown endpoint");
    };
    let debugging = backend.settings.debugging;
    let component = backend
        .component_or_first(host_of(head).as_deref())
        .jid
        .clone();
    match (head.method.as_str(), endpoint) {
        ("GET", "health" | "status") if head.accepts_json => {
            let snapshot = Snapshot::read(backend);
            let (status, doc) = if insider(backend, client) {
                health::health(&snapshot)
            } else {
                health::brief(&snapshot)
            };
            Response::json(status, doc).live()
        }
        ("GET", "health") => Response::html(200, pages::health(backend)).live(),
        ("GET", "status") if insider(backend, client) => {
            Response::html(200, status_page::page(&Snapshot::read(backend))).live()
        }
        ("GET", "status") => Response::error(
            403,
            "the status page is only for [http] status_from (loopback by default)",
        ),
        ("GET", "register" | "unregister" | "push") if !debugging => {
            Response::error(403, "forms are only available with debugging = true")
        }
        ("GET", "register") => {
            Response::html(200, pages::form("register", &["type", "node", "token"]))
        }
        ("GET", "unregister") => {
            Response::html(200, pages::form("unregister", &["type", "node", "secret"]))
        }
        ("GET", "push") => Response::html(200, pages::form("push", &["node", "secret"])),
        ("GET", e) if e == "settings" || e.starts_with("settings/") => {
            if !debugging {
                return Response::error(403, "settings are only available with debugging = true");
            }
            if let Err(e) = backend.registrations.ready().await {
                return Response::error(503, &e.to_string());
            }
            // Store reads may touch the disk: off the executor.
            let (backend, e) = (Arc::clone(backend), e.to_owned());
            smol::unblock(move || match settings_page(&backend, &component, &e) {
                Ok(html) => Response::html(200, html),
                Err((status, why)) => Response::error(status, &why),
            })
            .await
        }
        ("POST", "register" | "unregister" | "push") => {
            if body.len() > MAX_BODY {
                return Response::error(413, "request body too large (max 4096 bytes)");
            }
            let Ok(body) = std::str::from_utf8(body) else {
                return Response::error(400, "request body is not UTF-8");
            };
            match ApiRequest::from_form(endpoint, component, body) {
                Some(req) => {
                    let reply = api::answer(backend, req, address_key(client)).await;
                    Response::text(reply.status, reply.body)
                }
                None => Response::error(404, "unknown endpoint"),
            }
        }
        (_, "register" | "unregister" | "push" | "health" | "status" | "settings") => {
            Response::error(405, "method not allowed")
        }
        _ => Response::error(404, "unknown endpoint"),
    }
}

/// Whether `client` may see the server's traffic and errors (`[http]
/// status_from`).
fn insider(backend: &Backend, client: IpAddr) -> bool {
    // `Cidr::contains` reads an IPv4-mapped address as IPv4.
    let from = &backend.settings.http.status_from;
    from.iter().any(|c| c.contains(client))
}

/// A UnifiedPush endpoint: discovery on GET, a relay on POST.
async fn unifiedpush_endpoint(
    backend: &Backend,
    head: &Head,
    body: &[u8],
    token: &str,
) -> Response {
    match head.method.as_str() {
        // UnifiedPush discovery (answered for any token, as the module does).
        "GET" => Response::json(200, r#"{"unifiedpush":{"version":1}}"#),
        "POST" => {
            // `head.path` carries no query.
            let answer = backend.unifiedpush.relay(token, body).await;
            Response::text(answer.status, format!("{}\n", answer.text))
        }
        _ => Response::error(405, "method not allowed"),
    }
}

/// Longest a scrape waits for a store that is still opening (scrapers
/// give up after 10 s by default).
const METRICS_STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `/metrics`, where the config puts it: on the API unless `[metrics]
/// listen` names its own listener, nowhere when disabled.
async fn metrics(shared: &Shared, head: &Head) -> Response {
    let m = &shared.backend.settings.metrics;
    let here = m.enabled && (shared.metrics_only || m.listen.is_none());
    if !here || head.path != "/metrics" {
        return Response::error(404, "unknown endpoint");
    }
    if head.method != "GET" {
        return Response::error(405, "method not allowed");
    }
    // Right after a start the store may still be opening: a scrape waits
    // a little for its count rather than be told 0 (then goes without).
    let _ = shared
        .backend
        .registrations
        .ready_within(METRICS_STORE_WAIT)
        .await;
    // Reads the store's count and /proc: off the executor.
    let backend = Arc::clone(&shared.backend);
    let body = smol::unblock(move || super::exposition::exposition(&backend)).await;
    Response::text(200, body)
}

fn settings_page(
    backend: &Backend,
    component: &str,
    endpoint: &str,
) -> Result<String, (u16, String)> {
    let store_err = |e: crate::registrations::StoreError| (500, e.to_string());
    match endpoint.strip_prefix("settings/") {
        None | Some("") => {
            const LIMIT: usize = 1000;
            let nodes = backend
                .registrations
                .nodes(component, LIMIT + 1)
                .map_err(store_err)?;
            let truncated = nodes.len() > LIMIT;
            Ok(pages::settings_list(
                component,
                &nodes[..nodes.len().min(LIMIT)],
                truncated,
            ))
        }
        Some(encoded) => {
            let node = form::decode(encoded, false);
            let reg = backend
                .registrations
                .lookup(component, &node)
                .map_err(store_err)?
                .ok_or((404, format!("node {node} is not registered")))?;
            let stats = backend
                .registrations
                .push_stats(component, &node)
                .map_err(store_err)?;
            Ok(pages::settings_node(&reg, &stats))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let k = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }
}
