//! The async core shared by the component links and the HTTP API: the
//! registration store, the push service and the providers, plus the
//! registration operations both front ends offer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::config::{ComponentSettings, Settings};
use crate::link::LinkStatus;
use crate::providers;
use crate::pushes::PushService;
use crate::registrations::owner::{owner_of, short};
use crate::registrations::{
    check_field, CommandRate, CountLimits, InputError, LimitKind, Refusal, RegError, Registered,
    Registrations, StoreError,
};
use crate::stanza::{ErrorType, StanzaError};
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
    /// Unregister of a node that is not registered with this type (or, over
    /// XMPP, not by this requester).
    NotFound,
    /// A command without a usable sender JID.
    NoRequester,
    /// The requester sent too many commands lately.
    RateLimited,
    /// Refused by the store's rules: a count limit, a node owned by an XMPP
    /// account, a wrong secret.
    Refused(Refusal),
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
            RegisterError::UnknownType(_)
            | RegisterError::Input(_)
            | RegisterError::NoRequester => StanzaError::bad_request(reason),
            RegisterError::NotFound => StanzaError::item_not_found(reason),
            RegisterError::RateLimited => {
                StanzaError::new(ErrorType::Wait, "resource-constraint", reason)
            }
            RegisterError::Refused(Refusal::WrongSecret) => {
                StanzaError::new(ErrorType::Auth, "forbidden", reason)
            }
            RegisterError::Refused(_) => StanzaError::new(ErrorType::Cancel, "not-allowed", reason),
            RegisterError::Store(_) => StanzaError::internal(reason),
        }
    }

    /// The HTTP status answering the API.
    pub fn http_status(&self) -> u16 {
        match self {
            RegisterError::UnknownType(_)
            | RegisterError::Input(_)
            | RegisterError::NoRequester => 400,
            RegisterError::NotFound => 404,
            RegisterError::RateLimited => 429,
            RegisterError::Refused(Refusal::Limit(LimitKind::Total)) => 507,
            RegisterError::Refused(_) => 403,
            RegisterError::Store(_) => 500,
        }
    }
}

/// A store failure behind a registration request: logged once, here.
fn store_failed(e: StoreError) -> RegisterError {
    crate::metrics::global().store_failure();
    log::error!("registration failed: {e}");
    RegisterError::Store(e)
}

fn reg_failed(e: RegError) -> RegisterError {
    match e {
        RegError::Store(e) => store_failed(e),
        RegError::Refused(r) => RegisterError::Refused(r),
    }
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::UnknownType(t) => write!(f, "unknown push type {t:?}"),
            RegisterError::Input(e) => write!(f, "{e}"),
            RegisterError::NotFound => f.write_str("node not registered with this push type"),
            RegisterError::NoRequester => f.write_str("the command has no sender JID"),
            RegisterError::RateLimited => {
                f.write_str("too many registration commands; try again later")
            }
            RegisterError::Refused(r) => write!(f, "{}", RegError::Refused(*r)),
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
    /// Rate of registration commands per requester JID and domain.
    command_rate: Mutex<CommandRate>,
    /// Retries store writes after a failure (e.g. a full disk).
    _store_recovery: smol::Task<()>,
    /// Writes push outcomes in batches (see `registrations::outcomes`).
    _outcome_flush: smol::Task<()>,
}

impl Core {
    /// Opens the store and starts the providers.
    pub fn start(settings: Settings) -> Result<Arc<Core>, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let limits = count_limits(&settings);
        let registrations = Arc::new(
            Registrations::open(&settings.data_dir, settings.store.cache_bytes)
                .map_err(StartError::Store)?
                .with_limits(limits)
                .with_record_cache(settings.store.record_cache),
        );
        let command_rate = Mutex::new(CommandRate::new(
            settings.registrations.commands_per_minute_per_jid,
            settings.registrations.commands_per_minute_per_domain,
        ));
        let apps = crate::reload::start_apps(&settings.apps)?;
        crate::metrics::global().set_apps(settings.apps.keys().map(String::as_str));
        let store_thread = StoreThread::start();
        let store_recovery = smol::spawn(crate::registrations::recovery::watch(
            Arc::clone(&registrations),
            store_thread.clone(),
        ));
        let outcome_flush = smol::spawn(crate::registrations::outcomes::flush_every(
            Arc::clone(&registrations),
            store_thread.clone(),
            Duration::from_secs(settings.store.outcome_flush_secs),
        ));
        let pushes = Arc::new(PushService::new(
            Arc::clone(&registrations),
            store_thread.clone(),
            apps,
            settings.rate_limit,
            Duration::from_secs(settings.limits.push_timeout_secs),
            Arc::clone(&clock),
        ));
        pushes.set_components(settings.components.clone());
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
            command_rate,
            _store_recovery: store_recovery,
            _outcome_flush: outcome_flush,
        }))
    }

    /// The component with this JID, else the first one.
    pub fn component_or_first(&self, jid: Option<&str>) -> &ComponentSettings {
        jid.and_then(|j| self.settings.component(j))
            .unwrap_or(&self.settings.components[0])
    }

    /// Registers (or renews) a device at `component` over HTTP, where
    /// nobody has an identity: see [`Registrations::register`]. Synced to
    /// disk before it returns.
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
            .map_err(reg_failed)?;
        log_registered(&r, "HTTP");
        crate::metrics::global().registration(push_type, true);
        Ok(r)
    }

    /// Registers (or renews) device `device` of the command's sender
    /// `from` (XMPP): the node is derived from (component, sender's bare
    /// JID, device), so only that JID reaches it. Rate and count limited.
    /// Synced to disk before it returns.
    pub async fn register_owned(
        &self,
        component: &ComponentSettings,
        from: &str,
        push_type: &str,
        device: &str,
        token: &str,
    ) -> Result<Registered, RegisterError> {
        let fields = [("type", push_type), ("node", device), ("token", token)];
        check_request(component, push_type, &fields)?;
        let owner = self.requester(from)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, device, token) = (
            component.jid.clone(),
            push_type.to_owned(),
            device.to_owned(),
            token.to_owned(),
        );
        let now = self.clock.now();
        let who = owner.clone();
        let r = self
            .store_thread
            .run(move || regs.register_owned(&jid, &ty, &who, &device, &token, now))
            .await
            .map_err(|e| {
                if let RegError::Refused(Refusal::Limit(l)) = &e {
                    log::info!("registration by {owner} refused: {l}");
                }
                reg_failed(e)
            })?;
        log_registered(&r, &owner);
        crate::metrics::global().registration(push_type, true);
        Ok(r)
    }

    /// Removes a device's registration over HTTP. `secret` must be the
    /// node's secret, unless `http.open_unregister` lets an empty one
    /// through. Synced to disk before it returns.
    pub async fn unregister(
        &self,
        component: &ComponentSettings,
        push_type: &str,
        node: &str,
        secret: &str,
    ) -> Result<Registered, RegisterError> {
        check_request(component, push_type, &[("type", push_type), ("node", node)])?;
        let secret = match (secret.trim(), self.settings.http.open_unregister) {
            ("", true) => None,
            (s, _) => Some(s.to_owned()),
        };
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, n) = (component.jid.clone(), push_type.to_owned(), node.to_owned());
        let r = self
            .store_thread
            .run(move || regs.unregister(&jid, &ty, &n, secret.as_deref()))
            .await
            .map_err(reg_failed)?
            .ok_or(RegisterError::NotFound)?;
        log_unregistered(&r, "HTTP");
        crate::metrics::global().registration(push_type, false);
        Ok(r)
    }

    /// Removes the registration of the command's sender `from` named by
    /// its device id or its node (XMPP); nobody else's. Rate limited.
    /// Synced to disk before it returns.
    pub async fn unregister_owned(
        &self,
        component: &ComponentSettings,
        from: &str,
        push_type: &str,
        device_or_node: &str,
    ) -> Result<Registered, RegisterError> {
        let fields = [("type", push_type), ("node", device_or_node)];
        check_request(component, push_type, &fields)?;
        let owner = self.requester(from)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, n) = (
            component.jid.clone(),
            push_type.to_owned(),
            device_or_node.to_owned(),
        );
        let who = owner.clone();
        let r = self
            .store_thread
            .run(move || regs.unregister_owned(&jid, &ty, &who, &n))
            .await
            .map_err(store_failed)?
            .ok_or(RegisterError::NotFound)?;
        log_unregistered(&r, &owner);
        crate::metrics::global().registration(push_type, false);
        Ok(r)
    }

    /// The owner named by a command's `from`, once its command rate allows.
    pub(crate) fn requester(&self, from: &str) -> Result<String, RegisterError> {
        let owner = owner_of(from).ok_or(RegisterError::NoRequester)?;
        let allowed = self
            .command_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(&owner, Instant::now());
        if !allowed {
            log::debug!("registration commands of {owner} are over their rate");
            return Err(RegisterError::RateLimited);
        }
        Ok(owner)
    }

    /// Applies reloaded registration limits: the count limits, and the
    /// command rates (starting their windows afresh).
    pub fn set_registration_limits(&self, settings: &Settings) {
        self.registrations.set_limits(count_limits(settings));
        let r = &settings.registrations;
        *self.command_rate.lock().unwrap_or_else(|e| e.into_inner()) = CommandRate::new(
            r.commands_per_minute_per_jid,
            r.commands_per_minute_per_domain,
        );
    }

    /// Link state of a component.
    pub fn link(&self, jid: &str) -> Option<&Arc<LinkStatus>> {
        self.links.iter().find(|(j, _)| j == jid).map(|(_, s)| s)
    }
}

fn count_limits(settings: &Settings) -> CountLimits {
    CountLimits {
        per_jid: settings.registrations.max_per_jid,
        per_domain: settings.registrations.max_per_domain,
        total: settings.store.max_registrations,
    }
}

fn log_registered(r: &Registered, by: &str) {
    let reg = &r.registration;
    log::info!(
        "registered node {} ({}) at {} for {by}",
        short(&reg.node),
        reg.push_type,
        reg.component
    );
    log::debug!("node {} has token {}", reg.node, reg.token);
}

fn log_unregistered(r: &Registered, by: &str) {
    let reg = &r.registration;
    log::info!(
        "unregistered node {} ({}) at {} for {by}",
        short(&reg.node),
        reg.push_type,
        reg.component
    );
    log::debug!("unregistered node {}", reg.node);
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
        assert_eq!(
            row(RegisterError::RateLimited),
            (
                "resource-constraint",
                429,
                "too many registration commands; try again later".into()
            )
        );
        let limit = |k| RegisterError::Refused(Refusal::Limit(k));
        assert_eq!(row(limit(LimitKind::Jid)).0, "not-allowed");
        assert_eq!(row(limit(LimitKind::Jid)).1, 403);
        assert_eq!(row(limit(LimitKind::Total)).1, 507);
        assert_eq!(
            row(RegisterError::Refused(Refusal::Owned)),
            (
                "not-allowed",
                403,
                "node belongs to another registration".into()
            )
        );
        assert_eq!(row(RegisterError::Refused(Refusal::WrongSecret)).1, 403);
        let store = RegisterError::Store(StoreError::Corrupt("secret detail".into()));
        assert_eq!(store.client_reason(), "registration store unavailable");
        assert_eq!(row(store).0, "internal-server-error");
    }
}
