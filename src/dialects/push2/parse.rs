//! Pure: reading a Push 2.0 `<notification>` and its `<client>`, and the
//! APNS payload of the Apple route.

use crate::providers::webpush::Endpoint;
use crate::xml::{Element, NS_CLIENT, NS_COMPONENT, NS_SERVER};

/// Push 2.0 namespace.
pub const NS_PUSH2: &str = "urn:xmpp:push2:0";
/// The RFC 8291 envelope's namespace.
const NS_SCE_RFC8291: &str = "urn:xmpp:sce:rfc8291:0";
const APNS_PROD: &str = "https://api.push.apple.com/3/device/";
const APNS_DEV: &str = "https://api.development.push.apple.com/3/device/";
/// Longest JWT or key carried.
const MAX_JWT: usize = 4096;

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
        && [NS_COMPONENT, NS_CLIENT, NS_SERVER].contains(&&*stanza.ns)
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
