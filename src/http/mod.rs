//! The seed's HTTP API on tiny_http threads. Registration and push requests
//! cross to the async core through a bounded channel, so a slow request
//! never blocks pushes and a flood of requests cannot grow memory; pages
//! that only read are rendered on the HTTP thread.

mod form;
mod pages;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use smol::channel::{Receiver, Sender};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::core::{Core, RegisterError};
use crate::stanza::publish::PublishRequest;

pub use crate::ratelimit::RateLimiter;

/// Largest accepted request body.
pub const MAX_BODY: usize = 4096;
const PREFIX: &str = "/push_appserver/v1/";

/// A request for the async core.
#[derive(Debug)]
pub enum ApiRequest {
    /// `POST /register`.
    Register {
        /// Component JID.
        component: String,
        /// Push type.
        push_type: String,
        /// Device node.
        node: String,
        /// Provider token.
        token: String,
    },
    /// `POST /unregister`.
    Unregister {
        /// Component JID.
        component: String,
        /// Push type.
        push_type: String,
        /// Device node.
        node: String,
        /// The node's secret (empty when not given).
        secret: String,
    },
    /// `POST /push`.
    Push {
        /// Component JID.
        component: String,
        /// Device node.
        node: String,
        /// The node's secret.
        secret: String,
    },
}

/// Status and text body of an API answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// Body: `OK\n...` or `ERROR\n...`, as the seed's API.
    pub body: String,
}

impl ApiReply {
    fn ok(lines: &[&str]) -> Self {
        ApiReply {
            status: 200,
            body: format!("OK\n{}\n", lines.join("\n")),
        }
    }

    fn error(status: u16, why: &str) -> Self {
        ApiReply {
            status,
            body: format!("ERROR\n{why}\n"),
        }
    }
}

/// A request and where its answer goes.
pub type ApiCall = (ApiRequest, Sender<ApiReply>);

/// Serves API calls on the async core until the channel closes; each call
/// runs as its own task.
pub async fn serve_calls(core: Arc<Core>, calls: Receiver<ApiCall>) {
    while let Ok((req, reply)) = calls.recv().await {
        let core = Arc::clone(&core);
        smol::spawn(async move {
            let _ = reply.send(answer(&core, req).await).await;
        })
        .detach();
    }
}

fn register_error(e: RegisterError) -> ApiReply {
    ApiReply::error(e.http_status(), &e.client_reason())
}

async fn answer(core: &Core, req: ApiRequest) -> ApiReply {
    match req {
        ApiRequest::Register {
            component,
            push_type,
            node,
            token,
        } => {
            let c = core.component_or_first(Some(&component)).clone();
            match core.register(&c, &push_type, &node, &token).await {
                Ok(r) => ApiReply::ok(&[&r.registration.node, &r.secret]),
                Err(e) => register_error(e),
            }
        }
        ApiRequest::Unregister {
            component,
            push_type,
            node,
            secret,
        } => {
            let c = core.component_or_first(Some(&component)).clone();
            match core.unregister(&c, &push_type, &node, &secret).await {
                Ok(r) => ApiReply::ok(&[&r.registration.node, &r.secret]),
                Err(e) => register_error(e),
            }
        }
        ApiRequest::Push {
            component,
            node,
            secret,
        } => {
            let req = PublishRequest {
                node: node.clone(),
                secret,
                summary: Default::default(),
                encrypted: None,
                high_hint: false,
            };
            // HTTP has no identity: registrations with an owner answer
            // item-not-found here.
            match core.pushes.push(&component, None, req).await {
                Ok(()) => ApiReply::ok(&[&node]),
                Err(e) => ApiReply::error(e.http_status(), &e.to_string()),
            }
        }
    }
}

/// A running HTTP API.
#[derive(Debug)]
pub struct HttpApi {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Why the API could not start.
#[derive(Debug)]
pub struct BindError(pub SocketAddr, pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP API cannot listen on {}: {}", self.0, self.1)
    }
}

impl std::error::Error for BindError {}

impl HttpApi {
    /// Binds `addr` and starts `threads` workers that send calls to `calls`.
    pub fn start(
        addr: SocketAddr,
        threads: usize,
        core: Arc<Core>,
        calls: Sender<ApiCall>,
    ) -> Result<HttpApi, BindError> {
        let server = Server::http(addr).map_err(|e| BindError(addr, e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| BindError(addr, "not an IP listener".into()))?;
        let server = Arc::new(server);
        let limiter = Arc::new(Mutex::new(RateLimiter::new(
            core.settings.http.requests_per_second,
        )));
        let threads = (0..threads)
            .map(|i| {
                let (server, core, calls, limiter) = (
                    Arc::clone(&server),
                    Arc::clone(&core),
                    calls.clone(),
                    Arc::clone(&limiter),
                );
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        while let Ok(req) = server.recv() {
                            serve(req, &core, &calls, &limiter);
                        }
                    })
                    .expect("spawn HTTP thread")
            })
            .collect();
        log::info!("HTTP API listening on http://{bound}{PREFIX}");
        Ok(HttpApi {
            addr: bound,
            threads,
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

fn respond(req: Request, status: u16, body: String, html: bool) {
    let ctype = if html {
        &b"text/html; charset=utf-8"[..]
    } else {
        &b"text/plain; charset=utf-8"[..]
    };
    let resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(Header::from_bytes(&b"Content-Type"[..], ctype).expect("static header"));
    let _ = req.respond(resp);
}

/// The component JID named by the Host header (port stripped).
fn host_of(req: &Request) -> Option<String> {
    let h = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))?
        .value
        .as_str()
        .to_ascii_lowercase();
    let host = match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => h,
    };
    Some(host)
}

fn serve(mut req: Request, core: &Core, calls: &Sender<ApiCall>, limiter: &Mutex<RateLimiter>) {
    if let Some(addr) = req.remote_addr() {
        let allowed = limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(addr.ip(), Instant::now());
        if !allowed {
            return respond(req, 429, "ERROR\ntoo many requests\n".into(), false);
        }
    }
    let url = req.url().to_owned();
    let path = url.split('?').next().unwrap_or_default();
    let Some(endpoint) = path.strip_prefix(PREFIX) else {
        return respond(req, 404, "ERROR\nunknown endpoint\n".into(), false);
    };
    let debugging = core.settings.debugging;
    let component = core
        .component_or_first(host_of(&req).as_deref())
        .jid
        .clone();
    let method = req.method().clone();
    match (method, endpoint) {
        (Method::Get, "health") => respond(req, 200, pages::health(core), true),
        (Method::Get, "register" | "unregister" | "push") if !debugging => respond(
            req,
            403,
            "ERROR\nforms are only available with debugging = true\n".into(),
            false,
        ),
        (Method::Get, "register") => respond(
            req,
            200,
            pages::form("register", &["type", "node", "token"]),
            true,
        ),
        (Method::Get, "unregister") => respond(
            req,
            200,
            pages::form("unregister", &["type", "node", "secret"]),
            true,
        ),
        (Method::Get, "push") => respond(req, 200, pages::form("push", &["node", "secret"]), true),
        (Method::Get, e) if e == "settings" || e.starts_with("settings/") => {
            if !debugging {
                return respond(
                    req,
                    403,
                    "ERROR\nsettings are only available with debugging = true\n".into(),
                    false,
                );
            }
            match settings_page(core, &component, e) {
                Ok(html) => respond(req, 200, html, true),
                Err((status, why)) => respond(req, status, format!("ERROR\n{why}\n"), false),
            }
        }
        (Method::Post, "register" | "unregister" | "push") => {
            let endpoint = endpoint.to_owned();
            let body = match read_body(&mut req) {
                Ok(b) => b,
                Err((status, why)) => {
                    return respond(req, status, format!("ERROR\n{why}\n"), false)
                }
            };
            let f = form::parse(&body);
            let field = |k: &str| form::get(&f, k).unwrap_or_default().to_owned();
            let call = match endpoint.as_str() {
                "register" => ApiRequest::Register {
                    component,
                    push_type: field("type"),
                    node: field("node"),
                    token: field("token"),
                },
                "unregister" => ApiRequest::Unregister {
                    component,
                    push_type: field("type"),
                    node: field("node"),
                    secret: field("secret"),
                },
                _ => ApiRequest::Push {
                    component,
                    node: field("node"),
                    secret: field("secret"),
                },
            };
            let (tx, rx) = smol::channel::bounded(1);
            let reply = match calls.send_blocking((call, tx)) {
                Ok(()) => rx
                    .recv_blocking()
                    .unwrap_or_else(|_| ApiReply::error(500, "request was dropped")),
                Err(_) => ApiReply::error(503, "server is shutting down"),
            };
            respond(req, reply.status, reply.body, false);
        }
        (_, "register" | "unregister" | "push" | "health" | "settings") => {
            respond(req, 405, "ERROR\nmethod not allowed\n".into(), false)
        }
        _ => respond(req, 404, "ERROR\nunknown endpoint\n".into(), false),
    }
}

fn read_body(req: &mut Request) -> Result<String, (u16, &'static str)> {
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err((413, "request body too large (max 4096 bytes)"));
    }
    let mut body = Vec::with_capacity(512);
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| (400, "cannot read the request body"))?;
    if body.len() > MAX_BODY {
        return Err((413, "request body too large (max 4096 bytes)"));
    }
    String::from_utf8(body).map_err(|_| (400, "request body is not UTF-8"))
}

fn settings_page(core: &Core, component: &str, endpoint: &str) -> Result<String, (u16, String)> {
    let store_err = |e: crate::registrations::StoreError| (500, e.to_string());
    match endpoint.strip_prefix("settings/") {
        None | Some("") => {
            const LIMIT: usize = 1000;
            let nodes = core
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
            let reg = core
                .registrations
                .lookup(component, &node)
                .map_err(store_err)?
                .ok_or((404, format!("node {node} is not registered")))?;
            let stats = core
                .registrations
                .push_stats(component, &node)
                .map_err(store_err)?;
            Ok(pages::settings_node(&reg, &stats))
        }
    }
}
