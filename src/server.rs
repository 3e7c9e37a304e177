//! Wires the parts together: the core, one link task per component and
//! the HTTP API, all on the smol executor.

use std::sync::Arc;

use crate::component::ComponentHandler;
use crate::config::Settings;
use crate::core::{self, Core};
use crate::http::{self, HttpApi};
use crate::link::{self, LinkConfig};

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
    tasks: Vec<smol::Task<()>>,
}

impl Running {
    /// Waits forever (the links reconnect by themselves).
    pub async fn wait(self) {
        for t in self.tasks {
            t.await;
        }
    }
}

/// Starts everything described by `settings`.
pub fn start(settings: Settings) -> Result<Running, ServeError> {
    let core = Core::start(settings).map_err(ServeError::Core)?;
    let mut tasks = Vec::new();
    for c in &core.settings.components {
        let limits = &core.settings.limits;
        let mut cfg = LinkConfig::new(
            &c.jid,
            &c.server,
            c.secret.clone(),
            limits.max_stanza_bytes,
            limits.max_in_flight,
        );
        cfg.keepalive = std::time::Duration::from_secs(limits.keepalive_secs);
        let handler = Arc::new(ComponentHandler::new(Arc::clone(&core), c.clone()));
        let status = Arc::clone(core.link(&c.jid).expect("a status per component"));
        tasks.push(smol::spawn(link::run(cfg, handler, status)));
    }
    let http = HttpApi::start(Arc::clone(&core)).map_err(ServeError::Http)?;
    Ok(Running { core, http, tasks })
}
