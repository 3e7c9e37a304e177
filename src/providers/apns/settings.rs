//! `[app.<type>] provider = "apns"`: raw TOML validated into
//! [`ApnsSettings`]. Files are checked here, so `check-config` catches a
//! missing or unreadable key before the server starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::jwt;
use crate::h2client::{tls, Origin};
use crate::providers::PriorityPolicy;
use crate::settings::{ConfigContext, ConfigError};

/// Apple's production endpoint.
pub const PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";
/// Apple's sandbox (development) endpoint.
pub const SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";
/// Default and largest `push_ttl`: four weeks.
pub const MAX_TTL: Duration = Duration::from_secs(4 * 7 * 24 * 3600);

/// Settings of a `provider = "apns"` app profile.
#[derive(Debug, Clone)]
pub struct ApnsSettings {
    /// `push_priority`: `auto`, `high`, `silent` or `voip`.
    pub push_priority: PriorityPolicy,
    /// `sandbox`: which of Apple's endpoints is the default.
    pub sandbox: bool,
    /// `endpoint`: where pushes go.
    pub endpoint: Origin,
    /// `topic`: the app's bundle id (`.voip` is appended for VoIP pushes).
    pub topic: String,
    /// `mutable_content`: mark alert pushes so the app's notification
    /// service extension can rewrite them.
    pub mutable_content: bool,
    /// `push_ttl`: how long Apple stores an undelivered push.
    pub ttl: Duration,
    /// `collapse_pushes`: newer pushes replace older undelivered ones.
    pub collapse_pushes: bool,
    /// `push_alert`, `push_alert_title`, `push_sound`: what an alert shows.
    pub alert: AlertText,
    /// `capath`: extra trusted CA certificates (file or folder).
    pub extra_ca: Option<PathBuf>,
    /// `cert` + `key`, or `auth_key` + `key_id` + `team_id`.
    pub auth: ApnsAuth,
    /// `feedback_request_interval` was given (Apple retired that service).
    pub feedback_interval_given: bool,
    /// Retry and connection tuning (not in the config file).
    pub tuning: Tuning,
}

/// The visible part of an alert push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    /// Alert title, if any.
    pub title: Option<String>,
    /// Alert body.
    pub body: String,
    /// Sound name; `None` for silence.
    pub sound: Option<String>,
}

/// How the provider authenticates to Apple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApnsAuth {
    /// A TLS client certificate (PEM files; may be one combined file).
    Certificate {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A provider token signed with a `.p8` key.
    Token {
        /// The `.p8` PKCS#8 P-256 key.
        key_file: PathBuf,
        /// Its 10-character Key ID.
        key_id: String,
        /// The 10-character Team ID.
        team_id: String,
    },
}

/// Retry and connection tuning; fixed defaults, adjustable by tests.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Attempts per push for temporary failures (429, 5xx, timeouts,
    /// lost connections), the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles after each, with jitter.
    pub backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Extra sends of a push the server did not process (GOAWAY, refused
    /// stream); these go out at once, on a fresh connection.
    pub resends: u32,
    /// Time for one request.
    pub request_timeout: Duration,
    /// Most connections to Apple.
    pub max_connections: usize,
    /// Most requests in flight.
    pub max_in_flight: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            resends: 3,
            request_timeout: Duration::from_secs(8),
            max_connections: 4,
            max_in_flight: 2000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApns {
    sandbox: Option<bool>,
    push_priority: Option<String>,
    mutable_content: Option<bool>,
    push_ttl: Option<i64>,
    collapse_pushes: Option<bool>,
    topic: Option<String>,
    push_alert: Option<String>,
    push_alert_title: Option<String>,
    push_sound: Option<String>,
    capath: Option<PathBuf>,
    ciphers: Option<toml::Value>,
    feedback_request_interval: Option<toml::Value>,
    endpoint: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    auth_key: Option<PathBuf>,
    key_id: Option<String>,
    team_id: Option<String>,
}

/// The alert body when `push_alert` is not set.
pub const DEFAULT_ALERT: &str = "New message";

impl ApnsSettings {
    /// Validates an `[app.<type>]` table (without `provider`); `key` is
    /// `app.<type>`.
    pub fn from_table(
        key: &str,
        table: toml::Table,
        ctx: &ConfigContext,
    ) -> Result<Self, ConfigError> {
        let raw = deserialize(ctx, key, table)?;
        let at = |k: &str| format!("{key}.{k}");
        if raw.ciphers.is_some() {
            return Err(ctx.error(
                at("ciphers"),
                "not supported: rustls only offers modern, safe cipher suites; remove this key",
            ));
        }
        let prio = raw.push_priority.as_deref().unwrap_or("auto");
        let push_priority = PriorityPolicy::parse(prio, &["auto", "high", "silent", "voip"])
            .ok_or_else(|| {
                ctx.error(
                    at("push_priority"),
                    format!("{prio:?} is not one of auto, high, silent, voip"),
                )
            })?;
        let topic = raw.topic.ok_or_else(|| {
            ctx.error(
                at("topic"),
                "missing: the app's bundle id, e.g. \"org.example.chat\"",
            )
        })?;
        if topic.is_empty() || !topic.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ctx.error(at("topic"), format!("{topic:?} is not a bundle id")));
        }
        if topic.ends_with(".voip") {
            return Err(ctx.error(
                at("topic"),
                "give the bundle id without \".voip\": it is appended for VoIP pushes",
            ));
        }
        let ttl = match raw.push_ttl {
            None => MAX_TTL,
            Some(s) if (1..=MAX_TTL.as_secs() as i64).contains(&s) => Duration::from_secs(s as u64),
            Some(_) => {
                return Err(ctx.error(
                    at("push_ttl"),
                    format!(
                        "seconds from 1 to {} (four weeks, the default)",
                        MAX_TTL.as_secs()
                    ),
                ))
            }
        };
        let sandbox = raw.sandbox.unwrap_or(true);
        let url = raw.endpoint.as_deref().unwrap_or(if sandbox {
            SANDBOX_ENDPOINT
        } else {
            PRODUCTION_ENDPOINT
        });
        let endpoint =
            Origin::from_https_url(url).map_err(|e| ctx.error(at("endpoint"), e.to_string()))?;
        let alert = AlertText {
            title: raw.push_alert_title.filter(|t| !t.is_empty()),
            body: raw.push_alert.unwrap_or_else(|| DEFAULT_ALERT.to_owned()),
            sound: match raw.push_sound {
                None => Some("default".to_owned()),
                Some(s) if s.is_empty() => None,
                Some(s) => Some(s),
            },
        };
        if alert.body.len() > 1024 {
            return Err(ctx.error(at("push_alert"), "at most 1024 bytes"));
        }
        let extra_ca = match raw.capath {
            Some(p) => Some(ca_path(ctx, &at("capath"), &p)?),
            None => None,
        };
        let auth = auth(
            ctx,
            key,
            raw.cert,
            raw.key,
            raw.auth_key,
            raw.key_id,
            raw.team_id,
        )?;
        Ok(ApnsSettings {
            push_priority,
            sandbox,
            endpoint,
            topic,
            mutable_content: raw.mutable_content.unwrap_or(true),
            ttl,
            collapse_pushes: raw.collapse_pushes.unwrap_or(false),
            alert,
            extra_ca,
            auth,
            feedback_interval_given: raw.feedback_request_interval.is_some(),
            tuning: Tuning::default(),
        })
    }

    /// Effective options for `check-config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let q = |s: &str| format!("{s:?}");
        let mut out = vec![
            ("provider".into(), q("apns")),
            ("sandbox".into(), self.sandbox.to_string()),
            (
                "endpoint".into(),
                q(&format!("https://{}", self.endpoint.authority())),
            ),
            ("topic".into(), q(&self.topic)),
            ("push_priority".into(), q(self.push_priority.as_str())),
            ("mutable_content".into(), self.mutable_content.to_string()),
            ("push_ttl".into(), self.ttl.as_secs().to_string()),
            ("collapse_pushes".into(), self.collapse_pushes.to_string()),
            ("push_alert".into(), q(&self.alert.body)),
        ];
        if let Some(t) = &self.alert.title {
            out.push(("push_alert_title".into(), q(t)));
        }
        out.push((
            "push_sound".into(),
            q(self.alert.sound.as_deref().unwrap_or("")),
        ));
        if let Some(p) = &self.extra_ca {
            out.push(("capath".into(), q(&p.display().to_string())));
        }
        match &self.auth {
            ApnsAuth::Certificate { cert, key } => {
                out.push(("cert".into(), q(&cert.display().to_string())));
                out.push(("key".into(), q(&key.display().to_string())));
            }
            ApnsAuth::Token {
                key_file,
                key_id,
                team_id,
            } => {
                out.push(("auth_key".into(), q(&key_file.display().to_string())));
                out.push(("key_id".into(), q(key_id)));
                out.push(("team_id".into(), q(team_id)));
            }
        }
        out
    }
}

/// Deserializes the table; on failure, finds the offending key by trying
/// each alone (every field is optional), so the error names it.
fn deserialize(ctx: &ConfigContext, key: &str, table: toml::Table) -> Result<RawApns, ConfigError> {
    let whole = match ctx.deserialize::<RawApns>(key, table.clone()) {
        Ok(raw) => return Ok(raw),
        Err(e) => e,
    };
    for (k, v) in table {
        let alone = toml::Table::from_iter([(k.clone(), v)]);
        ctx.deserialize::<RawApns>(&format!("{key}.{k}"), alone)?;
    }
    Err(whole)
}

fn ca_path(ctx: &ConfigContext, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
    let full = ctx.path(p);
    match std::fs::metadata(&full) {
        Ok(m) if m.is_dir() => Ok(full),
        Ok(_) => {
            tls::load_certs(&full).map_err(|e| ctx.error(key, e.to_string()))?;
            Ok(full)
        }
        Err(e) => Err(ctx.error(key, format!("cannot read {}: {e}", full.display()))),
    }
}

fn auth(
    ctx: &ConfigContext,
    key: &str,
    cert: Option<PathBuf>,
    cert_key: Option<PathBuf>,
    auth_key: Option<PathBuf>,
    key_id: Option<String>,
    team_id: Option<String>,
) -> Result<ApnsAuth, ConfigError> {
    let at = |k: &str| format!("{key}.{k}");
    let token_keys = auth_key.is_some() || key_id.is_some() || team_id.is_some();
    match (cert, token_keys) {
        (Some(_), true) => Err(ctx.error(
            key,
            "choose one authentication: cert (+ key) or auth_key + key_id + team_id",
        )),
        (Some(cert), false) => {
            let cert = ctx.existing_file(&at("cert"), &cert)?;
            tls::load_certs(&cert).map_err(|e| ctx.error(at("cert"), e.to_string()))?;
            let (key_at, key) = match cert_key {
                Some(k) => (at("key"), ctx.existing_file(&at("key"), &k)?),
                None => (at("cert"), cert.clone()),
            };
            tls::load_private_key(&key).map_err(|e| {
                ctx.error(
                    key_at,
                    format!("{e} (give the key in `key`, or both in one PEM file)"),
                )
            })?;
            Ok(ApnsAuth::Certificate { cert, key })
        }
        (None, true) => {
            if cert_key.is_some() {
                return Err(ctx.error(
                    at("key"),
                    "`key` belongs to `cert`; token auth uses auth_key",
                ));
            }
            let key_file = auth_key
                .ok_or_else(|| ctx.error(at("auth_key"), "missing: the .p8 key file from Apple"))?;
            let key_file = ctx.existing_file(&at("auth_key"), &key_file)?;
            jwt::load_key(&key_file).map_err(|e| ctx.error(at("auth_key"), e.to_string()))?;
            let id = |k: &str, v: Option<String>| {
                let v = v.ok_or_else(|| ctx.error(at(k), "missing (10 characters, from Apple)"))?;
                if v.len() != 10 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(ctx.error(at(k), format!("{v:?} is not 10 letters and digits")));
                }
                Ok(v)
            };
            Ok(ApnsAuth::Token {
                key_file,
                key_id: id("key_id", key_id)?,
                team_id: id("team_id", team_id)?,
            })
        }
        (None, false) if cert_key.is_some() => Err(ctx.error(
            at("key"),
            "`key` needs `cert`, the certificate it belongs to",
        )),
        (None, false) => Err(ctx.error(
            key,
            "no authentication: set cert (+ key) or auth_key + key_id + team_id",
        )),
    }
}

#[cfg(test)]
mod tests;
