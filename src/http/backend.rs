//! What the HTTP API serves from: the services it calls and the state its
//! pages and the metrics exposition show.

use std::sync::Arc;

use crate::config::{ComponentSettings, Settings};
use crate::devices::Devices;
use crate::link::LinkStatus;
use crate::pushes::PushService;
use crate::registrations::Registrations;

/// The API's view of the running server; built once by the server.
#[derive(Debug)]
pub struct Backend {
    /// The settings the server started with.
    pub settings: Arc<Settings>,
    /// The registration store, read for the pages and the metrics.
    pub registrations: Arc<Registrations>,
    /// The registration service.
    pub devices: Arc<Devices>,
    /// The push service.
    pub pushes: Arc<PushService>,
    /// Link state by component JID.
    pub links: Vec<(String, Arc<LinkStatus>)>,
    /// The UnifiedPush provider: its endpoints are served here.
    pub unifiedpush: Arc<crate::unifiedpush::UnifiedPush>,
    /// When the server started.
    pub started: std::time::Instant,
}

impl Backend {
    /// The component with this JID, else the first one.
    pub fn component_or_first(&self, jid: Option<&str>) -> &ComponentSettings {
        jid.and_then(|j| self.settings.component(j))
            .unwrap_or(&self.settings.components[0])
    }
}
