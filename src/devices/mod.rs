//! The registration service: register, renew, unregister and find a
//! device, with their limits and their errors, called alike by the HTTP
//! API and by every XMPP dialect. Beneath it the store
//! ([`crate::registrations`]) owns the record format and the secrets;
//! above it a front end only parses its request and builds its reply.
//!
//! Over HTTP nobody has an identity: the secret is the proof. Over XMPP
//! the command's sender owns what it registers, and only that bare JID
//! can change or remove it; its commands are rate limited per JID and
//! domain. Every change is synced to disk on the store thread before the
//! request is answered, and counted in the metrics.

mod error;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use error::RegisterError;

use crate::clock::Clock;
use crate::config::{ComponentSettings, Settings};
use crate::providers::TokenFormat;
use crate::ratelimit::{RateLimiter, MAX_CLIENTS};
use crate::registrations::owner::{derive_node, owner_of, random_node, short};
use crate::registrations::{
    check_field, CommandRate, CountLimits, DialectRecord, InputError, LimitKind, Refusal, RegError,
    Registered, Registrations, StoreError, TokenChange,
};
use crate::store_thread::StoreThread;

/// How long a registration request waits for the store thread to take it
/// (a slow or stalled disk): past that it is answered "busy, try again"
/// and never runs, so a stalled store holds no front end's connections.
pub const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The push type a request names, which decides how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushType<'a> {
    /// A type of mod_push_appserver's API (HTTP, v1 commands): the
    /// component must offer it (`types`).
    Offered(&'a str),
    /// The app profile a dialect's settings name for this command.
    Dialect(&'a str),
}

impl<'a> PushType<'a> {
    fn name(self) -> &'a str {
        match self {
            PushType::Offered(t) | PushType::Dialect(t) => t,
        }
    }
}

/// Where an XMPP registration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChoice {
    /// At the node derived from (component, owner, this device id), so no
    /// other JID can reach it (v1, p2).
    Derived(String),
    /// At the node of the owner's registration with this token, else at a
    /// fresh random one: the node is the credential (Siskin).
    ByToken,
}

/// One XMPP registration request, parsed by its dialect.
#[derive(Debug, Clone)]
pub struct OwnedRegistration<'a> {
    /// The app profile it registers with.
    pub push_type: PushType<'a>,
    /// Where it lives.
    pub node: NodeChoice,
    /// The provider token.
    pub token: &'a str,
    /// What its dialect needs at push time; `None` for v1.
    pub record: Option<DialectRecord>,
    /// A device id under which an earlier release derived this device's
    /// node: that registration of the owner, if any, is removed once this
    /// one is stored (same store job, no second command charged).
    pub replaces: Option<String>,
}

/// The registration service; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Devices {
    registrations: Arc<Registrations>,
    store_thread: StoreThread,
    clock: Arc<dyn Clock>,
    /// `http.open_unregister`: an empty secret unregisters over HTTP.
    open_unregister: bool,
    /// `http.open_register`: HTTP register may change a node's token
    /// without its secret.
    open_register: bool,
    /// Rate of registration commands per requester JID and domain.
    command_rate: Mutex<CommandRate>,
    /// Rate of new HTTP registrations per client address (IPv6: /64).
    new_per_client: Arc<Mutex<RateLimiter<IpAddr>>>,
    /// The token format of each app profile's provider.
    token_formats: RwLock<HashMap<String, TokenFormat>>,
}

/// Longest node (or v1 device id) a new registration may name: real ones
/// are tens of bytes; the generic field limit would let every registration
/// cost kilobytes of memory and disk.
pub const MAX_NODE_BYTES: usize = 256;

impl Devices {
    /// Waits for the store to open after a start (see
    /// [`Registrations::ready`]; at once when it is), then runs `f` on the
    /// store thread, [`RegisterError::Busy`] when its queue stays full
    /// for [`STORE_WAIT`]. Every store write goes through here, so none
    /// can miss the wait.
    async fn on_store_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RegisterError> {
        self.registrations.ready().await.map_err(store_failed)?;
        self.store_thread
            .run_within(STORE_WAIT, f)
            .await
            .map_err(|_| RegisterError::Busy)
    }

    /// The service over `registrations`, with the limits of `settings`.
    pub fn new(
        registrations: Arc<Registrations>,
        store_thread: StoreThread,
        clock: Arc<dyn Clock>,
        settings: &Settings,
    ) -> Self {
        registrations.set_limits(count_limits(settings));
        Devices {
            registrations,
            store_thread,
            clock,
            open_unregister: settings.http.open_unregister,
            open_register: settings.http.open_register,
            command_rate: Mutex::new(command_rate(settings)),
            new_per_client: Arc::new(Mutex::new(new_per_client(settings))),
            token_formats: RwLock::new(token_formats(settings)),
        }
    }

    /// Checks the node and token of a new registration against the
    /// bounds of real ones: the node's length, the token's format for the
    /// provider of `push_type`.
    fn check_device(
        &self,
        push_type: &str,
        node: Option<&str>,
        token: &str,
    ) -> Result<(), RegisterError> {
        if node.is_some_and(|n| n.len() > MAX_NODE_BYTES) {
            return Err(RegisterError::Input(InputError::Invalid("node")));
        }
        let formats = self.token_formats.read().unwrap_or_else(|e| e.into_inner());
        match formats.get(push_type) {
            Some(f) if !f.accepts(token) => Err(RegisterError::Input(InputError::Invalid("token"))),
            _ => Ok(()),
        }
    }

    /// Applies reloaded registration limits: the count limits, and the
    /// command rates (starting their windows afresh).
    pub fn set_limits(&self, settings: &Settings) {
        self.registrations.set_limits(count_limits(settings));
        *self.command_rate.lock().unwrap_or_else(|e| e.into_inner()) = command_rate(settings);
        *self
            .new_per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = new_per_client(settings);
        *self
            .token_formats
            .write()
            .unwrap_or_else(|e| e.into_inner()) = token_formats(settings);
    }

    /// Registers (or renews) a device at `component` over HTTP, where
    /// nobody has an identity: another token for an existing node needs
    /// its `secret` (empty: none given); see [`Registrations::register`].
    /// A new node costs `client` (an address, or the /64 of an IPv6 one)
    /// one of its new registrations per hour; renewals cost nothing, and
    /// neither does a registration refused for another reason.
    pub async fn register(
        &self,
        component: &ComponentSettings,
        push_type: &str,
        node: &str,
        token: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<Registered, RegisterError> {
        let fields = [("type", push_type), ("node", node), ("token", token)];
        check_request(component, PushType::Offered(push_type), &fields)?;
        self.check_device(push_type, Some(node), token)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, node, token) = (
            component.jid.clone(),
            push_type.to_owned(),
            node.to_owned(),
            token.to_owned(),
        );
        let secret = Some(secret.trim().to_owned()).filter(|s| !s.is_empty());
        let open = self.open_register;
        let (now, instant) = (self.clock.now(), self.clock.instant());
        let per_client = Arc::clone(&self.new_per_client);
        let r = self
            .on_store_thread(move || {
                let change = TokenChange {
                    secret: secret.as_deref(),
                    open,
                };
                // Jobs run one at a time on the store thread: nothing can
                // add this node between the lookup and the write.
                let rate = || per_client.lock().unwrap_or_else(|e| e.into_inner());
                let new = regs.lookup(&jid, &node)?.is_none();
                if new && !rate().allow(client, instant) {
                    return Err(RegError::Refused(Refusal::Limit(LimitKind::Client)));
                }
                let r = regs.register(&jid, &ty, &node, &token, change, now);
                if new && r.is_err() {
                    rate().refund(&client);
                }
                r
            })
            .await?
            .map_err(|e| reg_failed(e, "HTTP"))?;
        registered(&r, push_type, "HTTP");
        Ok(r)
    }

    /// Registers (or renews) a device of the command's sender `from`
    /// (XMPP), who then owns it. Rate and count limited.
    pub async fn register_owned(
        &self,
        component: &ComponentSettings,
        from: &str,
        req: OwnedRegistration<'_>,
    ) -> Result<Registered, RegisterError> {
        let ty = req.push_type.name();
        // A dialect checked its own fields when it parsed them (its device
        // ids need not be printable); v1's come straight from the form.
        let fields = match (req.push_type, &req.node) {
            (PushType::Offered(t), NodeChoice::Derived(device)) => {
                vec![("type", t), ("node", device.as_str()), ("token", req.token)]
            }
            _ => vec![("token", req.token)],
        };
        check_request(component, req.push_type, &fields)?;
        let device = match &req.node {
            NodeChoice::Derived(device) => Some(device.as_str()),
            NodeChoice::ByToken => None,
        };
        self.check_device(ty, device, req.token)?;
        let owner = self.requester(from)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty_owned, token, who) = (
            component.jid.clone(),
            ty.to_owned(),
            req.token.to_owned(),
            owner.clone(),
        );
        let (choice, record, replaces) = (req.node, req.record, req.replaces);
        let now = self.clock.now();
        let r = self
            .on_store_thread(move || {
                let node = match choice {
                    NodeChoice::Derived(device) => derive_node(&jid, &who, &device),
                    NodeChoice::ByToken => node_by_token(&regs, &jid, &ty_owned, &who, &token)?,
                };
                let r = regs.register_at(&jid, &ty_owned, &who, &node, &token, record, now)?;
                if let Some(old) = replaces.filter(|old| derive_node(&jid, &who, old) != node) {
                    // The new registration stands either way.
                    if let Err(e) = regs.unregister_owned(&jid, &ty_owned, &who, &old) {
                        log::warn!("could not remove a registration it replaces: {e}");
                    }
                }
                Ok(r)
            })
            .await?
            .map_err(|e| reg_failed(e, &owner))?;
        registered(&r, ty, &owner);
        Ok(r)
    }

    /// Removes a device's registration over HTTP. `secret` must be the
    /// node's secret, unless `http.open_unregister` lets an empty one
    /// through.
    pub async fn unregister(
        &self,
        component: &ComponentSettings,
        push_type: &str,
        node: &str,
        secret: &str,
    ) -> Result<Registered, RegisterError> {
        let fields = [("type", push_type), ("node", node)];
        check_request(component, PushType::Offered(push_type), &fields)?;
        let secret = match (secret.trim(), self.open_unregister) {
            ("", true) => None,
            (s, _) => Some(s.to_owned()),
        };
        let regs = Arc::clone(&self.registrations);
        let (jid, ty, n) = (component.jid.clone(), push_type.to_owned(), node.to_owned());
        let r = self
            .on_store_thread(move || regs.unregister(&jid, &ty, &n, secret.as_deref()))
            .await?
            .map_err(|e| reg_failed(e, "HTTP"))?
            .ok_or(RegisterError::NotFound)?;
        unregistered(&r, push_type, "HTTP");
        Ok(r)
    }

    /// Removes the registration of the command's sender `from` named by
    /// its device id or its node (XMPP); nobody else's. Rate limited.
    pub async fn unregister_owned(
        &self,
        component: &ComponentSettings,
        from: &str,
        push_type: PushType<'_>,
        device_or_node: &str,
    ) -> Result<Registered, RegisterError> {
        let ty = push_type.name();
        let fields: &[_] = match push_type {
            PushType::Offered(_) => &[("type", ty), ("node", device_or_node)],
            PushType::Dialect(_) => &[],
        };
        check_request(component, push_type, fields)?;
        let owner = self.requester(from)?;
        let regs = Arc::clone(&self.registrations);
        let (jid, ty_owned, n, who) = (
            component.jid.clone(),
            ty.to_owned(),
            device_or_node.to_owned(),
            owner.clone(),
        );
        let r = self
            .on_store_thread(move || regs.unregister_owned(&jid, &ty_owned, &who, &n))
            .await?
            .map_err(store_failed)?
            .ok_or(RegisterError::NotFound)?;
        unregistered(&r, ty, &owner);
        Ok(r)
    }

    /// The node of `from`'s registration with `token` at `component`, if
    /// there is one (Siskin names its device by token only).
    pub async fn find_owned_by_token(
        &self,
        component: &ComponentSettings,
        from: &str,
        push_type: &str,
        token: &str,
    ) -> Result<Option<String>, RegisterError> {
        let owner = owner_of(from).ok_or(RegisterError::NoRequester)?;
        self.registrations.ready().await.map_err(store_failed)?;
        let found = self
            .registrations
            .lookup_token(push_type, token)
            .map_err(store_failed)?
            .into_iter()
            .find(|r| r.component == component.jid && r.owner.as_deref() == Some(owner.as_str()));
        Ok(found.map(|r| r.node))
    }

    /// The owner named by a command's `from`, once its command rate allows.
    fn requester(&self, from: &str) -> Result<String, RegisterError> {
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
}

/// The node of `owner`'s secretless registration with `token`, else a
/// fresh random one.
fn node_by_token(
    regs: &Registrations,
    component: &str,
    push_type: &str,
    owner: &str,
    token: &str,
) -> Result<String, RegError> {
    let mine = regs.lookup_token(push_type, token)?.into_iter().find(|r| {
        r.component == component
            && r.owner.as_deref() == Some(owner)
            && r.dialect.as_ref().is_some_and(DialectRecord::secretless)
    });
    match mine {
        Some(r) => Ok(r.node),
        None => random_node().map_err(|e| RegError::Store(StoreError::Key(e))),
    }
}

fn token_formats(settings: &Settings) -> HashMap<String, TokenFormat> {
    settings
        .apps
        .iter()
        .map(|(name, app)| (name.clone(), app.token_format()))
        .collect()
}

fn count_limits(settings: &Settings) -> CountLimits {
    CountLimits {
        per_jid: settings.registrations.max_per_jid,
        per_domain: settings.registrations.max_per_domain,
        total: settings.store.max_registrations,
        new_per_minute: settings.registrations.new_per_minute,
    }
}

fn new_per_client(settings: &Settings) -> RateLimiter<IpAddr> {
    let per_hour = f64::from(settings.http.new_registrations_per_hour_per_client);
    RateLimiter::with(per_hour / 3600.0, per_hour, MAX_CLIENTS)
}

fn command_rate(settings: &Settings) -> CommandRate {
    let r = &settings.registrations;
    CommandRate::new(
        r.commands_per_minute_per_jid,
        r.commands_per_minute_per_domain,
    )
}

/// A store failure behind a registration request: logged once, here.
fn store_failed(e: StoreError) -> RegisterError {
    crate::metrics::global().store_failure();
    log::error!("registration failed: {e}");
    RegisterError::Store(e)
}

fn reg_failed(e: RegError, by: &str) -> RegisterError {
    match e {
        RegError::Store(e) => store_failed(e),
        RegError::Refused(r) => {
            log::info!("registration by {by} refused: {}", RegError::Refused(r));
            RegisterError::Refused(r)
        }
    }
}

fn registered(r: &Registered, push_type: &str, by: &str) {
    let reg = &r.registration;
    log::info!(
        "registered node {} ({}) at {} for {by}",
        short(&reg.node),
        reg.push_type,
        reg.component
    );
    log::debug!("node {} has token {}", reg.node, reg.token);
    crate::metrics::global().registration(push_type, true);
}

fn unregistered(r: &Registered, push_type: &str, by: &str) {
    let reg = &r.registration;
    log::info!(
        "unregistered node {} ({}) at {} for {by}",
        short(&reg.node),
        reg.push_type,
        reg.component
    );
    log::debug!("unregistered node {}", reg.node);
    crate::metrics::global().registration(push_type, false);
}

/// Checks each field in order, then that `component` offers an
/// [`PushType::Offered`] type.
fn check_request(
    component: &ComponentSettings,
    push_type: PushType<'_>,
    fields: &[(&'static str, &str)],
) -> Result<(), RegisterError> {
    for &(name, value) in fields {
        check_field(name, value).map_err(RegisterError::Input)?;
    }
    if let PushType::Offered(t) = push_type {
        if !component.types.iter().any(|o| o == t) {
            return Err(RegisterError::UnknownType(t.to_owned()));
        }
    }
    Ok(())
}
