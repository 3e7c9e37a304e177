//! The async core shared by the component links and the HTTP API: the
//! registration store, the push service and the providers, plus the
//! registration operations both front ends offer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{ComponentSettings, Settings};
use crate::link::LinkStatus;
use crate::providers::{self, Provider};
use crate::pushes::{App, PushService};
use crate::registrations::{check_field, InputError, Registered, Registrations, StoreError};
use crate::stanza::StanzaError;
use crate::store_thread::StoreThread;

/// Why the core could not start.
#[derive(Debug)]
pub enum StartError {
    /// The store failed to open.
    Store(StoreError),
    /// A provider failed to start.
    Provider(String, providers::StartError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "{e}"),
            StartError::Provider(t, e) => write!(f, "[app.{t}]: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Why a register or unregister request failed.
#[derive(Debug)]
pub enum RegisterError {
    /// The push type is not offered by this component.
    UnknownType(String),
    /// A field is missing or invalid.
    Input(InputError),
    /// Unregister of a node that is not registered with this type.
    NotFound,
    /// The store failed.
    Store(StoreError),
}

impl RegisterError {
    /// The reason shown to the requester; store details stay in the log.
    pub fn client_reason(&self) -> String {
        match self {
            RegisterError::Store(_) => "registration store unavailable".to_owned(),
            e => e.to_string(),
        }
    }

    /// The XMPP error answering an ad-hoc command.
    pub fn to_stanza_error(&self) -> StanzaError {
        let reason = self.client_reason();
        match self {
            RegisterError::UnknownType(_) | RegisterError::Input(_) => {
                StanzaError::bad_request(reason)
            }
            RegisterError::NotFound => StanzaError::item_not_found(reason),
            RegisterError::Store(_) => StanzaError::internal(reason),
        }
    }

    /// The HTTP status answering the API.
    pub fn http_status(&self) -> u16 {
        match self {
            RegisterError::UnknownType(_) | RegisterError::Input(_) => 400,
            RegisterError::NotFound => 404,
            RegisterError::Store(_) => 500,
        }
    }
}

/// A store failure behind a registration request: logged once, here.
fn store_failed(e: StoreError) -> RegisterError {
    log::error!("registration failed: {e}");
    RegisterError::Store(e)
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::UnknownType(t) => write!(f, "unknown push type {t:?}"),
            RegisterError::Input(e) => write!(f, "{e}"),
            RegisterError::NotFound => f.write_str("node not registered with this push type"),
            RegisterError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Everything the front ends share.
#[derive(Debug)]
pub struct Core {
    /// The validated settings.
    pub settings: Settings,
    /// The registration store.
    pub registrations: Arc<Registrations>,
    /// The push service.
    pub pushes: Arc<PushService>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Link state by component JID.
    pub links: Vec<(String, Arc<LinkStatus>)>,
    /// Where synced store writes run.
    pub store_thread: StoreThread,
    /// Retries store writes after a failure (e.g. a full disk).
    _store_recovery: smol::Task<()>,
}

impl Core {
    /// Opens the store and starts the providers.
    pub fn start(settings: Settings) -> Result<Arc<Core>, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let registrations = Arc::new(
            Registrations::open(&settings.data_dir, settings.store.cache_bytes)
                .map_err(StartError::Store)?,
        );
        let mut apps = HashMap::new();
        for (name, app) in &settings.apps {
            let provider =
                Provider::start(app).map_err(|e| StartError::Provider(name.clone(), e))?;
            apps.insert(
                name.clone(),
                Arc::new(App {
                    provider,
                    policy: app.priority_policy(),
                }),
            );
        }
        let store_thread = StoreThread::start();
        let store_recovery = smol::spawn(crate::registrations::recovery::watch(
            Arc::clone(&registrations),
            store_thread.clone(),
        ));
        let pushes = Arc::new(PushService::new(
            Arc::clone(&registrations),
            store_thread.clone(),
            apps,
            settings.rate_limit,
            Duration::from_secs(settings.limits.push_timeout_secs),
            Arc::clone(&clock),
        ));
        let links = settings
            .components
            .iter()
            .map(|c| (c.jid.clone(), Arc::new(LinkStatus::default())))
            .collect();
        Ok(Arc::new(Core {
            settings,
            registrations,
            pushes,
            clock,
            links,
            store_thread,
            _store_recovery: store_recovery,
        }))
    }

    /// The component with this JID, else the first one.
    pub fn component_or_first(&self, jid: Option<&str>) -> &ComponentSettings {
        jid.and_then(|j| self.settings.component(j))
            .unwrap_or(&self.settings.components[0])
    }

    /// Registers (or renews) a device at `component`. Synced to disk
    /// before it returns.
    pub async fn register(
        &self,
        component: &ComponentSettings,
        push_type: &str,
        node: &str,
        token: &str,
    ) -> Result<Registered, RegisterError> {
        let fields = [("type", push_type), ("node", node), ("token", token)];
        check_request(component, push_type, &fields)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, node, token) = (
            component.jid.clone(),
            push_type.to_owned(),
            node.to_owned(),
            token.to_owned(),
        );
        let now = self.clock.now();
        let r = self
            .store_thread
            .run(move || regs.register(&jid, &ty, &node, &token, now))
            .await
            .map_err(store_failed)?;
        log::info!(
            "registered node {} ({}) at {}",
            r.registration.node,
            r.registration.push_type,
            r.registration.component
        );
        Ok(r)
    }

    /// Removes a device's registration. Synced to disk before it returns.
    pub async fn unregister(
        &self,
        component: &ComponentSettings,
        push_type: &str,
        node: &str,
    ) -> Result<Registered, RegisterError> {
        check_request(component, push_type, &[("type", push_type), ("node", node)])?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, n) = (component.jid.clone(), push_type.to_owned(), node.to_owned());
        let r = self
            .store_thread
            .run(move || regs.unregister(&jid, &ty, &n))
            .await
            .map_err(store_failed)?
            .ok_or(RegisterError::NotFound)?;
        log::info!(
            "unregistered node {node} ({push_type}) at {}",
            component.jid
        );
        Ok(r)
    }

    /// Link state of a component.
    pub fn link(&self, jid: &str) -> Option<&Arc<LinkStatus>> {
        self.links.iter().find(|(j, _)| j == jid).map(|(_, s)| s)
    }
}

/// Checks each field in order, then that `component` offers `push_type`.
fn check_request(
    component: &ComponentSettings,
    push_type: &str,
    fields: &[(&'static str, &str)],
) -> Result<(), RegisterError> {
    for &(name, value) in fields {
        check_field(name, value).map_err(RegisterError::Input)?;
    }
    if !component.types.iter().any(|t| t == push_type) {
        return Err(RegisterError::UnknownType(push_type.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_error_table_for_xmpp_and_http() {
        let row = |e: RegisterError| {
            let s = e.to_stanza_error();
            (s.condition, e.http_status(), s.text.unwrap_or_default())
        };
        assert_eq!(
            row(RegisterError::UnknownType("pigeon".into())),
            ("bad-request", 400, "unknown push type \"pigeon\"".into())
        );
        assert_eq!(
            row(RegisterError::Input(InputError::Missing("token"))),
            ("bad-request", 400, "missing field 'token'".into())
        );
        assert_eq!(row(RegisterError::NotFound).0, "item-not-found");
        assert_eq!(row(RegisterError::NotFound).1, 404);
        let store = RegisterError::Store(StoreError::Corrupt("secret detail".into()));
        assert_eq!(store.client_reason(), "registration store unavailable");
        assert_eq!(row(store).0, "internal-server-error");
    }
}
