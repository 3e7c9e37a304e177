//! The API's sockets, bound before anything else starts: a port that is
//! taken stops the start before the store or `server.key` is touched, and
//! the error names the process that holds it where the system tells.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use smol::Async;

use super::{listener, port_holder, tls, BindError};
use crate::config::Settings;

/// The listeners of one server, bound but not yet served.
#[derive(Debug, Default)]
pub struct Bound {
    /// Plain HTTP.
    pub plain: Option<Async<TcpListener>>,
    /// HTTPS, with its certificate.
    pub tls: Option<(Async<TcpListener>, Arc<rustls::ServerConfig>)>,
    /// `[metrics] listen`.
    pub metrics: Option<Async<TcpListener>>,
}

impl Bound {
    /// Binds every listener `settings` asks for.
    pub fn bind(settings: &Settings) -> Result<Bound, BindError> {
        let s = &settings.http;
        let plain = s
            .listen
            .map(|a| open(a, "the HTTP API", "[http] listen"))
            .transpose()?;
        let tls = match &s.tls {
            Some(t) => {
                let config = tls::server_config(&t.cert, &t.key)
                    .map_err(|e| BindError(t.listen, e.to_string()))?;
                Some((
                    open(t.listen, "the HTTPS API", "[http] tls_listen")?,
                    config,
                ))
            }
            None => None,
        };
        let metrics = match settings.metrics.listen {
            Some(a) if settings.metrics.enabled => Some(open(a, "/metrics", "[metrics] listen")?),
            _ => None,
        };
        Ok(Bound {
            plain,
            tls,
            metrics,
        })
    }
}

/// Binds one address for `what` (set by `key`); a taken port is explained.
fn open(addr: SocketAddr, what: &str, key: &str) -> Result<Async<TcpListener>, BindError> {
    listener::bind(addr).map_err(|e| {
        let mut reason = format!("{what}: {e}");
        if e.kind() == std::io::ErrorKind::AddrInUse {
            reason.push_str(&port_holder::explain(addr));
            reason.push_str(&format!("; choose another address with {key}"));
        }
        BindError(addr, reason)
    })
}
