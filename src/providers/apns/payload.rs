//! Pure: the APNS request (path, headers, JSON payload) for one push.
//!
//! | priority | apns-push-type | apns-priority | apns-topic      | payload                                  |
//! |----------|----------------|---------------|-----------------|------------------------------------------|
//! | high     | `alert`        | 10            | bundle id       | `aps.alert` (+ `mutable-content`, sound) |
//! | silent   | `background`   | 5             | bundle id       | `{"aps":{"content-available":1}}`        |
//! | voip     | `voip`         | 10            | bundle id.voip  | `{"aps":{"content-available":1}}`        |
//!
//! An encrypted push (`tigase:push:encrypt:0`) adds
//! `"encrypted":{"iv","payload","type"}`; as an alert it always carries
//! `mutable-content` so the app's extension can decrypt it.

use std::fmt;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::settings::{AlertText, ApnsSettings};
use super::siskin;
use crate::clock::unix_secs;
use crate::providers::{Flavour, Priority, Push};

/// Payload limit for alert and background pushes.
pub const MAX_PAYLOAD: usize = 4096;
/// Payload limit for VoIP pushes.
pub const MAX_VOIP_PAYLOAD: usize = 5120;
/// Sent as `apns-collapse-id` when `collapse_pushes` is on: one pending
/// push per device replaces the others.
pub const COLLAPSE_ID: &str = "xmpp-push";
/// Longest device token accepted (hex digits).
const MAX_TOKEN_HEX: usize = 200;

/// Everything of one APNS request except the authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    /// `/3/device/<token>`.
    pub path: String,
    /// `apns-push-type`.
    pub push_type: &'static str,
    /// `apns-priority`.
    pub priority: u8,
    /// `apns-topic`.
    pub topic: String,
    /// `apns-expiration`: absolute UNIX seconds.
    pub expiration: u64,
    /// `apns-collapse-id`.
    pub collapse_id: Option<&'static str>,
    /// JSON payload.
    pub payload: Vec<u8>,
    /// `apns-id`, when the dialect names the push (Push 2.0 passes the
    /// message id through).
    pub apns_id: Option<String>,
}

impl ApnsRequest {
    /// The HTTP request (headers only; the payload is the body).
    pub fn http_request(
        &self,
        authorization: Option<&str>,
    ) -> Result<http::Request<()>, http::Error> {
        let mut b = http::Request::post(self.path.as_str())
            .header("apns-push-type", self.push_type)
            .header("apns-priority", self.priority.to_string())
            .header("apns-topic", self.topic.as_str())
            .header("apns-expiration", self.expiration.to_string())
            .header("content-type", "application/json");
        if let Some(id) = self.collapse_id {
            b = b.header("apns-collapse-id", id);
        }
        if let Some(id) = &self.apns_id {
            b = b.header("apns-id", id.as_str());
        }
        if let Some(jwt) = authorization {
            b = b.header("authorization", format!("bearer {jwt}"));
        }
        b.body(())
    }
}

/// Why no request could be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The token is not a hex string, so Apple could never accept it.
    BadToken,
    /// Even with the alert text cut, the payload exceeds Apple's limit.
    TooLarge {
        /// Bytes needed.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::BadToken => f.write_str("device token is not hexadecimal"),
            PayloadError::TooLarge { size, limit } => {
                write!(f, "payload of {size} bytes exceeds Apple's {limit}")
            }
        }
    }
}

/// Builds the request for `push` at time `now`.
pub fn build(push: &Push, s: &ApnsSettings, now: SystemTime) -> Result<ApnsRequest, PayloadError> {
    let siskin = match &push.flavour {
        Flavour::Apns(c) => return build_custom(&push.token, c, s, now),
        Flavour::Siskin(p) => Some(p),
        _ => None,
    };
    let token = match siskin {
        Some(p) => siskin::apns_device_token(push, p.voip_token.as_deref()),
        None => &push.token,
    };
    check_token(token)?;
    let (push_type, priority, topic, limit) = match push.priority {
        Priority::High => ("alert", 10, s.topic.clone(), MAX_PAYLOAD),
        Priority::Silent => ("background", 5, s.topic.clone(), MAX_PAYLOAD),
        Priority::Voip => ("voip", 10, format!("{}.voip", s.topic), MAX_VOIP_PAYLOAD),
    };
    let payload = match (siskin, &push.flavour) {
        (Some(p), _) => {
            let bytes = siskin::apns_payload(push, &p.account, p.payload, &s.alert)
                .to_string()
                .into_bytes();
            if bytes.len() > limit {
                return Err(PayloadError::TooLarge {
                    size: bytes.len(),
                    limit,
                });
            }
            bytes
        }
        // p2 on iOS: the default payload, plus the account (and channel).
        (None, Flavour::P2 { account, channel }) => {
            let mut v: Value =
                serde_json::from_slice(&fit_payload(push, s, limit)?).unwrap_or_else(|_| json!({}));
            v["account"] = json!(account);
            if let Some(c) = channel {
                v["channel"] = json!(c);
            }
            v.to_string().into_bytes()
        }
        _ => fit_payload(push, s, limit)?,
    };
    Ok(ApnsRequest {
        path: format!("/3/device/{token}"),
        push_type,
        priority,
        topic,
        expiration: unix_secs(now) + s.ttl.as_secs(),
        collapse_id: s.collapse_pushes.then_some(COLLAPSE_ID),
        payload,
        apns_id: None,
    })
}

/// A complete APNS payload (Monal's alert, Push 2.0's): sent as is, with
/// the app profile's topic and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomApns {
    /// The JSON payload.
    pub payload: Vec<u8>,
    /// VoIP push (push type `voip` on `<topic>.voip`), else an alert.
    pub voip: bool,
    /// `apns-priority`: 10 immediate, 5 when convenient.
    pub priority: u8,
    /// `apns-id`: a UUID, or `None` for Apple to pick one.
    pub apns_id: Option<String>,
}

/// Builds the request for a complete payload to `token`.
pub fn build_custom(
    token: &str,
    c: &CustomApns,
    s: &ApnsSettings,
    now: SystemTime,
) -> Result<ApnsRequest, PayloadError> {
    check_token(token)?;
    let (push_type, topic, limit) = if c.voip {
        ("voip", format!("{}.voip", s.topic), MAX_VOIP_PAYLOAD)
    } else {
        ("alert", s.topic.clone(), MAX_PAYLOAD)
    };
    if c.payload.len() > limit {
        return Err(PayloadError::TooLarge {
            size: c.payload.len(),
            limit,
        });
    }
    Ok(ApnsRequest {
        path: format!("/3/device/{token}"),
        push_type,
        priority: c.priority,
        topic,
        expiration: unix_secs(now) + s.ttl.as_secs(),
        collapse_id: None,
        payload: c.payload.clone(),
        // Apple takes only the canonical UUID form; anything else is dropped.
        apns_id: c.apns_id.clone().filter(|id| is_uuid(id)),
    })
}

/// The alert Monal's notification extension expects: `mutable-content`,
/// so the extension runs and fetches the messages itself, beside the
/// operator's extra top-level keys.
pub fn monal_alert(
    title: &str,
    body: &str,
    sound: Option<&str>,
    extra: &serde_json::Map<String, Value>,
) -> Value {
    let mut aps = json!({
        "alert": { "title": title, "body": body },
        "mutable-content": 1,
    });
    if let Some(s) = sound {
        aps["sound"] = json!(s);
    }
    let mut v = extra.clone();
    v.insert("aps".into(), aps);
    Value::Object(v)
}

/// The alert of a Push 2.0 push, as Snikket's service sends it: the
/// RFC 8291 payload rides along for the app's extension to decrypt.
pub fn push2_alert(rfc8291: Option<&str>) -> Value {
    let mut v = json!({"aps": {"alert": {"title": "New Message"}, "mutable-content": 1}});
    if let Some(p) = rfc8291 {
        v["rfc8291"] = json!(p);
    }
    v
}

fn check_token(token: &str) -> Result<(), PayloadError> {
    if token.is_empty()
        || token.len() > MAX_TOKEN_HEX
        || !token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(PayloadError::BadToken);
    }
    Ok(())
}

/// `8-4-4-4-12` hex digits, as `apns-id` requires.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The payload, cutting the alert body (with an ellipsis) until it fits.
fn fit_payload(push: &Push, s: &ApnsSettings, limit: usize) -> Result<Vec<u8>, PayloadError> {
    let mut body = s.alert.body.clone();
    loop {
        let bytes = payload(push, s, &body).to_string().into_bytes();
        if bytes.len() <= limit {
            return Ok(bytes);
        }
        if push.priority != Priority::High || body.is_empty() {
            return Err(PayloadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        // Cutting n bytes of text shortens the JSON by at least n.
        let over = bytes.len() - limit;
        let keep = body.len().saturating_sub(over + '…'.len_utf8());
        body = if keep == 0 {
            String::new()
        } else {
            format!("{}…", crate::text::cut(&body, keep))
        };
    }
}

fn payload(push: &Push, s: &ApnsSettings, body: &str) -> Value {
    let mut v = match push.priority {
        Priority::High => {
            let mut aps = json!({ "alert": alert(&s.alert, body) });
            if let Some(sound) = &s.alert.sound {
                aps["sound"] = json!(sound);
            }
            if s.mutable_content || push.encrypted.is_some() {
                aps["mutable-content"] = json!(1);
            }
            json!({ "aps": aps })
        }
        Priority::Silent | Priority::Voip => json!({ "aps": { "content-available": 1 } }),
    };
    if let Some(e) = &push.encrypted {
        let mut enc = json!({ "iv": e.iv, "payload": e.payload });
        if let Some(kind) = &e.kind {
            enc["type"] = json!(kind);
        }
        v["encrypted"] = enc;
    }
    v
}

fn alert(text: &AlertText, body: &str) -> Value {
    match &text.title {
        Some(title) => json!({ "title": title, "body": body }),
        None => json!({ "body": body }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2client::Origin;
    use crate::providers::apns::settings::{ApnsAuth, Tuning};
    use crate::providers::{Encrypted, PriorityPolicy, Summary};
    use std::time::{Duration, UNIX_EPOCH};

    fn settings() -> ApnsSettings {
        ApnsSettings {
            push_priority: PriorityPolicy::Auto,
            sandbox: true,
            endpoint: Origin::new("api.sandbox.push.apple.com", 443).unwrap(),
            topic: "org.example.chat".into(),
            mutable_content: true,
            ttl: Duration::from_secs(3600),
            collapse_pushes: false,
            alert: AlertText {
                title: None,
                body: "New message".into(),
                sound: Some("default".into()),
            },
            extra_ca: None,
            auth: ApnsAuth::Token {
                key_file: "AuthKey.p8".into(),
                key_id: "ABC123DEFG".into(),
                team_id: "TEAM123456".into(),
            },
            feedback_interval_given: false,
            tuning: Tuning::default(),
        }
    }

    fn push(priority: Priority) -> Push {
        Push {
            component: "push.example.org".into(),
            push_type: "apns".into(),
            node: "node1".into(),
            token: "00ff".repeat(16),
            priority,
            summary: Summary::default(),
            encrypted: None,
            flavour: Flavour::Standard,
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    fn json(r: &ApnsRequest) -> Value {
        serde_json::from_slice(&r.payload).unwrap()
    }

    #[test]
    fn high_is_an_alert_with_mutable_content() {
        let r = build(&push(Priority::High), &settings(), now()).unwrap();
        assert_eq!(r.path, format!("/3/device/{}", "00ff".repeat(16)));
        assert_eq!((r.push_type, r.priority), ("alert", 10));
        assert_eq!(r.topic, "org.example.chat");
        assert_eq!(r.expiration, 1_750_003_600);
        assert_eq!(r.collapse_id, None);
        assert_eq!(
            json(&r),
            json!({"aps": {"alert": {"body": "New message"}, "sound": "default", "mutable-content": 1}})
        );
    }

    #[test]
    fn high_without_mutable_content_with_title_and_no_sound() {
        let mut s = settings();
        s.mutable_content = false;
        s.alert.title = Some("Chat".into());
        s.alert.sound = None;
        s.collapse_pushes = true;
        let r = build(&push(Priority::High), &s, now()).unwrap();
        assert_eq!(
            json(&r),
            json!({"aps": {"alert": {"title": "Chat", "body": "New message"}}})
        );
        assert_eq!(r.collapse_id, Some(COLLAPSE_ID));
    }

    #[test]
    fn silent_is_background_priority_5() {
        let r = build(&push(Priority::Silent), &settings(), now()).unwrap();
        assert_eq!((r.push_type, r.priority), ("background", 5));
        assert_eq!(r.topic, "org.example.chat");
        assert_eq!(json(&r), json!({"aps": {"content-available": 1}}));
    }

    #[test]
    fn voip_uses_the_voip_topic_and_push_type() {
        let r = build(&push(Priority::Voip), &settings(), now()).unwrap();
        assert_eq!((r.push_type, r.priority), ("voip", 10));
        assert_eq!(r.topic, "org.example.chat.voip");
    }

    #[test]
    fn expiration_is_now_plus_ttl_never_1970() {
        let mut s = settings();
        s.ttl = crate::providers::apns::settings::MAX_TTL;
        let real_now = SystemTime::now();
        let r = build(&push(Priority::High), &s, real_now).unwrap();
        assert_eq!(r.expiration, unix_secs(real_now) + 2_419_200);
    }

    #[test]
    fn encrypted_is_forwarded_and_forces_mutable_content() {
        let mut s = settings();
        s.mutable_content = false;
        let mut p = push(Priority::High);
        p.encrypted = Some(Encrypted {
            iv: "aXY=".into(),
            payload: "Y2lwaGVy".into(),
            kind: None,
        });
        let v = json(&build(&p, &s, now()).unwrap());
        assert_eq!(v["aps"]["mutable-content"], 1);
        assert_eq!(v["encrypted"], json!({"iv": "aXY=", "payload": "Y2lwaGVy"}));
        p.priority = Priority::Voip;
        p.encrypted.as_mut().unwrap().kind = Some("voip".into());
        let v = json(&build(&p, &s, now()).unwrap());
        assert_eq!(v["encrypted"]["type"], "voip");
        assert!(v["aps"].get("alert").is_none());
    }

    #[test]
    fn long_alert_text_is_cut_to_fit() {
        let mut p = push(Priority::High);
        p.encrypted = Some(Encrypted {
            iv: "aXY=".into(),
            payload: "A".repeat(3500),
            kind: None,
        });
        let mut s = settings();
        s.alert.body = "ü".repeat(500);
        let r = build(&p, &s, now()).unwrap();
        assert!(r.payload.len() <= MAX_PAYLOAD, "{}", r.payload.len());
        let body = json(&r)["aps"]["alert"]["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(body.ends_with('…') && body.starts_with("üü"), "{body}");
        // Silent pushes carry no text to cut.
        p.priority = Priority::Silent;
        p.encrypted.as_mut().unwrap().payload = "A".repeat(4100);
        assert!(matches!(
            build(&p, &s, now()),
            Err(PayloadError::TooLarge {
                limit: MAX_PAYLOAD,
                ..
            })
        ));
        // VoIP allows 5120 bytes.
        p.priority = Priority::Voip;
        assert!(build(&p, &s, now()).is_ok());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in ["", "xyz", "00ff/../x", "ab cd"] {
            let mut p = push(Priority::High);
            p.token = token.into();
            assert_eq!(build(&p, &settings(), now()), Err(PayloadError::BadToken));
        }
    }

    #[test]
    fn http_request_carries_the_headers() {
        let r = build(&push(Priority::Silent), &settings(), now()).unwrap();
        let req = r.http_request(Some("a.b.c")).unwrap();
        let h = req.headers();
        assert_eq!(h["apns-push-type"], "background");
        assert_eq!(h["apns-priority"], "5");
        assert_eq!(h["apns-topic"], "org.example.chat");
        assert_eq!(h["apns-expiration"], "1750003600");
        assert_eq!(h["authorization"], "bearer a.b.c");
        assert!(h.get("apns-collapse-id").is_none());
        assert!(h.get("apns-id").is_none());
    }

    #[test]
    fn custom_payloads_keep_their_bytes_and_pick_topic_by_voip() {
        let c = CustomApns {
            payload: br#"{"aps":{"alert":{"title":"t"}}}"#.to_vec(),
            voip: false,
            priority: 5,
            apns_id: Some("123e4567-e89b-12d3-a456-426614174000".into()),
        };
        let r = build_custom("00ff", &c, &settings(), now()).unwrap();
        assert_eq!((r.push_type, r.priority), ("alert", 5));
        assert_eq!(r.topic, "org.example.chat");
        assert_eq!(r.payload, c.payload);
        let req = r.http_request(None).unwrap();
        assert_eq!(
            req.headers()["apns-id"],
            "123e4567-e89b-12d3-a456-426614174000"
        );
        let v = CustomApns {
            voip: true,
            apns_id: Some("not-a-uuid".into()),
            ..c.clone()
        };
        let r = build_custom("00ff", &v, &settings(), now()).unwrap();
        assert_eq!(
            (r.push_type, r.topic.as_str()),
            ("voip", "org.example.chat.voip")
        );
        assert_eq!(r.apns_id, None);
        assert_eq!(
            build_custom("zz", &c, &settings(), now()),
            Err(PayloadError::BadToken)
        );
        let big = CustomApns {
            payload: vec![b' '; MAX_PAYLOAD + 1],
            ..c
        };
        assert!(matches!(
            build_custom("00ff", &big, &settings(), now()),
            Err(PayloadError::TooLarge { .. })
        ));
    }

    #[test]
    fn siskin_alerts_go_to_the_device_token_and_calls_to_pushkit() {
        let mut p = push(Priority::High);
        p.flavour = Flavour::Siskin(siskin::SiskinPush {
            account: "romeo@montague.lit".into(),
            voip_token: Some("beef".into()),
            payload: siskin::SiskinPayload::default(),
        });
        let r = build(&p, &settings(), now()).unwrap();
        assert_eq!(r.path, format!("/3/device/{}", "00ff".repeat(16)));
        assert_eq!((r.push_type, r.priority), ("alert", 10));
        assert_eq!(r.topic, "org.example.chat");
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["account"], "romeo@montague.lit");
        assert_eq!(v["aps"]["mutable-content"], 1);
        p.priority = Priority::Voip;
        let r = build(&p, &settings(), now()).unwrap();
        assert_eq!(r.path, "/3/device/beef");
        assert_eq!((r.push_type, r.priority), ("voip", 10));
        assert_eq!(r.topic, "org.example.chat.voip");
    }

    #[test]
    fn p2_on_ios_adds_the_account_to_the_default_payload() {
        let mut p = push(Priority::High);
        p.flavour = Flavour::P2 {
            account: "abc".into(),
            channel: Some("def".into()),
        };
        let r = build(&p, &settings(), now()).unwrap();
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["account"], "abc");
        assert_eq!(v["channel"], "def");
        assert_eq!(v["aps"]["alert"]["body"], "New message");
    }

    #[test]
    fn push2_alert_is_snikkets() {
        assert_eq!(
            push2_alert(Some("cGF5")),
            json!({"aps": {"alert": {"title": "New Message"}, "mutable-content": 1}, "rfc8291": "cGF5"})
        );
        assert_eq!(
            push2_alert(None),
            json!({"aps": {"alert": {"title": "New Message"}, "mutable-content": 1}})
        );
    }
}
