//! The registration dialects a component speaks besides mod_push_appserver
//! v1 (always on), each one value in its `[[component]]` table:
//!
//! ```toml
//! conversations = { fcm = "conversations", apns = "conversations-ios" }
//! siskin = { providers = { "tigase:messenger:apns:1" = "siskin" }, sender = true, body = false, count = true, encrypted = true }
//! ```
//!
//! Every value names an `[app.<type>]` profile of the right provider
//! (`log` fits any, for trying a setup out).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigContext, ConfigError};
pub use crate::providers::apns::siskin::SiskinPayload;
use crate::providers::ProviderSettings;

/// The dialects of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialectSettings {
    /// Conversations / p2 (`register-push-fcm`, `register-push-apns`).
    pub conversations: ConversationsSettings,
    /// Siskin / Snikket iOS (`register-device`); `None` when off.
    pub siskin: Option<SiskinSettings>,
}

/// Which app profile serves each Conversations command; `None` = not offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationsSettings {
    /// Profile of `register-push-fcm`.
    pub fcm: Option<String>,
    /// Profile of `register-push-apns`.
    pub apns: Option<String>,
}

/// The Siskin dialect of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiskinSettings {
    /// Provider id (e.g. `tigase:messenger:apns:1`) to app profile.
    pub providers: BTreeMap<String, String>,
    /// What the payload may carry.
    pub payload: SiskinPayload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConversations {
    fcm: Option<String>,
    apns: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSiskin {
    providers: BTreeMap<String, String>,
    sender: Option<bool>,
    body: Option<bool>,
    count: Option<bool>,
    encrypted: Option<bool>,
}

/// Longest provider id accepted.
const MAX_PROVIDER_ID: usize = 200;

/// Checks that `profile` names an `[app.*]` that can send an APNS payload
/// (`apns`, or `log` to try a setup).
pub(super) fn check_apns_profile(
    ctx: &ConfigContext,
    key: &str,
    profile: &str,
    apps: &BTreeMap<String, ProviderSettings>,
) -> Result<(), ConfigError> {
    match apps.get(profile) {
        Some(ProviderSettings::Apns(_) | ProviderSettings::Log(_)) => Ok(()),
        Some(_) => Err(ctx.error(
            key,
            format!("[app.{profile}] must use provider \"apns\" (or \"log\")"),
        )),
        None => Err(ctx.error(
            key,
            format!("app profile {profile:?} has no [app.{profile}]"),
        )),
    }
}

/// Who a stateless dialect (`key`) serves: the `allow_from` sender
/// domains, or with `open_relay = true` anyone. Neither is refused: a
/// stateless dialect that serves any sender relays pushes for the whole
/// XMPP network with the operator's provider credentials.
pub(super) fn senders(
    ctx: &ConfigContext,
    key: &str,
    domains: Option<Vec<String>>,
    open_relay: Option<bool>,
) -> Result<(Vec<String>, bool), ConfigError> {
    let list = allow_from(ctx, &format!("{key}.allow_from"), domains)?;
    match (list.is_empty(), open_relay.unwrap_or(false)) {
        (false, false) | (true, true) => Ok((list, open_relay.unwrap_or(false))),
        (false, true) => Err(ctx.error(
            format!("{key}.open_relay"),
            "open_relay = true serves every sender; remove it or allow_from",
        )),
        (true, false) => Err(ctx.error(
            format!("{key}.allow_from"),
            "name the XMPP domains whose users this serves (allow_from = [\"example.org\"]); \
             without it anyone could push through your provider credentials \
             (open_relay = true allows that on purpose)",
        )),
    }
}

/// Validates an `allow_from` list of sender domains (lowercased).
pub(super) fn allow_from(
    ctx: &ConfigContext,
    key: &str,
    domains: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for d in domains.unwrap_or_default() {
        if d.is_empty()
            || d.len() > 253
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(ctx.error(key, format!("{d:?} is not a domain")));
        }
        out.push(d.to_ascii_lowercase());
    }
    Ok(out)
}

/// Validates the dialect values of component `i` against the app profiles.
pub(super) fn validate(
    i: usize,
    conversations: Option<toml::Table>,
    siskin: Option<toml::Table>,
    apps: &BTreeMap<String, ProviderSettings>,
    ctx: &ConfigContext,
) -> Result<DialectSettings, ConfigError> {
    let mut out = DialectSettings::default();
    if let Some(t) = conversations {
        let key = format!("component[{i}].conversations");
        let raw: RawConversations = ctx.deserialize(&key, t)?;
        if raw.fcm.is_none() && raw.apns.is_none() {
            return Err(ctx.error(&key, "name a profile for fcm, apns or both"));
        }
        for (kind, profile) in [("fcm", &raw.fcm), ("apns", &raw.apns)] {
            if let Some(p) = profile {
                check_profile(&format!("{key}.{kind}"), p, kind, apps, ctx)?;
            }
        }
        out.conversations = ConversationsSettings {
            fcm: raw.fcm,
            apns: raw.apns,
        };
    }
    if let Some(t) = siskin {
        let key = format!("component[{i}].siskin");
        let raw: RawSiskin = ctx.deserialize(&key, t)?;
        if raw.providers.is_empty() {
            return Err(ctx.error(
                format!("{key}.providers"),
                "name at least one provider id, e.g. { \"tigase:messenger:apns:1\" = \"siskin\" }",
            ));
        }
        for (id, profile) in &raw.providers {
            let k = format!("{key}.providers.\"{id}\"");
            if id.is_empty()
                || id.len() > MAX_PROVIDER_ID
                || id
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "\"&'<>".contains(c))
            {
                return Err(ctx.error(&k, "a provider id is a short string without spaces"));
            }
            check_profile(&k, profile, "apns", apps, ctx)?;
        }
        out.siskin = Some(SiskinSettings {
            providers: raw.providers,
            payload: SiskinPayload {
                sender: raw.sender.unwrap_or(false),
                body: raw.body.unwrap_or(false),
                count: raw.count.unwrap_or(false),
                encrypted: raw.encrypted.unwrap_or(false),
            },
        });
    }
    Ok(out)
}

/// Writes the dialect values as TOML lines (nothing for v1 only).
pub(super) fn show(f: &mut std::fmt::Formatter<'_>, d: &DialectSettings) -> std::fmt::Result {
    let c = &d.conversations;
    if c.fcm.is_some() || c.apns.is_some() {
        let parts: Vec<String> = [("fcm", &c.fcm), ("apns", &c.apns)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {v:?}")))
            .collect();
        writeln!(f, "conversations = {{ {} }}", parts.join(", "))?;
    }
    if let Some(s) = &d.siskin {
        let providers: Vec<String> = s
            .providers
            .iter()
            .map(|(id, p)| format!("{id:?} = {p:?}"))
            .collect();
        let p = s.payload;
        writeln!(
            f,
            "siskin = {{ providers = {{ {} }}, sender = {}, body = {}, count = {}, encrypted = {} }}",
            providers.join(", "),
            p.sender,
            p.body,
            p.count,
            p.encrypted
        )?;
    }
    Ok(())
}

/// `profile` must exist and send through `kind` (or `log`).
fn check_profile(
    key: &str,
    profile: &str,
    kind: &str,
    apps: &BTreeMap<String, ProviderSettings>,
    ctx: &ConfigContext,
) -> Result<(), ConfigError> {
    let provider = apps.get(profile).map(|a| match a {
        ProviderSettings::Log(_) => "log",
        ProviderSettings::Apns(_) => "apns",
        ProviderSettings::Fcm(_) => "fcm",
    });
    profile_problem(profile, provider, kind).map_or(Ok(()), |r| Err(ctx.error(key, r)))
}

/// What is wrong with serving `kind` through `profile`, whose provider is
/// `provider` (`None`: no such profile).
fn profile_problem(profile: &str, provider: Option<&str>, kind: &str) -> Option<String> {
    match provider {
        None => Some(format!(
            "app profile {profile:?} has no [app.{profile}] section"
        )),
        Some(p) if p == kind || p == "log" => None,
        Some(_) => Some(format!(
            "app profile {profile:?} must use provider = \"{kind}\" (or \"log\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{allow_from, profile_problem, senders, ConfigContext};

    #[test]
    fn a_stateless_dialect_needs_allow_from_or_an_explicit_open_relay() {
        let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
        let list = || Some(vec!["example.org".to_owned()]);
        assert_eq!(
            senders(&ctx, "k", list(), None).unwrap(),
            (vec!["example.org".to_owned()], false)
        );
        assert_eq!(
            senders(&ctx, "k", None, Some(true)).unwrap(),
            (vec![], true)
        );
        let e = senders(&ctx, "k", None, None).unwrap_err();
        assert_eq!(e.key, "k.allow_from");
        assert!(e.reason.contains("open_relay"), "{e}");
        assert_eq!(
            senders(&ctx, "k", Some(vec![]), Some(false))
                .unwrap_err()
                .key,
            "k.allow_from"
        );
        assert_eq!(
            senders(&ctx, "k", list(), Some(true)).unwrap_err().key,
            "k.open_relay"
        );
    }

    #[test]
    fn allow_from_lists_lowercase_domains() {
        let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
        assert_eq!(
            allow_from(&ctx, "k", Some(vec!["Example.COM".into()])).unwrap(),
            vec!["example.com".to_owned()]
        );
        assert_eq!(
            allow_from(&ctx, "k", Some(vec!["a b".into()]))
                .unwrap_err()
                .key,
            "k"
        );
    }

    #[test]
    fn profiles_must_use_the_dialects_provider_or_log() {
        assert_eq!(profile_problem("p", Some("fcm"), "fcm"), None);
        assert_eq!(profile_problem("p", Some("log"), "apns"), None);
        let e = profile_problem("p", Some("apns"), "fcm").unwrap();
        assert!(e.contains("provider = \"fcm\""), "{e}");
        assert!(profile_problem("p", None, "fcm")
            .unwrap()
            .contains("[app.p]"));
    }
}
