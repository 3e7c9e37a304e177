//! Wires the parts together: the core, one link task per component and
//! the HTTP API, all on the smol executor.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;

use crate::component::ComponentHandler;
use crate::config::Settings;
use crate::core::{self, Core};
use crate::http::{self, HttpApi};
use crate::link::{self, LinkConfig};
use crate::shutdown::Shutdown;

/// Why the server could not start.
#[derive(Debug)]
pub enum ServeError {
    /// Store or provider start-up failed.
    Core(core::StartError),
    /// The HTTP listener could not bind.
    Http(http::BindError),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Core(e) => write!(f, "{e}"),
            ServeError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// A started server: links and HTTP run in the background.
#[derive(Debug)]
pub struct Running {
    /// The shared core.
    pub core: Arc<Core>,
    /// The HTTP API, when enabled.
    pub http: Option<HttpApi>,
    /// The `[metrics] listen` listener, when configured.
    pub metrics: Option<HttpApi>,
    /// Triggered by [`Running::shutdown`]; every part serving peers watches it.
    pub signal: Shutdown,
    links: Vec<smol::Task<()>>,
}

impl Running {
    /// Waits until shutdown (the links reconnect by themselves).
    pub async fn wait(&self) {
        self.signal.wait().await;
    }

    /// Stops serving: the HTTP API stops accepting and lets requests being
    /// served finish, and each component link stops reading, lets requests
    /// in flight finish within `grace`, answers the rest
    /// `wait/remote-server-timeout` and closes its stream. Both run at
    /// once; returns when they are done (bounded: `grace` plus a few
    /// seconds).
    pub async fn shutdown(self, grace: Duration) {
        self.signal.trigger(grace);
        let http = async {
            if let Some(api) = &self.http {
                api.shutdown(grace).await;
            }
            if let Some(m) = &self.metrics {
                m.shutdown(Duration::ZERO).await;
            }
        };
        let links = async {
            for t in self.links {
                t.await;
            }
        };
        // Each part bounds its own steps; this only guards against a bug.
        async {
            futures_lite::future::zip(http, links).await;
        }
        .or(async {
            async_io::Timer::after(grace + Duration::from_secs(5)).await;
            log::warn!("the links and the HTTP API did not close in time");
        })
        .await;
    }
}

/// Starts everything described by `settings`.
pub fn start(settings: Settings) -> Result<Running, ServeError> {
    let core = Core::start(settings).map_err(ServeError::Core)?;
    let mut links = Vec::new();
    let shutdown = Shutdown::new();
    for c in &core.settings.components {
        let limits = &core.settings.limits;
        let mut cfg = LinkConfig::new(
            &c.jid,
            &c.server,
            c.secret.clone(),
            limits.max_stanza_bytes,
            limits.max_in_flight,
        );
        cfg.keepalive = Duration::from_secs(limits.keepalive_secs);
        cfg.ping_after = Duration::from_secs(limits.ping_after_secs);
        cfg.ping_timeout = Duration::from_secs(limits.ping_timeout_secs);
        cfg.ping_to = c.ping_to.clone();
        let handler = Arc::new(ComponentHandler::new(Arc::clone(&core), c.clone()));
        let status = Arc::clone(core.link(&c.jid).expect("a status per component"));
        links.push(smol::spawn(link::run(
            cfg,
            handler,
            status,
            shutdown.clone(),
        )));
    }
    let http = HttpApi::start(Arc::clone(&core)).map_err(ServeError::Http)?;
    let metrics = match core.settings.metrics.listen {
        Some(a) if core.settings.metrics.enabled => {
            Some(HttpApi::start_metrics(Arc::clone(&core), a).map_err(ServeError::Http)?)
        }
        _ => None,
    };
    Ok(Running {
        core,
        http,
        metrics,
        signal: shutdown,
        links,
    })
}
