//! The `[metrics] listen` listener: plain HTTP serving only `/metrics`,
//! with the API's connection bound and deadlines, so a scraper can be
//! given a private address while the API faces the world.

use std::net::{SocketAddr, TcpListener};

use smol::Async;
use std::sync::{Arc, Mutex};

use super::Backend;

use super::conn::Timeouts;
use super::listener::{self, Context, Scheme};
use super::routes::Shared;
use super::table::ConnTable;
use super::{BindError, HttpApi, RateLimiter};

/// Connections the metrics listener keeps open at most.
const MAX_CONNECTIONS: usize = 16;

impl HttpApi {
    /// Serves `/metrics` on the bound metrics listener (everything else is 404).
    pub fn start_metrics(
        backend: Arc<Backend>,
        l: Async<TcpListener>,
    ) -> Result<HttpApi, BindError> {
        let s = backend.settings.http.clone();
        let addr = backend.settings.metrics.listen;
        let addr = addr.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let ctx = Context {
            shared: Arc::new(Shared {
                limiter: Mutex::new(RateLimiter::new(s.requests_per_second)),
                proxies: s.trusted_proxies.clone(),
                metrics_only: true,
                backend,
            }),
            table: ConnTable::new(MAX_CONNECTIONS),
            timeouts: Timeouts {
                request: s.request_timeout,
                idle: s.idle_timeout,
                write: s.write_timeout,
            },
        };
        let bound = l
            .get_ref()
            .local_addr()
            .map_err(|e| BindError(addr, e.to_string()))?;
        log::info!("metrics listening on http://{bound}/metrics");
        let task = smol::spawn(listener::accept_loop(l, Scheme::Plain, ctx.clone()));
        Ok(HttpApi {
            addr: Some(bound),
            tls_addr: None,
            table: ctx.table,
            accept_tasks: Mutex::new(vec![task]),
        })
    }
}
