//! Monal and Quicksy iOS (fpush's dialect): no registration and no secret.
//! The publish node is the device's APNS token and the client's enable
//! form, copied into publish-options, names its `pushModule`
//! (`monalProdiOS`, `monalProdCatalyst`, `quicksyProdiOS`, ..., with a
//! `-sandbox` suffix for development builds). The operator maps modules to
//! app profiles; the payload is an alert with `mutable-content` so Monal's
//! notification extension runs and fetches the messages itself.
//!
//! ```toml
//! [component.monal]
//! modules = { monalProdiOS = "monal", "monalProdiOS-sandbox" = "monal-dev" }
//! default = "monal"          # for modules not listed (never for -sandbox ones)
//! allow_from = ["example.com"] # sender domains served (default: any)
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::profiles::{allow_from, check_apns_profile, outcome_error, sender_allowed};
use crate::config::{ConfigContext, ConfigError};
use crate::providers::apns::payload::CustomApns;
use crate::providers::{Priority, ProviderSettings, Push, Summary};
use crate::pushes::{send_within, PushService};
use crate::registrations::owner::short;
use crate::stanza::forms::Form;
use crate::stanza::publish::NS_PUBSUB;
use crate::stanza::StanzaError;
use crate::xml::{Element, NS_DATA};

/// Shortest APNS token accepted, in hex digits (tokens are 32 bytes today).
const MIN_TOKEN_HEX: usize = 64;
/// Longest APNS token accepted, in hex digits (Apple says they may grow).
const MAX_TOKEN_HEX: usize = 200;
/// Longest `pushModule` value accepted.
const MAX_MODULE: usize = 64;

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
    /// Sender domains served; empty = any.
    pub allow_from: Vec<String>,
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
        Ok(MonalSettings {
            allow_from: allow_from(ctx, &format!("{key}.allow_from"), raw.allow_from)?,
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
        if !self.allow_from.is_empty() {
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
        let mut aps = json!({
            "alert": { "title": self.title, "body": self.body },
            "mutable-content": 1,
        });
        if let Some(s) = &self.sound {
            aps["sound"] = json!(s);
        }
        let mut v = self.extra.clone();
        v.insert("aps".into(), aps);
        Value::Object(v)
    }
}

fn valid_module(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= MAX_MODULE
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A Monal push: the device token and its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonalRequest {
    /// APNS token, lowercase hex.
    pub token: String,
    /// `pushModule` from publish-options.
    pub module: String,
}

/// The `pushModule` of a publish, if its publish-options carry one: then
/// the publish is Monal's, whatever else it holds.
pub fn push_module(pubsub: &Element) -> Option<String> {
    let x = pubsub
        .get_child("publish-options", NS_PUBSUB)?
        .get_child("x", NS_DATA)?;
    Form::parse(x).value("pushModule").map(str::to_owned)
}

/// Parses a Monal publish. `Err` carries the error to answer: a token that
/// cannot be an APNS token is final (`cancel/item-not-found`), since no
/// retry could ever deliver it.
pub fn parse(pubsub: &Element) -> Result<MonalRequest, StanzaError> {
    let module = push_module(pubsub)
        .ok_or_else(|| StanzaError::bad_request("publish-options without pushModule"))?;
    if !valid_module(&module) {
        return Err(StanzaError::bad_request("pushModule is not a module name"));
    }
    let mut publishes = pubsub.children_named("publish", NS_PUBSUB);
    let node = match (publishes.next(), publishes.next()) {
        (Some(p), None) => p.get_attr("node").unwrap_or_default(),
        _ => return Err(StanzaError::bad_request("expected exactly one <publish/>")),
    };
    if node.len() < MIN_TOKEN_HEX
        || node.len() > MAX_TOKEN_HEX
        || node.len() % 2 != 0
        || !node.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(StanzaError::item_not_found(
            "the node is not a plausible APNS device token",
        ));
    }
    Ok(MonalRequest {
        token: node.to_ascii_lowercase(),
        module,
    })
}

/// Sends one Monal push through the module's app profile; `Err` is the
/// error to answer (`wait` unless the token is dead).
pub async fn push(
    pushes: &PushService,
    component: &str,
    from: &str,
    settings: &MonalSettings,
    req: MonalRequest,
) -> Result<(), StanzaError> {
    sender_allowed(&settings.allow_from, from)?;
    let Some(profile) = settings.profile_for(&req.module) else {
        // The operator's choice, not the device's fault: wait, never cancel.
        log::info!(
            "Monal push for token {} with pushModule {:?}, which no profile serves",
            short(&req.token),
            req.module
        );
        return Err(StanzaError::internal(format!(
            "pushModule {} is not served here",
            req.module
        )));
    };
    let apps = pushes.apps();
    let Some(app) = apps.get(profile) else {
        return Err(StanzaError::internal(format!(
            "app profile {profile} is not running"
        )));
    };
    let push = Push {
        component: component.to_owned(),
        push_type: profile.to_owned(),
        node: req.token.clone(),
        token: req.token,
        priority: Priority::High,
        summary: Summary::default(),
        encrypted: None,
        dialect: None,
    };
    let custom = CustomApns {
        payload: settings.payload().to_string().into_bytes(),
        voip: false,
        priority: 10,
        apns_id: None,
    };
    let outcome = send_within(
        pushes.timeout(),
        Box::pin(app.provider.send_custom(&push, &custom)),
    )
    .await;
    match outcome_error(&outcome) {
        None => Ok(()),
        Some(e) => {
            log::info!(
                "Monal push to token {} ({}) failed: {e}",
                short(&push.token),
                req.module
            );
            Err(e)
        }
    }
}

#[cfg(test)]
#[path = "monal_tests.rs"]
mod tests;
