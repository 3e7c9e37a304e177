//! `[app.<type>]` with `provider = "fcm"`: validated into [`FcmSettings`].
//!
//! ```toml
//! [app.fcm]
//! provider = "fcm"
//! service_account = "/etc/push-appserver/firebase-adminsdk.json"
//! # project_id = "my-project"        # default: from the service account
//! # push_priority = "high"           # or "normal"
//! # push_ttl = 2419200               # seconds, at most 4 weeks (the default)
//! # collapse_key = "chat"
//! # include_summary = false          # sender and body would cross Google
//! # capath = "/etc/ssl/extra-ca.pem" # CAs trusted on top of the built-in roots
//! # endpoint = "https://fcm.googleapis.com"
//! # token_endpoint = "https://oauth2.googleapis.com/token"  # default: token_uri
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::message::MessageTemplate;
use super::retry::RetryPolicy;
use super::service_account::ServiceAccount;
use crate::h2client::{tls, Origin};
use crate::providers::PriorityPolicy;
use crate::settings::{ConfigContext, ConfigError};

/// Longest TTL FCM accepts, and the default: four weeks.
pub const MAX_TTL_SECS: u64 = 2_419_200;

/// Default FCM origin.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";

/// Settings of a `provider = "fcm"` app profile.
#[derive(Debug, Clone)]
pub struct FcmSettings {
    /// Where the service-account JSON was read from.
    pub service_account_path: PathBuf,
    /// The loaded service account (its key never printed).
    pub account: Arc<ServiceAccount>,
    /// Firebase project the messages are sent for.
    pub project_id: String,
    /// `high` or `normal` (shown as `silent` inside the server).
    pub push_priority: PriorityPolicy,
    /// TTL, collapse key and summary inclusion of every message.
    pub message: MessageTemplate,
    /// Extra CA certificates trusted for FCM and the token endpoint.
    pub capath: Option<PathBuf>,
    /// FCM origin, `https://host[:port]` (a valid [`Origin`]), no trailing slash.
    pub endpoint: String,
    /// Where access tokens are obtained.
    pub token_endpoint: String,
    /// Attempts and backoff; not a config key (tests shorten it).
    pub retry: RetryPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFcm {
    service_account: Option<PathBuf>,
    project_id: Option<String>,
    push_priority: Option<String>,
    push_ttl: Option<i64>,
    collapse_key: Option<String>,
    include_summary: Option<bool>,
    capath: Option<PathBuf>,
    endpoint: Option<String>,
    token_endpoint: Option<String>,
}

impl FcmSettings {
    /// Validates an `[app.<type>]` table (without `provider`).
    pub fn from_table(
        key: &str,
        mut table: toml::Table,
        ctx: &ConfigContext,
    ) -> Result<Self, ConfigError> {
        if table.contains_key("key") {
            return Err(ctx.error(
                format!("{key}.key"),
                "the FCM server key belongs to the legacy API that Google shut down in 2024; \
                 set `service_account` to the path of the project's service-account JSON \
                 (Firebase console > Project settings > Service accounts > Generate new \
                 private key) and remove `key`",
            ));
        }
        if table.remove("ciphers").is_some() {
            return Err(ctx.error(
                format!("{key}.ciphers"),
                "cipher lists are not configurable: TLS 1.2 and 1.3 with modern AEAD suites \
                 are always used; remove `ciphers`",
            ));
        }
        let raw: RawFcm = ctx.deserialize(key, table)?;
        let at = |k: &str| format!("{key}.{k}");

        let sa_key = at("service_account");
        let sa = raw.service_account.ok_or_else(|| {
            ctx.error(
                &sa_key,
                "missing: the path of the Firebase service-account JSON",
            )
        })?;
        let service_account_path = ctx.existing_file(&sa_key, &sa)?;
        let account = ServiceAccount::load(&service_account_path)
            .map_err(|e| ctx.error(&sa_key, format!("{}: {e}", service_account_path.display())))?;

        let project_id = match raw.project_id.or_else(|| account.project_id.clone()) {
            Some(p) if valid_project_id(&p) => p,
            Some(p) => {
                return Err(ctx.error(
                    at("project_id"),
                    format!("{p:?} is not a Google Cloud project id"),
                ))
            }
            None => {
                return Err(ctx.error(
                    at("project_id"),
                    "missing, and the service account names no project_id",
                ))
            }
        };

        let prio = raw.push_priority.as_deref().unwrap_or("high");
        let push_priority = match prio {
            "high" => PriorityPolicy::High,
            "normal" => PriorityPolicy::Silent,
            _ => {
                return Err(ctx.error(
                    at("push_priority"),
                    format!("{prio:?} is not one of high, normal"),
                ))
            }
        };

        let ttl_secs = match raw.push_ttl {
            None => MAX_TTL_SECS,
            Some(t) if (0..=MAX_TTL_SECS as i64).contains(&t) => t as u64,
            Some(t) => {
                return Err(ctx.error(
                    at("push_ttl"),
                    format!("{t} is not between 0 and {MAX_TTL_SECS} seconds (4 weeks)"),
                ))
            }
        };
        let collapse_key = match raw.collapse_key {
            Some(k) if k.is_empty() => {
                return Err(ctx.error(at("collapse_key"), "must not be empty"))
            }
            other => other,
        };

        let capath = match raw.capath {
            Some(p) => {
                let full = ctx.path(&p);
                // Builds the TLS settings once now, so a bad CA file is a
                // config error rather than a start failure.
                tls::client_config(Some(&full), None)
                    .map_err(|e| ctx.error(at("capath"), e.to_string()))?;
                Some(full)
            }
            None => None,
        };

        let endpoint = raw.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        Origin::from_https_url(endpoint).map_err(|e| ctx.error(at("endpoint"), e.to_string()))?;
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let token_endpoint = match raw.token_endpoint {
            Some(t) => https_url(&t).map_err(|r| ctx.error(at("token_endpoint"), r))?,
            None => https_url(&account.token_uri).map_err(|r| {
                ctx.error(&sa_key, format!("token_uri: {r} (or set token_endpoint)"))
            })?,
        };

        Ok(FcmSettings {
            service_account_path,
            account: Arc::new(account),
            project_id,
            push_priority,
            message: MessageTemplate {
                ttl_secs,
                collapse_key,
                include_summary: raw.include_summary.unwrap_or(false),
            },
            capath,
            endpoint,
            token_endpoint,
            retry: RetryPolicy::default(),
        })
    }

    /// `POST` target of `messages:send`.
    pub fn send_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/messages:send",
            self.endpoint, self.project_id
        )
    }

    /// Effective options for `check-config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let q = |s: &str| format!("{s:?}");
        let prio = match self.push_priority {
            PriorityPolicy::Silent => "normal",
            _ => "high",
        };
        let mut out = vec![
            ("provider".into(), q("fcm")),
            (
                "service_account".into(),
                q(&self.service_account_path.display().to_string()),
            ),
            ("project_id".into(), q(&self.project_id)),
            ("push_priority".into(), q(prio)),
            ("push_ttl".into(), self.message.ttl_secs.to_string()),
        ];
        if let Some(k) = &self.message.collapse_key {
            out.push(("collapse_key".into(), q(k)));
        }
        out.push((
            "include_summary".into(),
            self.message.include_summary.to_string(),
        ));
        if let Some(c) = &self.capath {
            out.push(("capath".into(), q(&c.display().to_string())));
        }
        out.push(("endpoint".into(), q(&self.endpoint)));
        out.push(("token_endpoint".into(), q(&self.token_endpoint)));
        out
    }
}

/// Project ids are lowercase letters, digits and hyphens, optionally
/// prefixed by a domain (`example.com:my-project`).
fn valid_project_id(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 100
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}

/// Checks an `https://` URL.
fn https_url(s: &str) -> Result<String, String> {
    let uri: http::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("{s:?} must start with https://"));
    }
    if uri.host().map_or(true, str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KEY: &str = include_str!("../../../tests/data/fcm-test-key.pem");

    /// A folder with `sa.json` (project `demo-project`) and `ca.pem`.
    fn fixture() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fcm-settings-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let sa = serde_json::json!({
            "type": "service_account",
            "project_id": "demo-project",
            "private_key": KEY,
            "client_email": "push@demo-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        std::fs::write(dir.join("sa.json"), sa.to_string()).unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        dir
    }

    fn parse(dir: &Path, extra: &str) -> Result<FcmSettings, ConfigError> {
        let ctx = ConfigContext::for_file(&dir.join("appserver.toml"));
        let text = format!("service_account = \"sa.json\"\n{extra}");
        FcmSettings::from_table("app.fcm", toml::from_str(&text).unwrap(), &ctx)
    }

    fn refused(extra: &str) -> ConfigError {
        let dir = fixture();
        let e = parse(&dir, extra).unwrap_err();
        std::fs::remove_dir_all(dir).ok();
        e
    }

    #[test]
    fn defaults_come_from_the_service_account() {
        let dir = fixture();
        let s = parse(&dir, "").unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(s.project_id, "demo-project");
        assert_eq!(s.push_priority, PriorityPolicy::High);
        assert_eq!(s.message.ttl_secs, MAX_TTL_SECS);
        assert!(!s.message.include_summary);
        assert_eq!(
            s.send_url(),
            "https://fcm.googleapis.com/v1/projects/demo-project/messages:send"
        );
        assert_eq!(s.token_endpoint, "https://oauth2.googleapis.com/token");
        let shown = format!("{s:?} {:?}", s.describe());
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn every_option_is_read() {
        let dir = fixture();
        let s = parse(
            &dir,
            "project_id = \"other-1\"\npush_priority = \"normal\"\npush_ttl = 60\n\
             collapse_key = \"chat\"\ninclude_summary = true\ncapath = \"ca.pem\"\n\
             endpoint = \"https://127.0.0.1:8443/\"\n\
             token_endpoint = \"https://127.0.0.1:8444/token\"\n",
        )
        .unwrap();
        assert_eq!(s.project_id, "other-1");
        assert_eq!(s.push_priority, PriorityPolicy::Silent);
        assert_eq!(s.message.ttl_secs, 60);
        assert_eq!(s.message.collapse_key.as_deref(), Some("chat"));
        assert!(s.message.include_summary);
        assert_eq!(s.capath, Some(dir.join("ca.pem")));
        assert_eq!(s.endpoint, "https://127.0.0.1:8443");
        assert_eq!(s.token_endpoint, "https://127.0.0.1:8444/token");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn legacy_server_key_says_what_to_configure_instead() {
        let e = refused("key = \"AAAA\"");
        assert_eq!(e.key, "app.fcm.key");
        assert!(e.reason.contains("service_account"), "{}", e.reason);
        assert!(e.reason.contains("2024"), "{}", e.reason);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("ciphers = \"HIGH\"", "app.fcm.ciphers"),
            ("push_priority = \"silent\"", "app.fcm.push_priority"),
            ("push_ttl = 2419201", "app.fcm.push_ttl"),
            ("push_ttl = -1", "app.fcm.push_ttl"),
            ("collapse_key = \"\"", "app.fcm.collapse_key"),
            ("project_id = \"../x\"", "app.fcm.project_id"),
            ("capath = \"missing.pem\"", "app.fcm.capath"),
            ("capath = \"empty.pem\"", "app.fcm.capath"),
            (
                "endpoint = \"http://fcm.googleapis.com\"",
                "app.fcm.endpoint",
            ),
            ("endpoint = \"https://h/v1\"", "app.fcm.endpoint"),
            ("token_endpoint = \"oauth\"", "app.fcm.token_endpoint"),
            ("sandbox = true", "app.fcm"),
        ];
        for (extra, key) in cases {
            let e = refused(extra);
            assert_eq!(e.key, key, "{extra}: {e}");
        }
    }

    #[test]
    fn missing_or_broken_service_account() {
        let dir = fixture();
        let ctx = ConfigContext::for_file(&dir.join("appserver.toml"));
        let e = FcmSettings::from_table("app.fcm", toml::Table::new(), &ctx).unwrap_err();
        assert_eq!(e.key, "app.fcm.service_account");
        std::fs::write(dir.join("sa.json"), "{}").unwrap();
        let e = parse(&dir, "").unwrap_err();
        assert_eq!(e.key, "app.fcm.service_account");
        assert!(e.reason.contains("missing"), "{}", e.reason);
        std::fs::remove_dir_all(&dir).ok();
    }
}
