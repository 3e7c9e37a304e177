//! SIGHUP: re-read the config file and apply what can change without
//! dropping the component links: the app profiles (provider credentials,
//! certificates, endpoints, payload settings), the log level, the limits
//! on registrations (`[registrations]`, `store.max_registrations`) and the
//! provider timeout. A config that does not load, or whose providers do
//! not start, is refused as a whole and the running one stays. Changes
//! that need a restart (listen addresses, components, data dir, the store
//! cache, link limits) are named and not applied.

use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigError, Settings};
use crate::devices::Devices;
use crate::pushes::{start_apps, AppStartError, PushService};

/// Why a reload was refused.
#[derive(Debug)]
pub enum ReloadError {
    /// The new file does not load or validate.
    Config(ConfigError),
    /// A provider of the new config does not start (e.g. a broken key).
    Provider(AppStartError),
    /// A running component offers a push type the new config drops.
    TypeDropped {
        /// The component JID.
        component: String,
        /// The push type without an `[app.<type>]` in the new config.
        push_type: String,
    },
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Config(e) => write!(f, "{e}"),
            ReloadError::Provider(e) => write!(f, "{e}"),
            ReloadError::TypeDropped {
                component,
                push_type,
            } => write!(
                f,
                "component {component} offers push type {push_type:?}, which has no \
                 [app.{push_type}] in the new config (changing components needs a restart)"
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

/// A reload that was applied.
#[derive(Debug)]
pub struct Applied {
    /// The settings loaded (only what can change while running is in
    /// force; see [`restart_needed`]).
    pub settings: Settings,
    /// The keys that changed but need a restart, by config key.
    pub restart_needed: Vec<&'static str>,
}

/// The settings that differ between `old` and `new` but only take effect
/// after a restart, by config key.
pub fn restart_needed(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |differs: bool, key| {
        if differs {
            out.push(key);
        }
    };
    check(old.data_dir != new.data_dir, "data_dir");
    check(old.debugging != new.debugging, "debugging");
    check(old.rate_limit != new.rate_limit, "rate_limit");
    check(old.log_format != new.log_format, "log_format");
    // Debug shows every HTTP setting (no secrets live there); the rate of
    // new registrations per client is applied by a reload.
    let http_key = |s: &Settings| {
        let mut h = s.http.clone();
        h.new_registrations_per_hour_per_client = 0;
        format!("{h:?}")
    };
    check(http_key(old) != http_key(new), "[http]");
    check(old.metrics != new.metrics, "[metrics]");
    let component_key = |s: &Settings| {
        s.components
            .iter()
            .map(|c| {
                (
                    c.jid.clone(),
                    c.server.clone(),
                    c.secret.expose().to_owned(),
                    c.types.clone(),
                    c.ping_to.clone(),
                    // The dialects and the UnifiedPush provider are built
                    // at start: a change to them needs a restart too.
                    format!("{:?}", (&c.dialects, &c.monal, &c.push2, &c.unifiedpush)),
                )
            })
            .collect::<Vec<_>>()
    };
    check(component_key(old) != component_key(new), "[[component]]");
    check(
        (old.store.cache_bytes, old.store.cache_max_bytes)
            != (new.store.cache_bytes, new.store.cache_max_bytes),
        "store.cache_mb",
    );
    check(
        old.store.record_cache != new.store.record_cache,
        "store.record_cache",
    );
    check(
        old.store.outcome_flush_secs != new.store.outcome_flush_secs,
        "store.outcome_flush_secs",
    );
    let (a, b) = (&old.limits, &new.limits);
    check(
        a.max_stanza_bytes != b.max_stanza_bytes,
        "limits.max_stanza_bytes",
    );
    check(a.max_in_flight != b.max_in_flight, "limits.max_in_flight");
    check(
        a.pushes_per_second_per_domain != b.pushes_per_second_per_domain,
        "limits.pushes_per_second_per_domain",
    );
    check(
        a.keepalive_secs != b.keepalive_secs,
        "limits.keepalive_secs",
    );
    check(
        a.ping_after_secs != b.ping_after_secs,
        "limits.ping_after_secs",
    );
    check(
        a.ping_timeout_secs != b.ping_timeout_secs,
        "limits.ping_timeout_secs",
    );
    check(
        a.shutdown_grace_secs != b.shutdown_grace_secs,
        "limits.shutdown_grace_secs",
    );
    out
}

/// Checks that every push type a running component offers keeps an app
/// profile, since the components themselves stay as they are.
fn check_types(running: &Settings, new: &Settings) -> Result<(), ReloadError> {
    for c in &running.components {
        for t in &c.types {
            if !new.apps.contains_key(t) {
                return Err(ReloadError::TypeDropped {
                    component: c.jid.clone(),
                    push_type: t.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Loads `path` and applies it to the running services, which started
/// with `running`; returns what was applied. On error nothing changed.
/// Logs the result, and counts it in the metrics.
pub fn reload(
    running: &Settings,
    pushes: &PushService,
    devices: &Devices,
    path: &Path,
) -> Result<Applied, ReloadError> {
    let result = apply(running, pushes, devices, path);
    crate::metrics::global().reload(result.is_ok());
    match &result {
        Ok(applied) => {
            log::info!("SIGHUP: reloaded {}", path.display());
            if !applied.restart_needed.is_empty() {
                log::warn!(
                    "SIGHUP: changes to {} need a restart and were NOT applied",
                    applied.restart_needed.join(", ")
                );
            }
        }
        Err(e) => {
            log::error!("SIGHUP: the new configuration is refused, the running one stays: {e}")
        }
    }
    result
}

fn apply(
    running: &Settings,
    pushes: &PushService,
    devices: &Devices,
    path: &Path,
) -> Result<Applied, ReloadError> {
    let new = Settings::load(path).map_err(ReloadError::Config)?;
    check_types(running, &new)?;
    // Every provider starts before anything is swapped, so a broken key
    // leaves the running ones untouched.
    let apps = start_apps(&new.apps).map_err(ReloadError::Provider)?;
    pushes.reload(apps, Duration::from_secs(new.limits.push_timeout_secs));
    devices.set_limits(&new);
    crate::logging::set_level(new.log_level);
    Ok(Applied {
        restart_needed: restart_needed(running, &new),
        settings: new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ConfigContext;

    fn settings(extra_top: &str, server: &str, stanza: u32) -> Settings {
        let text = format!(
            "data_dir = \"d\"\n{extra_top}\n[[component]]\njid = \"push.example.org\"\n\
             server = \"{server}\"\nsecret = \"s\"\ntypes = [\"a\"]\n[app.a]\nprovider = \"log\"\n\
             [limits]\nmax_stanza_bytes = {stanza}\npush_timeout_secs = 7\n"
        );
        Settings::parse(&text, &ConfigContext::defaults()).expect("valid")
    }

    #[test]
    fn names_the_changes_that_need_a_restart() {
        let old = settings("", "127.0.0.1:5347", 8192);
        assert!(restart_needed(&old, &old.clone()).is_empty());
        let new = settings("log_level = \"debug\"", "127.0.0.1:5347", 8192);
        assert!(restart_needed(&old, &new).is_empty(), "log level reloads");
        let new = settings("[http]\nlisten = \"127.0.0.1:1\"", "127.0.0.1:9", 4096);
        assert_eq!(
            restart_needed(&old, &new),
            ["[http]", "[[component]]", "limits.max_stanza_bytes"]
        );
        let mut new = old.clone();
        new.store.record_cache = 0;
        assert_eq!(restart_needed(&old, &new), ["store.record_cache"]);
        let mut new = old.clone();
        new.http.new_registrations_per_hour_per_client = 7;
        assert!(restart_needed(&old, &new).is_empty(), "applied by a reload");
        let mut new = old.clone();
        new.components[0].dialects.conversations.fcm = Some("a".into());
        assert_eq!(
            restart_needed(&old, &new),
            ["[[component]]"],
            "a dialect table"
        );
    }

    #[test]
    fn a_dropped_push_type_is_refused() {
        let old = settings("", "127.0.0.1:5347", 8192);
        let mut new = old.clone();
        new.apps.clear();
        let e = check_types(&old, &new).expect_err("refused");
        assert!(e.to_string().contains("push type \"a\""), "{e}");
    }
}
