//! Prometheus metrics: a small process-wide registry of counters, gauges
//! and histograms on atomics ([`registry`]), recorded by the push service
//! and the store, read together with the link states, credential expiry
//! and `/proc/self` when `/metrics` is scraped ([`collect`]), and
//! rendered as text by a pure function ([`render`]).
//!
//! Label values come from the configuration only (app profile names,
//! component JIDs), never from input: a push for a type that is not a
//! configured app profile is not counted by type, so the number of
//! series is bounded by the config.

pub mod process;
pub mod registry;
pub mod render;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use registry::{Counter, Gauge, Histogram};

/// How one push ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    /// The provider accepted it.
    Delivered,
    /// The provider called the token dead.
    DeadToken,
    /// Held or coalesced by the per-device rate limit.
    Throttled,
    /// The provider failed (after its retries).
    Failed,
    /// The provider did not answer within `push_timeout_secs`.
    TimedOut,
}

impl PushResult {
    /// Every result, in label order.
    pub const ALL: [PushResult; 5] = [
        PushResult::Delivered,
        PushResult::DeadToken,
        PushResult::Throttled,
        PushResult::Failed,
        PushResult::TimedOut,
    ];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            PushResult::Delivered => "delivered",
            PushResult::DeadToken => "dead_token",
            PushResult::Throttled => "throttled",
            PushResult::Failed => "failed",
            PushResult::TimedOut => "timed_out",
        }
    }
}

/// What is counted per app profile.
#[derive(Debug, Default)]
pub struct AppMetrics {
    /// Pushes by result, indexed by [`PushResult`].
    pub outcomes: [Counter; 5],
    /// Provider call latency.
    pub latency: Histogram,
    /// Provider calls in flight.
    pub in_flight: Gauge,
    /// Registrations made or renewed.
    pub registered: Counter,
    /// Registrations removed by their owner.
    pub unregistered: Counter,
    /// The latest delivered push, ms since the epoch (0: none yet).
    pub last_success_ms: AtomicU64,
    /// The latest failed push: ms since the epoch and why (cut short).
    pub last_error: Mutex<Option<(u64, String)>>,
}

/// Longest reason kept as an app's last error.
const MAX_ERROR_TEXT: usize = 200;

impl AppMetrics {
    /// Notes a delivered push at `now_ms`.
    pub fn succeeded(&self, now_ms: u64) {
        self.last_success_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Notes a failed push at `now_ms` and why.
    pub fn failed(&self, now_ms: u64, why: &str) {
        let why = crate::text::cut(why, MAX_ERROR_TEXT).to_owned();
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((now_ms, why));
    }
}

/// The process-wide registry.
#[derive(Debug, Default)]
pub struct Metrics {
    apps: RwLock<BTreeMap<String, Arc<AppMetrics>>>,
    /// Synced store writes' latency.
    pub store_write: Histogram,
    /// Store operations that failed.
    pub store_failures: Counter,
    /// Reloads applied.
    pub reloads_ok: Counter,
    /// Reloads refused.
    pub reloads_failed: Counter,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The registry of this process.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Counts a push as in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Option<Arc<AppMetrics>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(a) = &self.0 {
            a.in_flight.add(-1);
        }
    }
}

impl Metrics {
    /// Sets the app profiles counted (at start and on reload); the counts
    /// of profiles that stay are kept.
    pub fn set_apps<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut *apps);
        for n in names {
            let m = old.get(n).cloned().unwrap_or_default();
            apps.insert(n.to_owned(), m);
        }
    }

    fn app(&self, name: &str) -> Option<Arc<AppMetrics>> {
        self.apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The app profiles counted, by name.
    pub fn apps(&self) -> Vec<(String, Arc<AppMetrics>)> {
        let apps = self.apps.read().unwrap_or_else(|e| e.into_inner());
        apps.iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Counts a push of app profile `app` that ended without a provider
    /// call (throttled).
    pub fn push(&self, app: &str, result: PushResult) {
        if let Some(a) = self.app(app) {
            a.outcomes[result as usize].inc();
        }
    }

    /// Counts a provider call of `app` that ended as `result` after `elapsed`.
    pub fn sent(&self, app: &str, result: PushResult, elapsed: Duration) {
        if let Some(a) = self.app(app) {
            a.outcomes[result as usize].inc();
            a.latency.observe(elapsed);
        }
    }

    /// Notes how the latest push of `app` ended at `now_ms`: `None` when
    /// it was delivered, else why it failed.
    pub fn last_outcome(&self, app: &str, now_ms: u64, failure: Option<&str>) {
        if let Some(a) = self.app(app) {
            match failure {
                None => a.succeeded(now_ms),
                Some(why) => a.failed(now_ms, why),
            }
        }
    }

    /// Marks a provider call of `app` in flight until the guard drops.
    pub fn in_flight(&self, app: &str) -> InFlight {
        let a = self.app(app);
        if let Some(a) = &a {
            a.in_flight.add(1);
        }
        InFlight(a)
    }

    /// Counts a registration (`true`) or unregistration of push type `app`.
    pub fn registration(&self, app: &str, registered: bool) {
        if let Some(a) = self.app(app) {
            if registered {
                a.registered.inc();
            } else {
                a.unregistered.inc();
            }
        }
    }

    /// Records the time of one synced store write.
    pub fn store_write(&self, d: Duration) {
        self.store_write.observe(d);
    }

    /// Counts a failed store operation.
    pub fn store_failure(&self) {
        self.store_failures.inc();
    }

    /// Counts a SIGHUP reload, applied or refused.
    pub fn reload(&self, applied: bool) {
        if applied {
            self.reloads_ok.inc();
        } else {
            self.reloads_failed.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_latest_outcomes_are_kept_and_the_error_cut_short() {
        let m = Metrics::default();
        m.set_apps(["a"]);
        m.last_outcome("a", 1_000, None);
        m.last_outcome("a", 2_000, Some(&"é".repeat(150)));
        m.last_outcome("unknown", 3_000, None);
        let (_, a) = m.apps().into_iter().find(|(n, _)| n == "a").unwrap();
        assert_eq!(a.last_success_ms.load(Ordering::Relaxed), 1_000);
        let (at, why) = a.last_error.lock().unwrap().clone().unwrap();
        assert_eq!(at, 2_000);
        assert_eq!(why.len(), MAX_ERROR_TEXT);
    }

    #[test]
    fn counts_only_configured_apps_and_keeps_counts_over_reload() {
        let m = Metrics::default();
        m.set_apps(["a", "b"]);
        m.push("a", PushResult::Throttled);
        m.push("nope", PushResult::Throttled);
        m.sent("a", PushResult::Delivered, Duration::from_millis(3));
        m.sent("a", PushResult::TimedOut, Duration::from_secs(30));
        {
            let _g = m.in_flight("a");
            assert_eq!(m.app("a").map(|a| a.in_flight.get()), Some(1));
        }
        m.set_apps(["a", "c"]);
        let apps = m.apps();
        let names: Vec<_> = apps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        let a = &apps[0].1;
        let counts: Vec<u64> = a.outcomes.iter().map(|c| c.get()).collect();
        assert_eq!(counts, [1, 0, 1, 0, 1]);
        assert_eq!(a.in_flight.get(), 0);
        assert_eq!(a.latency.snapshot().count, 2);
    }
}
