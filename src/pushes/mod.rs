//! The push service: validates a publish against its registration, checks
//! the secret, throttles, decides priority, calls the provider, removes dead
//! tokens and records the outcome. Serves XMPP publishes and HTTP `/push`.

mod error;
pub mod throttle;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

pub use error::PushError;
use throttle::{Decision, Throttle};

use crate::clock::Clock;
use crate::metrics::{self, PushResult};
use crate::providers::{Failure, FailureKind, Outcome, PriorityPolicy, Provider, Push};
use crate::registrations::owner::{may_publish, short};
use crate::registrations::Registrations;
use crate::stanza::publish::PublishRequest;
use crate::store_thread::StoreThread;

/// Devices tracked by the throttle at most.
const THROTTLE_CAPACITY: usize = 100_000;

/// (component, node, priority): like the module's zthrottle id
/// `priority@node`, so a silent push never holds back a visible one.
type DeviceKey = (String, String, &'static str);

/// A store failure behind a push: logged once, here, whichever front end
/// asked.
fn store_failed(e: crate::registrations::StoreError) -> PushError {
    metrics::global().store_failure();
    log::error!("push failed in the registration store: {e}");
    PushError::Store(e)
}

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
pub async fn send_within<F: std::future::Future<Output = Outcome>>(
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

/// A provider with the policy of its app profile.
#[derive(Debug)]
pub struct App {
    /// The running provider.
    pub provider: Provider,
    /// How priorities are chosen.
    pub policy: PriorityPolicy,
}

/// The push service; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PushService {
    registrations: Arc<Registrations>,
    store_thread: StoreThread,
    /// Swapped whole by a reload; a push in flight keeps its `Arc<App>`.
    apps: RwLock<Arc<HashMap<String, Arc<App>>>>,
    throttle: Option<Mutex<Throttle<DeviceKey, Push>>>,
    clock: Arc<dyn Clock>,
    /// The provider timeout in milliseconds; changed by a reload.
    timeout_ms: AtomicU64,
    /// Component settings, for the dialects' payload options.
    components: std::sync::OnceLock<Vec<crate::config::ComponentSettings>>,
}

impl PushService {
    /// A service sending through `apps` (by push type).
    pub fn new(
        registrations: Arc<Registrations>,
        store_thread: StoreThread,
        apps: HashMap<String, Arc<App>>,
        rate_limit: u32,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PushService {
            registrations,
            store_thread,
            apps: RwLock::new(Arc::new(apps)),
            throttle: Throttle::<DeviceKey, Push>::window_for(rate_limit)
                .map(|w| Mutex::new(Throttle::new(w, THROTTLE_CAPACITY))),
            clock,
            timeout_ms: AtomicU64::new(millis(timeout)),
            components: std::sync::OnceLock::new(),
        }
    }

    /// Where the dialects' payload options come from (set once, at start;
    /// without it, dialects use their defaults).
    pub fn set_components(&self, components: Vec<crate::config::ComponentSettings>) {
        let _ = self.components.set(components);
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
        let reg = self
            .registrations
            .lookup_for_push(component, &req.node)
            .map_err(store_failed)?
            .ok_or(PushError::UnknownNode)?;
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
        // credential (see crate::dialects).
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
        let dialect = reg.dialect.clone().map(|d| {
            let components = self.components.get().map_or(&[][..], Vec::as_slice);
            crate::dialects::DialectPush::new(d, components.iter().find(|c| c.jid == component))
        });
        let decided = app.policy.decide(&req.summary, req.high_hint);
        let push = Push {
            component: component.to_owned(),
            push_type: reg.push_type.clone(),
            node: reg.node.clone(),
            token: reg.token.clone(),
            priority: dialect
                .as_ref()
                .map_or(decided, |d| d.priority(decided, req.voip_hint)),
            summary: req.summary,
            encrypted: req.encrypted,
            dialect,
        };
        let Some(throttle) = &self.throttle else {
            return self.send(&app, push).await;
        };
        let key = (
            push.component.clone(),
            push.node.clone(),
            push.priority.as_str(),
        );
        let app_name = push.push_type.clone();
        let decision = throttle.lock().unwrap_or_else(|e| e.into_inner()).decide(
            &key,
            push,
            self.clock.instant(),
        );
        if !matches!(decision, Decision::Now(_)) {
            metrics::global().push(&app_name, PushResult::Throttled);
        }
        match decision {
            Decision::Now(push) => self.send(&app, push).await,
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
        if let Some(push) = held {
            if let Some(app) = self.apps().get(&push.push_type).cloned() {
                if let Err(e) = self.send(&app, push).await {
                    log::info!("held push for node {} failed: {e}", short(&key.1));
                }
            }
        }
    }

    /// Sends through the provider with a timeout and applies the outcome.
    async fn send(&self, app: &App, push: Push) -> Result<(), PushError> {
        let timeout = self.timeout();
        let in_flight = metrics::global().in_flight(&push.push_type);
        let started = Instant::now();
        let outcome = send_within(timeout, Box::pin(app.provider.send(&push))).await;
        drop(in_flight);
        metrics::global().sent(&push.push_type, &outcome, started.elapsed());
        let now = self.clock.now();
        match outcome {
            Outcome::Delivered => {
                self.registrations
                    .record_push(&push.component, &push.node, now, None);
                Ok(())
            }
            // A dead PushKit token says nothing about the device token the
            // registration is stored under: keep it, and keep push on.
            Outcome::DeadToken { .. }
                if push
                    .dialect
                    .as_ref()
                    .is_some_and(|d| d.uses_second_token(push.priority)) =>
            {
                log::info!(
                    "provider rejects the VoIP token of node {} ({})",
                    short(&push.node),
                    push.push_type
                );
                Err(PushError::Provider(Failure {
                    kind: FailureKind::Unavailable,
                    reason: "the VoIP token was rejected by the provider".into(),
                }))
            }
            Outcome::DeadToken { since } => {
                let regs = Arc::clone(&self.registrations);
                let (ty, token) = (push.push_type.clone(), push.token.clone());
                let removed = self
                    .store_thread
                    .run(move || regs.remove_dead_token(&ty, &token, since))
                    .await
                    .map_err(store_failed)?;
                if !removed
                    .iter()
                    .any(|r| r.node == push.node && r.component == push.component)
                {
                    // The device registered again after the provider's
                    // timestamp: keep it, and do not make the XMPP server
                    // disable push for it.
                    log::info!(
                        "provider reports node {} ({}) dead, but it registered again since",
                        short(&push.node),
                        push.push_type
                    );
                    return Err(PushError::Provider(Failure {
                        kind: FailureKind::Unavailable,
                        reason: "token rejected by the provider; the device registered again since"
                            .into(),
                    }));
                }
                log::info!(
                    "dead token for node {} ({}): removed {} registration(s)",
                    short(&push.node),
                    push.push_type,
                    removed.len()
                );
                Err(PushError::DeadToken)
            }
            Outcome::Failed(f) => {
                log::warn!(
                    "push to node {} ({}) failed: {}",
                    short(&push.node),
                    push.push_type,
                    f.reason
                );
                self.registrations
                    .record_push(&push.component, &push.node, now, Some(&f.reason));
                Err(PushError::Provider(f))
            }
        }
    }
}
