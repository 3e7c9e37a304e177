//! mod_push_appserver's HTTP API (and optional HTTPS), served on the same smol
//! executor as the component links by a small HTTP/1.1 server: `httparse`
//! reads request heads, every connection has deadlines and small bounded
//! buffers, and the number of connections is bounded with eviction of
//! idle ones (see [`table`]).
//!
//! - [`request`], [`response`]: pure parsing and serializing.
//! - [`conn`]: one connection, [`listener`]: accept loops, [`table`]: the
//!   connection bound, [`tls`]: the HTTPS certificate, [`proxy`]: the
//!   client behind trusted proxies.
//! - [`routes`]: endpoints, [`api`]: the operations they call.

pub mod api;
mod backend;
mod bound;
pub mod conn;
mod exposition;
mod form;
mod health;
pub mod listener;
mod metrics;
mod pages;
mod port_holder;
pub mod request;
pub mod response;
pub mod routes;
mod snapshot;
mod status_page;
pub mod table;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::ratelimit::RateLimiter;
pub use api::{answer, ApiReply, ApiRequest};
pub use backend::Backend;
pub use bound::Bound;

use conn::Timeouts;
use listener::{Context, Scheme};
use routes::Shared;
use table::ConnTable;

/// Largest accepted request body.
pub const MAX_BODY: usize = 4096;
const PREFIX: &str = "/push_appserver/v1/";

/// A running HTTP API.
#[derive(Debug)]
pub struct HttpApi {
    /// The bound plain HTTP address (useful with port 0), if any.
    pub addr: Option<SocketAddr>,
    /// The bound HTTPS address, if any.
    pub tls_addr: Option<SocketAddr>,
    table: Arc<ConnTable>,
    accept_tasks: Mutex<Vec<smol::Task<()>>>,
}

/// Why the API could not start.
#[derive(Debug)]
pub struct BindError(pub SocketAddr, pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.0, self.1)
    }
}

impl std::error::Error for BindError {}

impl HttpApi {
    /// Serves the plain and HTTPS listeners of `bound` on the executor.
    /// `None` when neither is configured.
    pub fn start(backend: Arc<Backend>, bound: &mut Bound) -> Result<Option<HttpApi>, BindError> {
        let s = backend.settings.http.clone();
        if bound.plain.is_none() && bound.tls.is_none() {
            return Ok(None);
        }
        if s.threads_ignored {
            log::warn!(
                "http.threads is ignored: the HTTP API runs on the async executor; \
                 see http.max_connections"
            );
        }
        let fd_limit = listener::raise_fd_limit();
        let max_connections = match listener::clamp_connections(s.max_connections, fd_limit) {
            Some(room) => {
                log::warn!(
                    "http.max_connections = {} does not fit the open files limit ({}) with {} \
                     kept for the store and the links: serving at most {room} connections",
                    s.max_connections,
                    fd_limit.unwrap_or_default(),
                    listener::FD_RESERVE
                );
                room
            }
            None => s.max_connections,
        };
        let ctx = Context {
            shared: Arc::new(Shared {
                limiter: Mutex::new(RateLimiter::new(s.requests_per_second)),
                proxies: s.trusted_proxies.clone(),
                metrics_only: false,
                backend,
            }),
            table: ConnTable::new(max_connections),
            timeouts: Timeouts {
                request: s.request_timeout,
                idle: s.idle_timeout,
                write: s.write_timeout,
            },
        };
        let mut tasks = Vec::new();
        let mut addr = None;
        if let Some(l) = bound.plain.take() {
            let a = s.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            let bound = l
                .get_ref()
                .local_addr()
                .map_err(|e| BindError(a, e.to_string()))?;
            log::info!("HTTP API listening on http://{bound}{PREFIX}");
            tasks.push(smol::spawn(listener::accept_loop(
                l,
                Scheme::Plain,
                ctx.clone(),
            )));
            addr = Some(bound);
        }
        let mut tls_addr = None;
        if let Some((l, config)) = bound.tls.take() {
            let a = s.tls.as_ref().map(|t| t.listen);
            let a = a.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            let bound = l
                .get_ref()
                .local_addr()
                .map_err(|e| BindError(a, e.to_string()))?;
            log::info!("HTTP API listening on https://{bound}{PREFIX}");
            let acceptor = futures_rustls::TlsAcceptor::from(config);
            tasks.push(smol::spawn(listener::accept_loop(
                l,
                Scheme::Tls(acceptor),
                ctx.clone(),
            )));
            tls_addr = Some(bound);
        }
        Ok(Some(HttpApi {
            addr,
            tls_addr,
            table: ctx.table,
            accept_tasks: Mutex::new(tasks),
        }))
    }

    /// Open connections (plain and TLS).
    pub fn connections(&self) -> usize {
        self.table.len()
    }

    /// Stops the API: no new connections, idle ones closed at once,
    /// requests being served get up to `grace` to finish, then whatever
    /// is left is dropped.
    pub async fn shutdown(&self, grace: Duration) {
        let tasks =
            std::mem::take(&mut *self.accept_tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.cancel().await;
        }
        self.table.close_idle();
        let deadline = Instant::now() + grace;
        while !self.table.is_empty() && Instant::now() < deadline {
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        self.table.close_all();
    }
}
