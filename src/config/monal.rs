//! `[component.monal]`: which app profile serves each `pushModule` of
//! Monal's stateless dialect, and the alert its pushes carry.
//!
//! ```toml
//! [component.monal]
//! modules = { monalProdiOS = "monal", "monalProdiOS-sandbox" = "monal-dev" }
//! default = "monal"          # for modules not listed (never for -sandbox ones)
//! allow_from = ["example.com"] # sender domains served (or open_relay = true)
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::dialects::{check_apns_profile, senders};
use crate::providers::apns::payload::monal_alert;
use crate::providers::ProviderSettings;
use crate::settings::{ConfigContext, ConfigError};

/// Longest `pushModule` value accepted.
const MAX_MODULE: usize = 64;

/// Whether `m` can be a `pushModule` name (A-Z, a-z, 0-9, '-', '_', '.').
pub fn valid_module(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= MAX_MODULE
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Validated `[component.monal]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MonalSettings {
    /// `pushModule` value to app profile.
    pub modules: BTreeMap<String, String>,
    /// Profile for modules not listed; never used for `-sandbox` modules,
    /// whose tokens a production profile would only see rejected.
    pub default: Option<String>,
    /// Alert title.
    pub title: String,
    /// Alert body.
    pub body: String,
    /// `aps.sound`; `None` for silence.
    pub sound: Option<String>,
    /// Extra top-level payload keys.
    pub extra: Map<String, Value>,
    /// Sender domains served; empty only with `open_relay`.
    pub allow_from: Vec<String>,
    /// Serves every sender (`open_relay = true`, warned about at start).
    pub open_relay: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonal {
    modules: BTreeMap<String, String>,
    default: Option<String>,
    title: Option<String>,
    body: Option<String>,
    sound: Option<String>,
    extra: Option<toml::Table>,
    allow_from: Option<Vec<String>>,
    open_relay: Option<bool>,
}

impl MonalSettings {
    /// Validates `[component.monal]` (`key` is its dotted name) against the
    /// app profiles.
    pub fn from_table(
        key: &str,
        table: toml::Table,
        ctx: &ConfigContext,
        apps: &BTreeMap<String, ProviderSettings>,
    ) -> Result<Self, ConfigError> {
        let raw: RawMonal = ctx.deserialize(key, table)?;
        if raw.modules.is_empty() && raw.default.is_none() {
            return Err(ctx.error(
                format!("{key}.modules"),
                "map at least one pushModule to an app profile (or set default)",
            ));
        }
        for (module, profile) in &raw.modules {
            if !valid_module(module) {
                return Err(ctx.error(
                    format!("{key}.modules"),
                    format!("{module:?} is not a pushModule name (A-Z, a-z, 0-9, '-', '_', '.')"),
                ));
            }
            check_apns_profile(ctx, &format!("{key}.modules.{module}"), profile, apps)?;
        }
        if let Some(d) = &raw.default {
            check_apns_profile(ctx, &format!("{key}.default"), d, apps)?;
        }
        let mut extra = Map::new();
        for (k, v) in raw.extra.unwrap_or_default() {
            if k == "aps" {
                return Err(ctx.error(format!("{key}.extra.aps"), "aps is built by the server"));
            }
            let v = serde_json::to_value(&v)
                .map_err(|e| ctx.error(format!("{key}.extra.{k}"), e.to_string()))?;
            extra.insert(k, v);
        }
        let (allow_from, open_relay) = senders(ctx, key, raw.allow_from.clone(), raw.open_relay)?;
        Ok(MonalSettings {
            allow_from,
            open_relay,
            modules: raw.modules,
            default: raw.default,
            title: raw.title.unwrap_or_else(|| "New Message".into()),
            body: raw.body.unwrap_or_else(|| "You have a new message".into()),
            sound: match raw.sound.as_deref() {
                None => Some("default".into()),
                Some("") => None,
                Some(s) => Some(s.to_owned()),
            },
            extra,
        })
    }

    /// The effective settings as an inline TOML table, for `check-config`.
    pub fn describe(&self) -> String {
        let modules: Vec<String> = self
            .modules
            .iter()
            .map(|(m, p)| format!("{m:?} = {p:?}"))
            .collect();
        let mut out = format!("{{ modules = {{ {} }}", modules.join(", "));
        if let Some(d) = &self.default {
            out.push_str(&format!(", default = {d:?}"));
        }
        out.push_str(&format!(
            ", title = {:?}, body = {:?}, sound = {:?}",
            self.title,
            self.body,
            self.sound.as_deref().unwrap_or("")
        ));
        if self.open_relay {
            out.push_str(", open_relay = true");
        } else {
            out.push_str(&format!(", allow_from = {:?}", self.allow_from));
        }
        if !self.extra.is_empty() {
            let extra: Vec<String> = self
                .extra
                .iter()
                .map(|(k, v)| format!("{k:?} = {v}"))
                .collect();
            out.push_str(&format!(", extra = {{ {} }}", extra.join(", ")));
        }
        out.push_str(" }");
        out
    }

    /// The app profile for `module`, if any.
    pub fn profile_for(&self, module: &str) -> Option<&str> {
        match self.modules.get(module) {
            Some(p) => Some(p),
            None if module.ends_with("-sandbox") => None,
            None => self.default.as_deref(),
        }
    }

    /// The APNS payload Monal's extension expects.
    pub fn payload(&self) -> Value {
        monal_alert(&self.title, &self.body, self.sound.as_deref(), &self.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apps() -> BTreeMap<String, ProviderSettings> {
        let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
        let mut apps = BTreeMap::new();
        for (name, provider) in [("monal", "log"), ("android", "fcm-ish")] {
            if provider == "log" {
                let t: toml::Table = toml::from_str("provider = \"log\"").unwrap();
                apps.insert(
                    name.to_owned(),
                    ProviderSettings::from_table(name, t, &ctx).unwrap(),
                );
            }
        }
        apps
    }

    /// `[component.monal]` from `text`, serving example.com.
    fn settings(text: &str) -> Result<MonalSettings, ConfigError> {
        let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
        MonalSettings::from_table(
            "component[0].monal",
            toml::from_str(&format!("allow_from = [\"example.com\"]\n{text}")).unwrap(),
            &ctx,
            &apps(),
        )
    }

    #[test]
    fn config_maps_modules_and_sandbox_needs_its_own_entry() {
        let s = settings("modules = { monalProdiOS = \"monal\" }\ndefault = \"monal\"").unwrap();
        assert_eq!(s.profile_for("monalProdiOS"), Some("monal"));
        assert_eq!(s.profile_for("quicksyProdiOS"), Some("monal"));
        assert_eq!(s.profile_for("monalProdiOS-sandbox"), None);
        let s = settings("modules = { \"monalProdiOS-sandbox\" = \"monal\" }").unwrap();
        assert_eq!(s.profile_for("monalProdiOS-sandbox"), Some("monal"));
        assert_eq!(s.profile_for("monalProdiOS"), None);
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = settings("modules = { monalProdiOS = \"nope\" }").unwrap_err();
        assert_eq!(e.key, "component[0].monal.modules.monalProdiOS");
        let e = settings("modules = {}").unwrap_err();
        assert_eq!(e.key, "component[0].monal.modules");
        let e = settings("modules = { \"a b\" = \"monal\" }").unwrap_err();
        assert!(e.reason.contains("pushModule"), "{e}");
        let e = settings("modules = {}\ndefault = \"monal\"\nextra = { aps = 1 }").unwrap_err();
        assert_eq!(e.key, "component[0].monal.extra.aps");
        assert!(settings("modules = {}\ndefault = \"monal\"\nbogus = 1").is_err());
    }

    #[test]
    fn payload_is_an_alert_with_mutable_content_and_extra_keys() {
        let s = settings(
            "default = \"monal\"\nmodules = {}\ntitle = \"T\"\nbody = \"B\"\nextra = { a = \"x\", n = 2 }",
        )
        .unwrap();
        assert_eq!(
            s.payload(),
            json!({"aps": {"alert": {"title": "T", "body": "B"}, "sound": "default", "mutable-content": 1},
                   "a": "x", "n": 2})
        );
        assert_eq!(
            s.describe(),
            "{ modules = {  }, default = \"monal\", title = \"T\", body = \"B\", sound = \"default\", \
             allow_from = [\"example.com\"], extra = { \"a\" = \"x\", \"n\" = 2 } }"
        );
        let s = settings("default = \"monal\"\nmodules = {}\nsound = \"\"").unwrap();
        assert_eq!(
            s.payload(),
            json!({"aps": {"alert": {"title": "New Message", "body": "You have a new message"}, "mutable-content": 1}})
        );
    }
}
