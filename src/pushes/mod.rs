//! The push service: the one pipeline every push of every dialect passes.
//!
//! A publish to a stored registration ([`PushService::push`]) is looked
//! up, its sender and secret checked and its payload flavour chosen; a
//! stateless dialect (Monal, Push 2.0) builds its push itself. Both then
//! go through [`PushService::deliver`]: the per-device throttle, the push
//! metrics and in-flight accounting, the provider under a deadline, and
//! the outcome (dead tokens removed, the push record kept). Serves XMPP
//! publishes and HTTP `/push` alike.

mod apps;
mod error;
mod outcome;
pub mod throttle;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

pub use apps::{start_apps, App, AppStartError};
pub use error::PushError;
use throttle::{Decision, Throttle};

use crate::clock::Clock;
use crate::domains::registrable_domain;
use crate::metrics::{self, PushResult};
use crate::providers::apns::siskin::{SiskinPayload, SiskinPush};
use crate::providers::{FailureKind, Flavour, Outcome, Push};
use crate::ratelimit::RateLimiter;
use crate::registrations::owner::{domain_of, may_publish, owner_of, short};
use crate::registrations::{DialectRecord, Registration, Registrations};
use crate::stanza::publish::PublishRequest;
use crate::store_thread::StoreThread;

/// Devices tracked by the throttle at most.
const THROTTLE_CAPACITY: usize = 100_000;

/// (component, node, priority): like the module's zthrottle id
/// `priority@node`, so a silent push never holds back a visible one.
type DeviceKey = (String, String, &'static str);

/// Whether a push has a stored registration behind it, which decides what
/// its outcome may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A registered device: its record is kept up to date and a dead token
    /// removes it.
    Registered,
    /// A device named only by the push (Monal, Push 2.0): nothing stored.
    Stateless,
}

/// A push waiting in the throttle for its window to end.
#[derive(Debug)]
struct Held {
    app: Arc<App>,
    push: Push,
    target: Target,
}

/// A store failure behind a push: logged once, here, whichever front end
/// asked.
fn store_failed(e: crate::registrations::StoreError) -> PushError {
    metrics::global().store_failure();
    log::error!("push failed in the registration store: {e}");
    PushError::Store(e)
}

/// Longest a push waits for the reader thread to start its read (a slow
/// disk, a flood of pushes to uncached devices).
const LOOKUP_WAIT: Duration = Duration::from_secs(10);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Races a provider's send against `timeout` (a coarse deadline: it
/// almost never fires, see [`crate::deadline`]).
///
/// The send comes boxed: the provider's future is large (TLS, HTTP/2,
/// retries), and held inline it would make every publish task that large,
/// also those answered without sending (throttled, unknown node, wrong
/// secret): 4096 in flight on one link then took ~45 MiB. Boxed by the
/// caller, it is built in place and never moved.
async fn send_within<F: std::future::Future<Output = Outcome>>(
    timeout: Duration,
    send: std::pin::Pin<Box<F>>,
) -> Outcome {
    send.or(async {
        crate::deadline::sleep(timeout).await;
        Outcome::failed(
            FailureKind::Timeout,
            format!("provider did not answer within {}s", timeout.as_secs()),
        )
    })
    .await
}

/// The push service; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PushService {
    registrations: Arc<Registrations>,
    store_thread: StoreThread,
    /// Reads a registration the record cache does not hold, off the
    /// executor.
    reader: StoreThread,
    /// Swapped whole by a reload; a push in flight keeps its `Arc<App>`.
    apps: RwLock<Arc<HashMap<String, Arc<App>>>>,
    throttle: Option<Mutex<Throttle<DeviceKey, Held>>>,
    clock: Arc<dyn Clock>,
    /// The provider timeout in milliseconds; changed by a reload.
    timeout_ms: AtomicU64,
    /// What Siskin payloads may carry, by component JID (the operator's
    /// current choice applies to every push, not only new registrations).
    siskin: HashMap<String, SiskinPayload>,
    /// Pushes per sender domain (`limits.pushes_per_second_per_domain`).
    senders: Mutex<RateLimiter<String>>,
}

impl PushService {
    /// A service sending through `apps` (by push type). `siskin` holds
    /// each component's Siskin payload settings (missing: the defaults).
    // The wiring passes each part once, at start.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registrations: Arc<Registrations>,
        store_thread: StoreThread,
        apps: HashMap<String, Arc<App>>,
        rate_limit: u32,
        timeout: Duration,
        clock: Arc<dyn Clock>,
        siskin: HashMap<String, SiskinPayload>,
        per_domain: u32,
    ) -> Self {
        PushService {
            registrations,
            store_thread,
            reader: StoreThread::reader(),
            apps: RwLock::new(Arc::new(apps)),
            throttle: Throttle::<DeviceKey, Held>::window_for(rate_limit)
                .map(|w| Mutex::new(Throttle::new(w, THROTTLE_CAPACITY))),
            clock,
            timeout_ms: AtomicU64::new(millis(timeout)),
            siskin,
            senders: Mutex::new(RateLimiter::new(per_domain)),
        }
    }

    /// The app profiles.
    pub fn apps(&self) -> Arc<HashMap<String, Arc<App>>> {
        Arc::clone(&self.apps.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the app profiles and the provider timeout (SIGHUP reload).
    /// Pushes already handed to the old providers finish with them.
    pub fn reload(&self, apps: HashMap<String, Arc<App>>, timeout: Duration) {
        *self.apps.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(apps);
        self.timeout_ms.store(millis(timeout), Ordering::Relaxed);
    }

    /// How long a provider may take (`limits.push_timeout_secs`).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// The payload flavour of a registration's dialect under
    /// `component`'s current settings.
    fn flavour(&self, component: &str, record: Option<DialectRecord>) -> Flavour {
        match record {
            None => Flavour::Standard,
            Some(DialectRecord::Conversations {
                account, channel, ..
            }) => Flavour::P2 { account, channel },
            Some(DialectRecord::Siskin {
                account,
                voip_token,
            }) => Flavour::Siskin(SiskinPush {
                account,
                voip_token,
                payload: self.siskin.get(component).copied().unwrap_or_default(),
            }),
        }
    }

    /// Handles one publish for `component` sent by `from` (`None` over
    /// HTTP). `Ok` means accepted (sent, held by the throttle, or
    /// coalesced); errors map to XMPP/HTTP errors.
    ///
    /// A registration with an owner answers only publishes from its
    /// owner's domain; to anyone else it looks unknown, secret or not, so
    /// a leaked node and secret are useless elsewhere.
    pub async fn push(
        self: &Arc<Self>,
        component: &str,
        from: Option<&str>,
        req: PublishRequest,
    ) -> Result<(), PushError> {
        self.registrations.ready().await.map_err(store_failed)?;
        let reg = match self.registrations.cached_for_push(component, &req.node) {
            Some(reg) => reg,
            None => self
                .read_for_push(component, &req.node)
                .await?
                .ok_or(PushError::UnknownNode)?,
        };
        if let Some(owner) = &reg.owner {
            // A channel's registration (Conversations' `muc`) is pushed by
            // the channel's service, not by the owner's server.
            let publisher = reg.dialect.as_ref().and_then(|d| d.publisher());
            if !may_publish(owner, from) && !publisher.is_some_and(|p| may_publish(p, from)) {
                log::debug!(
                    "push for node {} from {from:?}, not from its owner's domain",
                    req.node
                );
                return Err(PushError::UnknownNode);
            }
        }
        // Siskin's registrations have no secret: their random node is the
        // credential (see the Siskin dialect).
        if !reg.dialect.as_ref().is_some_and(|d| d.secretless()) {
            let secret = req
                .secret
                .as_deref()
                .ok_or_else(|| PushError::BadRequest("publish-options without a secret".into()))?;
            if !self.registrations.verify_secret(&reg, secret) {
                return Err(PushError::WrongSecret);
            }
        }
        let app = self
            .apps()
            .get(&reg.push_type)
            .cloned()
            .ok_or_else(|| PushError::TypeNotConfigured(reg.push_type.clone()))?;
        let flavour = self.flavour(component, reg.dialect.clone());
        let priority = match &flavour {
            Flavour::Siskin(s) => s.priority(req.voip_hint),
            _ => app.policy.decide(&req.summary, req.high_hint),
        };
        let push = Push {
            component: component.to_owned(),
            push_type: reg.push_type.clone(),
            node: reg.node.clone(),
            token: reg.token.clone(),
            priority,
            summary: req.summary,
            encrypted: req.encrypted,
            flavour,
        };
        self.deliver(app, push, Target::Registered, from).await
    }

    /// Reads a registration the record cache does not hold on the reader
    /// thread (and caches it): the read may wait on the disk, which must
    /// not hold every other push and link on the executor.
    async fn read_for_push(
        &self,
        component: &str,
        node: &str,
    ) -> Result<Option<Arc<Registration>>, PushError> {
        let regs = Arc::clone(&self.registrations);
        let (component, node) = (component.to_owned(), node.to_owned());
        self.reader
            .run_within(LOOKUP_WAIT, move || regs.lookup_for_push(&component, &node))
            .await
            .map_err(|_| store_failed(crate::registrations::StoreError::Busy))?
            .map_err(store_failed)
    }

    /// The one pipeline: the rate of the sender's domain (`from`, `None`
    /// over HTTP, where the API's own rate applies), then the throttle
    /// per device and priority, then `app`'s provider under the push
    /// timeout; counts the push and applies its outcome. `Ok` means
    /// accepted: sent, held for the end of the device's window, or
    /// coalesced with a held one.
    pub async fn deliver(
        self: &Arc<Self>,
        app: Arc<App>,
        push: Push,
        target: Target,
        from: Option<&str>,
    ) -> Result<(), PushError> {
        if let Some(from) = from {
            // Per registrable domain: subdomains made at will share one rate.
            let domain = owner_of(from).map_or_else(
                || from.to_owned(),
                |o| registrable_domain(domain_of(&o)).to_owned(),
            );
            let allowed = self
                .senders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allow(domain, self.clock.instant());
            if !allowed {
                metrics::global().push(&push.push_type, PushResult::Throttled);
                return Err(PushError::RateLimited);
            }
        }
        let Some(throttle) = &self.throttle else {
            return self.send(&app, push, target).await;
        };
        let key = (
            push.component.clone(),
            push.node.clone(),
            push.priority.as_str(),
        );
        let app_name = push.push_type.clone();
        let held = Held { app, push, target };
        let decision = throttle.lock().unwrap_or_else(|e| e.into_inner()).decide(
            &key,
            held,
            self.clock.instant(),
        );
        if !matches!(decision, Decision::Now(_)) {
            metrics::global().push(&app_name, PushResult::Throttled);
        }
        match decision {
            Decision::Now(h) => self.send(&h.app, h.push, h.target).await,
            Decision::Later(at) => {
                log::debug!(
                    "throttle: holding a push for node {} until the window ends",
                    key.1
                );
                let this = Arc::clone(self);
                smol::spawn(async move { this.send_held(key, at).await }).detach();
                Ok(())
            }
            Decision::Coalesced => {
                log::debug!("throttle: coalesced a push for node {}", key.1);
                Ok(())
            }
        }
    }

    async fn send_held(self: Arc<Self>, key: DeviceKey, at: Instant) {
        let wait = at.saturating_duration_since(self.clock.instant());
        async_io::Timer::after(wait).await;
        let held = match &self.throttle {
            Some(t) => t
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take_due(&key, self.clock.instant().max(at)),
            None => None,
        };
        if let Some(h) = held {
            if let Err(e) = self.send(&h.app, h.push, h.target).await {
                log::info!("held push for node {} failed: {e}", short(&key.1));
            }
        }
    }

    /// Sends through the provider under the push timeout, counts it and
    /// applies the outcome.
    async fn send(&self, app: &App, push: Push, target: Target) -> Result<(), PushError> {
        let timeout = self.timeout();
        let in_flight = metrics::global().in_flight(&push.push_type);
        let started = Instant::now();
        let outcome = send_within(timeout, Box::pin(app.provider.send(&push))).await;
        drop(in_flight);
        metrics::global().sent(
            &push.push_type,
            outcome::counted(&outcome),
            started.elapsed(),
        );
        let now_ms = crate::clock::unix_millis(self.clock.now());
        match &outcome {
            Outcome::Delivered => metrics::global().last_outcome(&push.push_type, now_ms, None),
            Outcome::Failed(f) => {
                metrics::global().last_outcome(&push.push_type, now_ms, Some(&f.reason))
            }
            Outcome::DeadToken { .. } => {}
        }
        self.apply(&push, target, outcome).await
    }
}
