//! Push 2.0 (`urn:xmpp:push2:0`, Prosody's mod_push2): the XMPP server
//! sends a `<message>` whose `<notification>` names the device's
//! `<client>` and carries a payload it already encrypted (RFC 8291) and a
//! VAPID JWT it already signed. Nothing is stored: the push is routed by
//! `<client>`, either the APNS URL form
//! `https://api[.development].push.apple.com/3/device/<token>#<topic>&<voipToken>`
//! (sent through the configured `apns` profile with that topic and
//! environment, never any other) or a Web Push / UnifiedPush endpoint
//! (POSTed behind the SSRF guard). Failures answer `<message type='error'>`.
//!
//! ```toml
//! [component.push2]
//! apns = ["snikket"]        # apns profiles APNS-form clients may use
//! webpush = true            # Web Push / UnifiedPush endpoints
//! allow_from = []           # sender domains served (default: any)
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::monal::send_within;
use super::profiles::{allow_from, outcome_error, sender_allowed};
use crate::config::{ConfigContext, ConfigError};
use crate::providers::apns::payload::CustomApns;
use crate::providers::webpush::{
    decode_base64, vapid_authorization, Endpoint, GuardPolicy, WebPushError, WebPushRequest,
    WebPushSender, WebPushSettings,
};
use crate::providers::{Priority, ProviderSettings, Push, Summary};
use crate::pushes::PushService;
use crate::registrations::owner::short;
use crate::stanza::{ErrorType, StanzaError};
use crate::xml::{Element, NS_CLIENT, NS_COMPONENT, NS_SERVER};

/// Push 2.0 namespace.
pub const NS_PUSH2: &str = "urn:xmpp:push2:0";
/// The RFC 8291 envelope's namespace.
const NS_SCE_RFC8291: &str = "urn:xmpp:sce:rfc8291:0";
const APNS_PROD: &str = "https://api.push.apple.com/3/device/";
const APNS_DEV: &str = "https://api.development.push.apple.com/3/device/";
/// Longest JWT or key carried.
const MAX_JWT: usize = 4096;

/// Validated `[component.push2]` settings.
#[derive(Debug, Clone)]
pub struct Push2Settings {
    /// `apns` profiles APNS-form clients are sent through.
    pub apns: Vec<String>,
    /// Web Push / UnifiedPush endpoints allowed; `None` = off.
    pub webpush: Option<WebPushSettings>,
    /// `TTL` sent to Web Push endpoints.
    pub ttl: u32,
    /// Sender domains served; empty = any.
    pub allow_from: Vec<String>,
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
        Ok(Push2Settings {
            allow_from: allow_from(ctx, &format!("{key}.allow_from"), raw.allow_from)?,
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
        if !self.allow_from.is_empty() {
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

/// `<priority>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// `high`.
    High,
    /// `normal` (also when missing).
    Normal,
    /// `low`.
    Low,
}

/// A parsed `<notification xmlns='urn:xmpp:push2:0'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Where to: see [`Target`].
    pub client: String,
    /// How urgent.
    pub priority: Urgency,
    /// A call: VoIP push where the route can.
    pub voip: bool,
    /// The RFC 8291 payload, base64.
    pub payload: Option<String>,
    /// The VAPID JWT and the XMPP server's public key (base64).
    pub jwt: Option<(String, String)>,
}

/// The push 2.0 notification of a message, if it is one to handle (never
/// for `type='error'`, so errors are not answered with errors).
pub fn notification_of(stanza: &Element) -> Option<&Element> {
    (stanza.name == "message"
        && [NS_COMPONENT, NS_CLIENT, NS_SERVER].contains(&stanza.ns.as_str())
        && stanza.get_attr("type") != Some("error"))
    .then(|| stanza.get_child("notification", NS_PUSH2))
    .flatten()
}

/// Parses a notification; `Err` says what is wrong.
pub fn parse(n: &Element) -> Result<Notification, &'static str> {
    let text = |name: &str| {
        n.get_child(name, NS_PUSH2)
            .map(|e| e.text_content().trim().to_owned())
    };
    let client = text("client")
        .filter(|c| !c.is_empty())
        .ok_or("no <client>")?;
    if client.len() > crate::providers::webpush::endpoint::MAX_URL {
        return Err("<client> too long");
    }
    let priority = match text("priority").as_deref() {
        Some("high") => Urgency::High,
        Some("low") => Urgency::Low,
        Some("normal") | Some("") | None => Urgency::Normal,
        Some(_) => return Err("<priority> is not high, normal or low"),
    };
    let payload = match n.get_child("encrypted", NS_SCE_RFC8291) {
        Some(e) => Some(
            e.get_child("payload", NS_SCE_RFC8291)
                .map(|p| p.text_content().trim().to_owned())
                .filter(|p| !p.is_empty())
                .ok_or("<encrypted> without a <payload>")?,
        ),
        None => None,
    };
    let jwt = match n.get_child("jwt", NS_PUSH2) {
        Some(j) => {
            let key = j
                .get_attr("key")
                .filter(|k| !k.is_empty())
                .ok_or("<jwt> without a key")?;
            let token = j.text_content().trim().to_owned();
            let jwt_chars = |s: &str| {
                s.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/' | b'=')
                })
            };
            if token.is_empty()
                || token.len() > MAX_JWT
                || key.len() > MAX_JWT
                || !jwt_chars(&token)
                || !jwt_chars(key)
            {
                return Err("<jwt> is not a JWT and key");
            }
            Some((token, key.to_owned()))
        }
        None => None,
    };
    Ok(Notification {
        client,
        priority,
        voip: n.get_child("voip", NS_PUSH2).is_some(),
        payload,
        jwt,
    })
}

/// Where a `<client>` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Apple, by an app profile with this topic and environment.
    Apns {
        /// `api.development.push.apple.com`.
        sandbox: bool,
        /// Device token (hex).
        token: String,
        /// Bundle id.
        topic: String,
        /// PushKit token for calls, if any.
        voip_token: Option<String>,
    },
    /// A Web Push / UnifiedPush endpoint.
    WebPush(Endpoint),
}

/// Reads a `<client>`.
pub fn target(client: &str) -> Result<Target, String> {
    let apns = [(APNS_PROD, false), (APNS_DEV, true)]
        .into_iter()
        .find_map(|(p, sandbox)| client.strip_prefix(p).map(|rest| (rest, sandbox)));
    if let Some((rest, sandbox)) = apns {
        let (token, fragment) = rest.split_once('#').ok_or("APNS client without #<topic>")?;
        let (topic, voip) = match fragment.split_once('&') {
            Some((t, v)) => (t, Some(v).filter(|v| !v.is_empty())),
            None => (fragment, None),
        };
        let hex =
            |s: &str| !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(token) || voip.is_some_and(|v| !hex(v)) {
            return Err("APNS client with a malformed token".into());
        }
        if topic.is_empty()
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err("APNS client with a malformed topic".into());
        }
        return Ok(Target::Apns {
            sandbox,
            token: token.to_ascii_lowercase(),
            topic: topic.to_owned(),
            voip_token: voip.map(str::to_ascii_lowercase),
        });
    }
    Endpoint::parse(client)
        .map(Target::WebPush)
        .map_err(|e| e.to_string())
}

/// The APNS payload Snikket's service sends.
pub fn apns_payload(payload: Option<&str>) -> serde_json::Value {
    let mut v = json!({"aps": {"alert": {"title": "New Message"}, "mutable-content": 1}});
    if let Some(p) = payload {
        v["rfc8291"] = json!(p);
    }
    v
}

/// The Push 2.0 service of one component.
#[derive(Debug)]
pub struct Push2Service {
    settings: Push2Settings,
    webpush: Result<WebPushSender, String>,
}

impl Push2Service {
    /// Prepares the Web Push sender (a TLS setup that fails is logged and
    /// answered `wait` per push rather than stopping the component).
    pub fn new(settings: Push2Settings) -> Self {
        let webpush = match &settings.webpush {
            None => Err("Web Push endpoints are not enabled here".to_owned()),
            Some(w) => WebPushSender::new(w.clone()).map_err(|e| {
                log::error!("Push 2.0: the Web Push sender cannot start: {e}");
                e.to_string()
            }),
        };
        Push2Service { settings, webpush }
    }

    /// Delivers one notification; `Err` is the error to answer.
    pub async fn push(
        &self,
        pushes: &PushService,
        component: &str,
        from: &str,
        id: &str,
        n: Notification,
    ) -> Result<(), StanzaError> {
        sender_allowed(&self.settings.allow_from, from)?;
        let target = target(&n.client).map_err(|why| {
            StanzaError::new(
                ErrorType::Cancel,
                "item-not-found",
                format!("<client>: {why}"),
            )
        })?;
        match target {
            Target::Apns {
                sandbox,
                token,
                topic,
                voip_token,
            } => {
                self.apns(
                    pushes, component, id, &n, sandbox, token, &topic, voip_token,
                )
                .await
            }
            Target::WebPush(endpoint) => self.web(&n, endpoint).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apns(
        &self,
        pushes: &PushService,
        component: &str,
        id: &str,
        n: &Notification,
        sandbox: bool,
        token: String,
        topic: &str,
        voip_token: Option<String>,
    ) -> Result<(), StanzaError> {
        let found = self.settings.apns.iter().find_map(|p| {
            let app = pushes.apps().get(p)?;
            (app.provider.apns_topic()? == (topic, sandbox)).then_some((p, app))
        });
        let Some((profile, app)) = found else {
            // The operator does not serve this app: not the device's fault.
            log::info!("Push 2.0: no apns profile serves topic {topic} (sandbox: {sandbox})");
            return Err(StanzaError::internal(format!(
                "topic {topic} is not served here"
            )));
        };
        let (voip, token) = match (n.voip, voip_token) {
            (true, Some(v)) => (true, v),
            (_, _) => (false, token),
        };
        let push = Push {
            component: component.to_owned(),
            push_type: profile.clone(),
            node: token.clone(),
            token,
            priority: if voip { Priority::Voip } else { Priority::High },
            summary: Summary::default(),
            encrypted: None,
        };
        let custom = CustomApns {
            payload: apns_payload(n.payload.as_deref()).to_string().into_bytes(),
            voip,
            priority: if n.priority == Urgency::High || voip {
                10
            } else {
                5
            },
            apns_id: Some(id.to_owned()),
        };
        let outcome = send_within(pushes.timeout(), app.provider.send_custom(&push, &custom)).await;
        match outcome_error(&outcome) {
            None => Ok(()),
            Some(e) => {
                log::info!(
                    "Push 2.0 APNS push to token {} failed: {e}",
                    short(&push.token)
                );
                Err(e)
            }
        }
    }

    async fn web(&self, n: &Notification, endpoint: Endpoint) -> Result<(), StanzaError> {
        let sender = self
            .webpush
            .as_ref()
            .map_err(|why| StanzaError::new(ErrorType::Cancel, "not-allowed", why.clone()))?;
        let body = n
            .payload
            .as_deref()
            .and_then(decode_base64)
            .ok_or_else(|| {
                StanzaError::bad_request("Web Push needs an <encrypted> base64 payload")
            })?;
        let req = WebPushRequest {
            body,
            ttl: self.settings.ttl,
            urgency: match n.priority {
                Urgency::High => "high",
                Urgency::Normal => "normal",
                Urgency::Low => "low",
            },
            authorization: n.jwt.as_ref().map(|(t, k)| vapid_authorization(t, k)),
            endpoint,
        };
        let host = req.endpoint.host.clone();
        let result = sender.send(&req).await;
        match web_error(result) {
            None => Ok(()),
            Some(e) => {
                log::info!("Push 2.0 Web Push to {host} failed: {e}");
                Err(e)
            }
        }
    }
}

/// The error for a Web Push result, `None` on success: 404/410 and
/// refused targets are final, the rest `wait`.
pub fn web_error(result: Result<u16, WebPushError>) -> Option<StanzaError> {
    match result {
        Ok(200..=299) => None,
        Ok(404 | 410) => Some(StanzaError::item_not_found("the endpoint is gone")),
        Ok(s @ 300..=399) => Some(StanzaError::internal(format!(
            "the endpoint redirects ({s}); redirects are not followed"
        ))),
        Ok(s) => Some(StanzaError::internal(format!("the endpoint answered {s}"))),
        Err(WebPushError::Refused(g)) => Some(StanzaError::new(
            ErrorType::Cancel,
            "not-allowed",
            g.to_string(),
        )),
        Err(WebPushError::Body(n)) => Some(StanzaError::new(
            ErrorType::Modify,
            "not-acceptable",
            format!("payload of {n} bytes is empty or too large"),
        )),
        Err(WebPushError::Timeout) => Some(StanzaError::remote_server_timeout(
            "the endpoint did not answer in time",
        )),
        Err(e) => Some(StanzaError::internal(e.to_string())),
    }
}

/// The `<message type='error'>` answering a notification.
pub fn error_message(our_jid: &str, to: &str, id: &str, e: &StanzaError) -> Element {
    Element::new("message", NS_COMPONENT)
        .attr("type", "error")
        .attr("from", our_jid)
        .attr_opt("to", Some(to).filter(|t| !t.is_empty()))
        .attr_opt("id", Some(id).filter(|i| !i.is_empty()))
        .child(e.to_element())
}

#[cfg(test)]
#[path = "push2_tests.rs"]
mod tests;
