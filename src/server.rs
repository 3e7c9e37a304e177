//! Wires the layers together, and is the only place that knows them all:
//! opens the store, starts the providers, builds the registration and
//! push services, then one link task per component and the HTTP API, all
//! on the smol executor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;

use crate::clock::{Clock, SystemClock};
use crate::component::ComponentHandler;
use crate::config::Settings;
use crate::devices::Devices;
use crate::dialects::push2::WEBPUSH_APP;
use crate::http::{self, Backend, HttpApi};
use crate::link::{self, LinkConfig, LinkStatus, Outbox};
use crate::pushes::{self, AppStartError, PushService};
use crate::registrations::{KeyPolicy, Registrations, StoreError};
use crate::reload::{self, ReloadError};
use crate::shutdown::Shutdown;
use crate::store_thread::StoreThread;
use crate::unifiedpush::{self, UnifiedPush};

/// Why the server could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The store failed to open.
    Store(StoreError),
    /// An app profile's provider failed to start.
    App(AppStartError),
    /// The HTTP listener could not bind.
    Http(http::BindError),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Store(e) => write!(f, "{e}"),
            ServeError::App(e) => write!(f, "{e}"),
            ServeError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// The running services, shared by the front ends.
#[derive(Debug)]
pub struct Services {
    /// The settings the server started with.
    pub settings: Arc<Settings>,
    /// The registration store.
    pub registrations: Arc<Registrations>,
    /// The registration service.
    pub devices: Arc<Devices>,
    /// The push service.
    pub pushes: Arc<PushService>,
    /// Link state by component JID.
    pub links: Vec<(String, Arc<LinkStatus>)>,
    /// Requests each component sends on its own, by component JID.
    pub outboxes: HashMap<String, Arc<Outbox>>,
    /// The UnifiedPush provider of the components that offer it.
    pub unifiedpush: Arc<UnifiedPush>,
    /// When the services started.
    pub started: std::time::Instant,
    /// Retries store writes after a failure (e.g. a full disk).
    _store_recovery: smol::Task<()>,
    /// Writes push outcomes in batches (see `registrations::outcomes`).
    _outcome_flush: smol::Task<()>,
}

impl Services {
    /// Opens the store, starts the providers and builds the services.
    pub fn start(settings: Settings) -> Result<Services, ServeError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let cache = settings.store.cache_for(&settings.data_dir);
        log::info!(
            "store: block cache {} MiB{}",
            cache / (1024 * 1024),
            if settings.store.cache_bytes.is_none() {
                " (sized by the store; [store] cache_mb fixes it)"
            } else {
                ""
            }
        );
        // In the background when it can be: the listeners and links need
        // not wait for the journal replay (see `registrations::opening`).
        let registrations = Registrations::open_in_background(
            &settings.data_dir,
            cache,
            settings.store.record_cache,
            KeyPolicy::Check,
        )
        .map_err(ServeError::Store)?;
        let apps = pushes::start_apps(&settings.apps).map_err(ServeError::App)?;
        crate::metrics::global().set_apps(metric_apps(&settings));
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
        let siskin: HashMap<_, _> = settings
            .components
            .iter()
            .filter_map(|c| Some((c.jid.clone(), c.dialects.siskin.as_ref()?.payload)))
            .collect();
        let pushes = Arc::new(PushService::new(
            Arc::clone(&registrations),
            store_thread.clone(),
            apps,
            settings.rate_limit,
            Duration::from_secs(settings.limits.push_timeout_secs),
            Arc::clone(&clock),
            siskin,
            settings.limits.pushes_per_second_per_domain,
        ));
        let outboxes: HashMap<String, Arc<Outbox>> = settings
            .components
            .iter()
            .map(|c| (c.jid.clone(), Arc::new(Outbox::default())))
            .collect();
        let unifiedpush = Arc::new(UnifiedPush::new(
            &settings,
            &registrations,
            &outboxes,
            Arc::clone(&clock),
        ));
        let devices = Arc::new(Devices::new(
            Arc::clone(&registrations),
            store_thread,
            clock,
            &settings,
        ));
        let links = settings
            .components
            .iter()
            .map(|c| (c.jid.clone(), Arc::new(LinkStatus::default())))
            .collect();
        Ok(Services {
            settings: Arc::new(settings),
            registrations,
            devices,
            pushes,
            links,
            outboxes,
            unifiedpush,
            started: std::time::Instant::now(),
            _store_recovery: store_recovery,
            _outcome_flush: outcome_flush,
        })
    }

    /// Loads `path` and applies what can change while running (SIGHUP):
    /// see [`reload::reload`].
    pub fn reload(&self, path: &Path) -> Result<Vec<&'static str>, ReloadError> {
        let applied = reload::reload(&self.settings, &self.pushes, &self.devices, path)?;
        crate::metrics::global().set_apps(metric_apps(&applied.settings));
        Ok(applied.restart_needed)
    }

    /// Link state of a component.
    pub fn link(&self, jid: &str) -> Option<&Arc<LinkStatus>> {
        self.links.iter().find(|(j, _)| j == jid).map(|(_, s)| s)
    }

    /// What the HTTP API serves from.
    fn backend(&self) -> Arc<Backend> {
        Arc::new(Backend {
            settings: Arc::clone(&self.settings),
            registrations: Arc::clone(&self.registrations),
            devices: Arc::clone(&self.devices),
            pushes: Arc::clone(&self.pushes),
            links: self.links.clone(),
            unifiedpush: Arc::clone(&self.unifiedpush),
            started: self.started,
        })
    }
}

/// The app labels pushes are counted under: the app profiles, and Push
/// 2.0's Web Push deliveries where a component has them.
fn metric_apps(settings: &Settings) -> Vec<&str> {
    let mut apps: Vec<&str> = settings.apps.keys().map(String::as_str).collect();
    let webpush = settings
        .components
        .iter()
        .any(|c| c.push2.as_ref().is_some_and(|p| p.webpush.is_some()));
    if webpush && !apps.contains(&WEBPUSH_APP) {
        apps.push(WEBPUSH_APP);
    }
    let unifiedpush = settings.components.iter().any(|c| c.unifiedpush.is_some());
    if unifiedpush && !apps.contains(&unifiedpush::METRIC_APP) {
        apps.push(unifiedpush::METRIC_APP);
    }
    apps
}

/// A started server: links and HTTP run in the background.
#[derive(Debug)]
pub struct Running {
    /// The services.
    pub services: Arc<Services>,
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
    // The sockets first: a taken port must stop the start before the store
    // and `server.key` are created.
    let mut bound = http::Bound::bind(&settings).map_err(ServeError::Http)?;
    let services = Arc::new(Services::start(settings)?);
    let mut links = Vec::new();
    let shutdown = Shutdown::new();
    for c in &services.settings.components {
        let limits = &services.settings.limits;
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
        let handler = Arc::new(ComponentHandler::new(
            Arc::clone(&services.devices),
            Arc::clone(&services.pushes),
            Arc::clone(&services.unifiedpush),
            c.clone(),
        ));
        let status = Arc::clone(services.link(&c.jid).expect("a status per component"));
        let outbox = Arc::clone(&services.outboxes[&c.jid]);
        links.push(smol::spawn(link::run(
            cfg,
            handler,
            status,
            outbox,
            shutdown.clone(),
        )));
    }
    let backend = services.backend();
    let http = HttpApi::start(Arc::clone(&backend), &mut bound).map_err(ServeError::Http)?;
    let metrics = match bound.metrics.take() {
        Some(l) => Some(HttpApi::start_metrics(backend, l).map_err(ServeError::Http)?),
        None => None,
    };
    Ok(Running {
        services,
        http,
        metrics,
        signal: shutdown,
        links,
    })
}
