//! The server's state as the health endpoint and the status page show
//! it, read once per request: links, apps, registrations, store. Names no
//! device, node, token or secret.

use std::sync::atomic::Ordering;

use super::Backend;
use crate::metrics::PushResult;
use crate::providers::Provider;

/// One component link.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// The component's JID.
    pub jid: String,
    /// `connected`, `connecting` (never was) or `disconnected`.
    pub state: &'static str,
    /// Successful handshakes so far.
    pub connects: u64,
    /// Stanzas received so far.
    pub stanzas: u64,
    /// Why the link last went down.
    pub last_error: Option<String>,
}

/// One app profile (or a delivery kind counted like one: Web Push,
/// UnifiedPush).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The profile's name.
    pub name: String,
    /// The provider's own line (kind, endpoint, credentials, counters);
    /// `None` for delivery kinds without a profile.
    pub provider: Option<String>,
    /// True for the log provider: nothing reaches a device.
    pub log_only: bool,
    /// Pushes by result, in [`PushResult::ALL`] order.
    pub outcomes: [u64; 5],
    /// The latest delivered push, ms since the epoch (0: none).
    pub last_success_ms: u64,
    /// The latest failed push: ms since the epoch and why.
    pub last_error: Option<(u64, String)>,
}

impl AppState {
    /// Failing: its latest push failed, and none has been delivered since.
    pub fn failing(&self) -> bool {
        self.last_error
            .as_ref()
            .is_some_and(|(at, _)| *at >= self.last_success_ms)
    }
}

/// Everything the health endpoint and the status page show.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the start.
    pub uptime_secs: u64,
    /// The component links.
    pub links: Vec<LinkState>,
    /// The apps, by name.
    pub apps: Vec<AppState>,
    /// Registrations stored (exact, from the counters); `None` when the
    /// store could not be read.
    pub registrations: Option<u64>,
    /// Why store writes fail, while they do.
    pub store_error: Option<String>,
    /// The store is still being opened after the start (pushes and
    /// registrations wait for it).
    pub store_opening: bool,
}

impl Snapshot {
    /// Reads the state of the running server.
    pub fn read(backend: &Backend) -> Snapshot {
        let links = backend
            .links
            .iter()
            .map(|(jid, link)| LinkState {
                jid: jid.clone(),
                state: match (link.is_connected(), link.connects()) {
                    (true, _) => "connected",
                    (false, 0) => "connecting",
                    (false, _) => "disconnected",
                },
                connects: link.connects(),
                stanzas: link.stanzas(),
                last_error: link.last_error(),
            })
            .collect();
        let profiles = backend.pushes.apps();
        let mut apps: Vec<AppState> = crate::metrics::global()
            .apps()
            .into_iter()
            .map(|(name, m)| {
                let profile = profiles.get(&name);
                AppState {
                    provider: profile.map(|a| a.provider.health()),
                    log_only: profile.is_some_and(|a| matches!(a.provider, Provider::Log(_))),
                    outcomes: PushResult::ALL.map(|r| m.outcomes[r as usize].get()),
                    last_success_ms: m.last_success_ms.load(Ordering::Relaxed),
                    last_error: m
                        .last_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                    name,
                }
            })
            .collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: backend.started.elapsed().as_secs(),
            links,
            apps,
            registrations: backend.registrations.count().ok(),
            store_error: backend.registrations.write_error(),
            store_opening: backend.registrations.is_opening(),
        }
    }

    /// Every component is linked to its XMPP server.
    pub fn all_linked(&self) -> bool {
        self.links.iter().all(|l| l.state == "connected")
    }

    /// One word for monitors: `ok`, `link down`, `starting` (the store
    /// is still opening), `store writes failing` or `pushes failing`.
    pub fn status(&self) -> &'static str {
        if !self.all_linked() {
            "link down"
        } else if self.store_opening {
            "starting"
        } else if self.store_error.is_some() {
            "store writes failing"
        } else if self.apps.iter().any(AppState::failing) {
            "pushes failing"
        } else {
            "ok"
        }
    }

    /// What an operator should look at, one sentence each; empty when
    /// push works.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in self.links.iter().filter(|l| l.state != "connected") {
            let why = l.last_error.as_deref().unwrap_or("not connected yet");
            out.push(format!(
                "component {} is not linked to its XMPP server: {why}",
                l.jid
            ));
        }
        if self.store_opening {
            out.push(
                "the store is still opening (replaying its journal after the start): \
                 pushes and registrations wait for it"
                    .to_owned(),
            );
        }
        if let Some(e) = &self.store_error {
            out.push(format!(
                "store writes fail ({e}): registrations are refused"
            ));
        }
        for a in self.apps.iter().filter(|a| a.failing()) {
            let why = a.last_error.as_ref().map_or("", |(_, w)| w.as_str());
            out.push(format!("the latest push of app {} failed: {why}", a.name));
        }
        for a in self.apps.iter().filter(|a| a.log_only) {
            out.push(format!(
                "app {} uses the log provider: its pushes are only logged, nothing reaches a device",
                a.name
            ));
        }
        out
    }
}
