//! The `log` provider: records what would be sent, for trying a setup
//! without Apple or Google credentials. Optionally appends every push as
//! one JSON line to a file, and can simulate dead tokens, failures and slow
//! providers for testing how an XMPP server reacts.

use crate::registrations::owner::short;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::apns::payload::CustomApns;
use super::{FailureKind, Flavour, Outcome, PriorityPolicy, Push, StartError};
use crate::settings::{ConfigContext, ConfigError};

/// Settings of a `provider = "log"` app profile.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Priority policy (`auto`, `high`, `silent`, `voip`).
    pub push_priority: PriorityPolicy,
    /// JSON-lines file receiving every push.
    pub file: Option<PathBuf>,
    /// Tokens starting with this are answered as dead (testing aid).
    pub dead_token_prefix: Option<String>,
    /// Tokens starting with this fail temporarily (testing aid).
    pub fail_token_prefix: Option<String>,
    /// Artificial provider latency (testing aid).
    pub delay: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    push_priority: Option<String>,
    file: Option<PathBuf>,
    dead_token_prefix: Option<String>,
    fail_token_prefix: Option<String>,
    delay_ms: Option<u64>,
}

impl LogSettings {
    /// Validates an `[app.<type>]` table (without `provider`).
    pub fn from_table(
        key: &str,
        table: toml::Table,
        ctx: &ConfigContext,
    ) -> Result<Self, ConfigError> {
        let raw: RawLog = ctx.deserialize(key, table)?;
        let prio = raw.push_priority.as_deref().unwrap_or("auto");
        let push_priority = PriorityPolicy::parse(prio, &["auto", "high", "silent", "voip"])
            .ok_or_else(|| {
                ctx.error(
                    format!("{key}.push_priority"),
                    format!("{prio:?} is not one of auto, high, silent, voip"),
                )
            })?;
        let delay_ms = raw.delay_ms.unwrap_or(0);
        if delay_ms > 600_000 {
            return Err(ctx.error(format!("{key}.delay_ms"), "at most 600000"));
        }
        Ok(LogSettings {
            push_priority,
            file: raw.file.map(|f| ctx.path(&f)),
            dead_token_prefix: raw.dead_token_prefix.filter(|p| !p.is_empty()),
            fail_token_prefix: raw.fail_token_prefix.filter(|p| !p.is_empty()),
            delay: Duration::from_millis(delay_ms),
        })
    }

    /// Effective options for `check-config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("provider".into(), "\"log\"".into()),
            (
                "push_priority".into(),
                format!("{:?}", self.push_priority.as_str()),
            ),
        ];
        if let Some(f) = &self.file {
            out.push(("file".into(), format!("{:?}", f.display().to_string())));
        }
        if let Some(p) = &self.dead_token_prefix {
            out.push(("dead_token_prefix".into(), format!("{p:?}")));
        }
        if let Some(p) = &self.fail_token_prefix {
            out.push(("fail_token_prefix".into(), format!("{p:?}")));
        }
        if !self.delay.is_zero() {
            out.push(("delay_ms".into(), self.delay.as_millis().to_string()));
        }
        out
    }
}

/// A running `log` provider.
#[derive(Debug)]
pub struct LogProvider {
    settings: LogSettings,
    file: Option<Mutex<File>>,
    sent: AtomicU64,
}

impl LogProvider {
    /// Opens the record file, if one is configured.
    pub fn new(settings: &LogSettings) -> Result<Self, StartError> {
        let file = match &settings.file {
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| StartError::Io {
                        path: path.clone(),
                        source,
                    })?,
            )),
            None => None,
        };
        Ok(LogProvider {
            settings: settings.clone(),
            file,
            sent: AtomicU64::new(0),
        })
    }

    /// "Sends" a push: logs it and appends it to the record file.
    pub async fn send(&self, push: &Push) -> Outcome {
        if let Flavour::Apns(custom) = &push.flavour {
            return self.send_custom(push, custom);
        }
        if !self.settings.delay.is_zero() {
            async_io::Timer::after(self.settings.delay).await;
        }
        if let Some(simulated) = self.simulated(&push.token) {
            return simulated;
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "log provider: {} push for node {} of type {} via {} (not sent anywhere)",
            push.priority.as_str(),
            short(&push.node),
            push.push_type,
            push.component
        );
        log::debug!("log provider: token {}", push.token);
        self.record(|| record_line(push))
    }

    /// Records a complete APNS payload (Monal's, Push 2.0's) as one JSON
    /// line with `payload`, `voip` and `apns-priority`.
    fn send_custom(&self, push: &Push, custom: &CustomApns) -> Outcome {
        if let Some(simulated) = self.simulated(&push.token) {
            return simulated;
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "log provider: custom APNS push of type {} via {} (not sent anywhere)",
            push.push_type,
            push.component
        );
        self.record(|| {
            let payload: serde_json::Value =
                serde_json::from_slice(&custom.payload).unwrap_or_default();
            let mut line = serde_json::json!({
                "time": crate::clock::rfc3339(SystemTime::now()),
                "component": push.component,
                "type": push.push_type,
                "token": push.token,
                "voip": custom.voip,
                "apns-priority": custom.priority,
                "payload": payload,
            })
            .to_string();
            line.push('\n');
            line
        })
    }

    /// The outcome a test token asks for (`dead_token_prefix`,
    /// `fail_token_prefix`), if any.
    fn simulated(&self, token: &str) -> Option<Outcome> {
        let starts = |p: &Option<String>| p.as_deref().is_some_and(|p| token.starts_with(p));
        if starts(&self.settings.dead_token_prefix) {
            return Some(Outcome::DeadToken {
                since: SystemTime::now(),
            });
        }
        if starts(&self.settings.fail_token_prefix) {
            return Some(Outcome::failed(
                FailureKind::Unavailable,
                "simulated provider failure",
            ));
        }
        None
    }

    /// Appends the line `make` builds to the record file, if there is one
    /// (the line is built only then).
    fn record(&self, make: impl FnOnce() -> String) -> Outcome {
        if let Some(file) = &self.file {
            let line = make();
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()) {
                return Outcome::failed(FailureKind::Unavailable, format!("log file: {e}"));
            }
        }
        Outcome::Delivered
    }

    /// Pushes recorded so far.
    pub fn health(&self) -> String {
        format!(
            "log provider, {} pushes recorded",
            self.sent.load(Ordering::Relaxed)
        )
    }
}

/// One JSON line describing a push.
fn record_line(push: &Push) -> String {
    let s = &push.summary;
    let mut v = serde_json::json!({
        "time": crate::clock::rfc3339(SystemTime::now()),
        "component": push.component,
        "type": push.push_type,
        "node": push.node,
        "token": push.token,
        "priority": push.priority.as_str(),
        "summary": {
            "message-count": s.message_count,
            "last-message-sender": s.last_message_sender,
            "last-message-body": s.last_message_body,
            "pending-subscription-count": s.pending_subscription_count,
        },
    });
    if let Some(e) = &push.encrypted {
        v["encrypted"] = serde_json::json!({"iv": e.iv, "payload": e.payload, "type": e.kind});
    }
    let mut line = v.to_string();
    line.push('\n');
    line
}
