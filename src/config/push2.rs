//! `[component.push2]`: which routes a component serves and the bounds of
//! its Web Push sender.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::dialects::senders;
use crate::providers::webpush::{GuardPolicy, WebPushSettings};
use crate::providers::ProviderSettings;
use crate::settings::{ConfigContext, ConfigError};

/// Validated `[component.push2]` settings.
#[derive(Debug, Clone)]
pub struct Push2Settings {
    /// `apns` profiles APNS-form clients are sent through.
    pub apns: Vec<String>,
    /// Web Push / UnifiedPush endpoints allowed; `None` = off.
    pub webpush: Option<WebPushSettings>,
    /// `TTL` sent to Web Push endpoints.
    pub ttl: u32,
    /// Sender domains served; empty only with `open_relay`.
    pub allow_from: Vec<String>,
    /// Serves every sender (`open_relay = true`, warned about at start).
    pub open_relay: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush2 {
    apns: Option<Vec<String>>,
    webpush: Option<bool>,
    allow_private_targets: Option<bool>,
    allow_hosts: Option<Vec<String>>,
    webpush_ca: Option<PathBuf>,
    timeout_secs: Option<u64>,
    max_concurrent: Option<u64>,
    max_body_bytes: Option<u64>,
    ttl_secs: Option<u64>,
    allow_from: Option<Vec<String>>,
    open_relay: Option<bool>,
}

impl Push2Settings {
    /// Validates `[component.push2]` against the app profiles.
    pub fn from_table(
        key: &str,
        table: toml::Table,
        ctx: &ConfigContext,
        apps: &BTreeMap<String, ProviderSettings>,
    ) -> Result<Self, ConfigError> {
        let raw: RawPush2 = ctx.deserialize(key, table)?;
        let apns = raw.apns.unwrap_or_default();
        let mut seen = Vec::new();
        for p in &apns {
            let k = format!("{key}.apns");
            match apps.get(p) {
                Some(ProviderSettings::Apns(s)) => {
                    if seen.contains(&(&s.topic, s.sandbox)) {
                        return Err(ctx.error(
                            k,
                            format!("two profiles serve topic {} in one environment", s.topic),
                        ));
                    }
                    seen.push((&s.topic, s.sandbox));
                }
                Some(_) => {
                    return Err(ctx.error(k, format!("[app.{p}] must use provider \"apns\"")))
                }
                None => return Err(ctx.error(k, format!("{p:?} has no [app.{p}]"))),
            }
        }
        let range = |k: &str, v: Option<u64>, default: u64, min: u64, max: u64| {
            let v = v.unwrap_or(default);
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(ctx.error(
                    format!("{key}.{k}"),
                    format!("{v} is out of range ({min} to {max})"),
                ))
            }
        };
        let timeout = range("timeout_secs", raw.timeout_secs, 10, 1, 120)?;
        let max_concurrent = range("max_concurrent", raw.max_concurrent, 16, 1, 1024)?;
        let max_body = range("max_body_bytes", raw.max_body_bytes, 4096, 1, 65536)?;
        let ttl = range("ttl_secs", raw.ttl_secs, 86_400, 0, 2_419_200)?;
        let mut allow_hosts = Vec::new();
        for h in raw.allow_hosts.unwrap_or_default() {
            let name = h.strip_prefix('.').unwrap_or(&h);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
            {
                return Err(ctx.error(format!("{key}.allow_hosts"), format!("{h:?} is not a host")));
            }
            allow_hosts.push(h.to_ascii_lowercase());
        }
        let extra_ca = match raw.webpush_ca {
            Some(p) => {
                let full = ctx.path(&p);
                if !full.exists() {
                    return Err(ctx.error(
                        format!("{key}.webpush_ca"),
                        format!("{} does not exist", full.display()),
                    ));
                }
                Some(full)
            }
            None => None,
        };
        let webpush = raw.webpush.unwrap_or(true).then(|| WebPushSettings {
            policy: GuardPolicy {
                allow_private: raw.allow_private_targets.unwrap_or(false),
                allow_hosts,
            },
            timeout: Duration::from_secs(timeout),
            max_concurrent: max_concurrent as usize,
            max_body: max_body as usize,
            extra_ca,
        });
        if apns.is_empty() && webpush.is_none() {
            return Err(ctx.error(key, "enables neither apns profiles nor webpush"));
        }
        let (allow_from, open_relay) = senders(ctx, key, raw.allow_from.clone(), raw.open_relay)?;
        Ok(Push2Settings {
            allow_from,
            open_relay,
            apns,
            webpush,
            ttl: ttl as u32,
        })
    }
}

impl Push2Settings {
    /// The effective settings as an inline TOML table, for `check-config`.
    pub fn describe(&self) -> String {
        let mut out = format!("{{ apns = {:?}, ttl_secs = {}", self.apns, self.ttl);
        if self.open_relay {
            out.push_str(", open_relay = true");
        } else {
            out.push_str(&format!(", allow_from = {:?}", self.allow_from));
        }
        match &self.webpush {
            None => out.push_str(", webpush = false"),
            Some(w) => {
                out.push_str(&format!(
                    ", webpush = true, allow_private_targets = {}, allow_hosts = {:?}, \
                     timeout_secs = {}, max_concurrent = {}, max_body_bytes = {}",
                    w.policy.allow_private,
                    w.policy.allow_hosts,
                    w.timeout.as_secs(),
                    w.max_concurrent,
                    w.max_body
                ));
                if let Some(ca) = &w.extra_ca {
                    out.push_str(&format!(", webpush_ca = {:?}", ca.display().to_string()));
                }
            }
        }
        out.push_str(" }");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validates_profiles_and_bounds() {
        let dir = std::env::temp_dir();
        let ctx = ConfigContext::for_file(&dir.join("p.toml"));
        let mut apps = BTreeMap::new();
        let log: toml::Table = toml::from_str("provider = \"log\"").unwrap();
        apps.insert(
            "logged".to_owned(),
            ProviderSettings::from_table("logged", log, &ctx).unwrap(),
        );
        let s = |text: &str| {
            Push2Settings::from_table(
                "component[0].push2",
                toml::from_str(&format!("allow_from = [\"example.com\"]\n{text}")).unwrap(),
                &ctx,
                &apps,
            )
        };
        let ok = s("").unwrap();
        let w = ok.webpush.unwrap();
        assert!(!w.policy.allow_private);
        assert_eq!((w.max_body, w.max_concurrent, ok.ttl), (4096, 16, 86_400));
        assert_eq!(
            s("apns = [\"logged\"]").unwrap_err().key,
            "component[0].push2.apns"
        );
        assert_eq!(
            s("apns = [\"nope\"]").unwrap_err().key,
            "component[0].push2.apns"
        );
        assert_eq!(s("webpush = false").unwrap_err().key, "component[0].push2");
        assert_eq!(
            s("timeout_secs = 0").unwrap_err().key,
            "component[0].push2.timeout_secs"
        );
        assert_eq!(
            s("allow_hosts = [\"a b\"]").unwrap_err().key,
            "component[0].push2.allow_hosts"
        );
        assert_eq!(
            s("webpush_ca = \"/nonexistent/ca.pem\"").unwrap_err().key,
            "component[0].push2.webpush_ca"
        );
        assert!(s("surprise = 1").is_err());
    }
}
