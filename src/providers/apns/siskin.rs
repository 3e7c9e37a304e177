//! The Siskin flavour of an APNS push (Siskin and Snikket iOS, as the
//! Tigase push component sends it): `aps` with an alert and
//! `mutable-content`, and beside it custom top-level keys: `account`, and
//! what the operator lets cross Apple (sender, body, count, the encrypted
//! payload). Calls go to the PushKit token with an empty `aps`.

use serde_json::{json, Value};

use super::settings::AlertText;
use crate::providers::{Priority, Push};

/// Longest summary text copied into a payload, in bytes.
const MAX_TEXT: usize = 1024;

/// What a Siskin payload may carry beside `account`: the summary crosses
/// Apple, so each piece is the operator's choice (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiskinPayload {
    /// `sender` (and `nickname`) from the summary.
    pub sender: bool,
    /// `body` from the summary.
    pub body: bool,
    /// `unread-messages` from the summary's message count.
    pub count: bool,
    /// Forward `tigase:push:encrypt:0` pushes (`encrypted`, `iv`) and
    /// advertise that feature in the `register-device` reply.
    pub encrypted: bool,
}

/// One Siskin push's part of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiskinPush {
    /// The registering bare JID.
    pub account: String,
    /// The PushKit token, where VoIP pushes go.
    pub voip_token: Option<String>,
    /// What the operator lets the payload carry.
    pub payload: SiskinPayload,
}

impl SiskinPush {
    /// Whether a push of `priority` goes to the PushKit token rather than
    /// the token the registration is stored under.
    pub fn uses_second_token(&self, priority: Priority) -> bool {
        self.voip_token.is_some() && priority == Priority::Voip
    }

    /// The priority of a Siskin push, given the profile's decision and
    /// whether the XMPP server marked it a call: Siskin's extension runs
    /// only for an alert, and calls go to the PushKit token when there is
    /// one.
    pub fn priority(&self, voip_hint: bool) -> Priority {
        if voip_hint && self.voip_token.is_some() {
            Priority::Voip
        } else {
            Priority::High
        }
    }
}

/// The APNS device token of a Siskin push: the PushKit token for a call.
pub fn apns_device_token<'a>(push: &'a Push, voip_token: Option<&'a str>) -> &'a str {
    match (push.priority, voip_token) {
        (Priority::Voip, Some(t)) => t,
        _ => &push.token,
    }
}

/// The APNS payload of a Siskin push: `aps` with an alert and
/// `mutable-content: 1` (so the Notification Service Extension runs; a
/// call carries an empty `aps`), and beside it `account` and what the
/// operator allows.
pub fn apns_payload(push: &Push, account: &str, allow: SiskinPayload, alert: &AlertText) -> Value {
    let mut v = if push.priority == Priority::Voip {
        json!({ "aps": {} })
    } else {
        let mut a = json!({ "body": alert.body });
        if let Some(t) = &alert.title {
            a["title"] = json!(t);
        }
        let mut aps = json!({ "alert": a, "mutable-content": 1 });
        if let Some(sound) = &alert.sound {
            aps["sound"] = json!(sound);
        }
        json!({ "aps": aps })
    };
    v["account"] = json!(account);
    let s = &push.summary;
    if allow.sender {
        if let Some(sender) = &s.last_message_sender {
            v["sender"] = json!(cut(sender));
            // The summary has no nickname: the sender's localpart stands in.
            let nick = sender.split(['@', '/']).next().unwrap_or_default();
            if !nick.is_empty() {
                v["nickname"] = json!(cut(nick));
            }
        }
    }
    if allow.body {
        if let Some(body) = &s.last_message_body {
            v["body"] = json!(cut(body));
        }
    }
    if allow.count {
        if let Some(n) = s.message_count {
            v["unread-messages"] = json!(n);
        }
    }
    if allow.encrypted {
        if let Some(e) = &push.encrypted {
            v["encrypted"] = json!(e.payload);
            v["iv"] = json!(e.iv);
        }
    }
    v
}

fn cut(s: &str) -> &str {
    crate::text::cut(s, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Encrypted, Summary};
    use serde_json::json;

    fn alert() -> AlertText {
        AlertText {
            title: Some("Siskin".into()),
            body: "New message".into(),
            sound: Some("default".into()),
        }
    }

    fn push(priority: Priority) -> Push {
        Push {
            component: "push.example.org".into(),
            push_type: "siskin".into(),
            node: "n".into(),
            token: "00ff".into(),
            priority,
            summary: Summary {
                message_count: Some(3),
                last_message_sender: Some("juliet@capulet.lit/balcony".into()),
                last_message_body: Some("Wherefore art thou?".into()),
                pending_subscription_count: None,
            },
            encrypted: Some(Encrypted {
                iv: "SVY=".into(),
                payload: "Q0lQSEVS".into(),
                kind: None,
            }),
            flavour: crate::providers::Flavour::Standard,
        }
    }

    #[test]
    fn payload_carries_only_what_the_operator_allows() {
        let v = apns_payload(
            &push(Priority::High),
            "romeo@montague.lit",
            SiskinPayload::default(),
            &alert(),
        );
        assert_eq!(
            v,
            json!({
                "aps": {"alert": {"title": "Siskin", "body": "New message"}, "mutable-content": 1, "sound": "default"},
                "account": "romeo@montague.lit"
            })
        );
        let all = SiskinPayload {
            sender: true,
            body: true,
            count: true,
            encrypted: true,
        };
        let v = apns_payload(&push(Priority::High), "romeo@montague.lit", all, &alert());
        assert_eq!(
            v,
            json!({
                "aps": {"alert": {"title": "Siskin", "body": "New message"}, "mutable-content": 1, "sound": "default"},
                "account": "romeo@montague.lit",
                "sender": "juliet@capulet.lit/balcony",
                "nickname": "juliet",
                "body": "Wherefore art thou?",
                "unread-messages": 3,
                "encrypted": "Q0lQSEVS",
                "iv": "SVY="
            })
        );
    }

    #[test]
    fn voip_goes_to_the_pushkit_token_with_an_empty_aps() {
        let mut p = push(Priority::Voip);
        assert_eq!(apns_device_token(&p, Some("beef")), "beef");
        let allow = SiskinPayload {
            encrypted: true,
            ..SiskinPayload::default()
        };
        let v = apns_payload(&p, "romeo@montague.lit", allow, &alert());
        assert_eq!(v["aps"], json!({}));
        assert_eq!(v["encrypted"], "Q0lQSEVS");
        p.priority = Priority::High;
        assert_eq!(apns_device_token(&p, Some("beef")), "00ff");
    }

    #[test]
    fn long_texts_are_cut_on_a_char_boundary() {
        let mut p = push(Priority::High);
        p.summary.last_message_body = Some("é".repeat(2000));
        let allow = SiskinPayload {
            body: true,
            ..SiskinPayload::default()
        };
        let v = apns_payload(&p, "a@b", allow, &alert());
        assert_eq!(v["body"].as_str().unwrap().len(), 1024);
    }

    #[test]
    fn siskin_pushes_are_alerts_or_voip_with_a_pushkit_token() {
        let p = |voip: Option<&str>| SiskinPush {
            account: "a@b".into(),
            voip_token: voip.map(str::to_owned),
            payload: SiskinPayload::default(),
        };
        assert_eq!(p(None).priority(false), Priority::High);
        assert_eq!(p(None).priority(true), Priority::High);
        assert_eq!(p(Some("ab")).priority(true), Priority::Voip);
        assert!(p(Some("ab")).uses_second_token(Priority::Voip));
        assert!(!p(Some("ab")).uses_second_token(Priority::High));
        assert!(!p(None).uses_second_token(Priority::Voip));
    }
}
