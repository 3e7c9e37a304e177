//! The FCM HTTP v1 message for one push. Pure.
//!
//! Data-only messages, so the app's `onMessageReceived` always runs and the
//! app fetches the messages itself over XMPP. `data` always carries
//! `"type": "push"` and the XEP-0357 `node`. Summary fields
//! (`message-count`, `last-message-sender`, `last-message-body`,
//! `pending-subscription-count`) are added only when `include_summary` is
//! set, since the payload crosses Google. An encrypted push
//! (`tigase:push:encrypt:0`) adds `iv` and `payload` as received; its
//! optional `type` attribute (e.g. `voip`) replaces `"push"` in `type`.

use std::collections::BTreeMap;

use crate::providers::{Flavour, Priority, Push};

/// The per-app parts of every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    /// `android.ttl` in seconds.
    pub ttl_secs: u64,
    /// `android.collapse_key`.
    pub collapse_key: Option<String>,
    /// Whether summary fields go into `data`.
    pub include_summary: bool,
}

/// `android.priority` for a decided priority.
pub fn android_priority(p: Priority) -> &'static str {
    match p {
        Priority::High | Priority::Voip => "HIGH",
        Priority::Silent => "NORMAL",
    }
}

/// The JSON request body for `messages:send`.
pub fn body(push: &Push, t: &MessageTemplate) -> Vec<u8> {
    if let Flavour::P2 { account, channel } = &push.flavour {
        let mut data = BTreeMap::from([("account", account.clone())]);
        if let Some(c) = channel {
            data.insert("channel", c.clone());
        }
        return message(push, t, &data, p2_priority(push));
    }
    let mut data: BTreeMap<&str, String> = BTreeMap::new();
    data.insert("type", "push".into());
    data.insert("node", push.node.clone());
    if t.include_summary {
        let s = &push.summary;
        if let Some(n) = s.message_count {
            data.insert("message-count", n.to_string());
        }
        if let Some(v) = &s.last_message_sender {
            data.insert("last-message-sender", v.clone());
        }
        if let Some(v) = &s.last_message_body {
            data.insert("last-message-body", v.clone());
        }
        if let Some(n) = s.pending_subscription_count {
            data.insert("pending-subscription-count", n.to_string());
        }
    }
    if let Some(e) = &push.encrypted {
        data.insert("iv", e.iv.clone());
        data.insert("payload", e.payload.clone());
        if let Some(kind) = &e.kind {
            data.insert("type", kind.clone());
        }
    }
    message(push, t, &data, android_priority(push.priority))
}

/// p2's `android.priority`: HIGH when the summary carries a body or the
/// push is not silent (p2 itself leaves it unset, so pushes wait in doze).
fn p2_priority(push: &Push) -> &'static str {
    let high = push.summary.last_message_body.is_some() || push.priority != Priority::Silent;
    if high {
        "HIGH"
    } else {
        "NORMAL"
    }
}

fn message(
    push: &Push,
    t: &MessageTemplate,
    data: &BTreeMap<&str, String>,
    priority: &str,
) -> Vec<u8> {
    let mut android = serde_json::json!({
        "priority": priority,
        "ttl": format!("{}s", t.ttl_secs),
    });
    if let Some(k) = &t.collapse_key {
        android["collapse_key"] = k.as_str().into();
    }
    serde_json::json!({
        "message": {
            "token": push.token,
            "data": data,
            "android": android,
        }
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Encrypted, Summary};
    use serde_json::{json, Value};

    fn push(priority: Priority) -> Push {
        Push {
            component: "push.example.org".into(),
            push_type: "fcm".into(),
            node: "node1".into(),
            token: "tok1".into(),
            priority,
            summary: Summary {
                message_count: Some(2),
                last_message_sender: Some("juliet@capulet.lit".into()),
                last_message_body: Some("Wherefore art thou?".into()),
                pending_subscription_count: None,
            },
            encrypted: None,
            flavour: Flavour::Standard,
        }
    }

    fn template() -> MessageTemplate {
        MessageTemplate {
            ttl_secs: 2_419_200,
            collapse_key: None,
            include_summary: false,
        }
    }

    fn parse(b: Vec<u8>) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn minimal_message_wakes_the_app_and_keeps_the_summary_away_from_google() {
        let v = parse(body(&push(Priority::High), &template()));
        assert_eq!(
            v,
            json!({"message": {
                "token": "tok1",
                "data": {"type": "push", "node": "node1"},
                "android": {"priority": "HIGH", "ttl": "2419200s"},
            }})
        );
    }

    #[test]
    fn priority_ttl_collapse_key_and_summary_land_in_the_message() {
        let t = MessageTemplate {
            ttl_secs: 60,
            collapse_key: Some("chat".into()),
            include_summary: true,
        };
        let v = parse(body(&push(Priority::Silent), &t));
        let m = &v["message"];
        assert_eq!(
            m["android"],
            json!({"priority": "NORMAL", "ttl": "60s", "collapse_key": "chat"})
        );
        assert_eq!(m["data"]["message-count"], "2");
        assert_eq!(m["data"]["last-message-sender"], "juliet@capulet.lit");
        assert_eq!(m["data"]["last-message-body"], "Wherefore art thou?");
        assert!(m["data"].get("pending-subscription-count").is_none());
    }

    #[test]
    fn encrypted_push_is_forwarded() {
        let mut p = push(Priority::Voip);
        p.encrypted = Some(Encrypted {
            iv: "aXY=".into(),
            payload: "Y2lwaGVy".into(),
            kind: Some("voip".into()),
        });
        let v = parse(body(&p, &template()));
        assert_eq!(
            v["message"]["data"],
            json!({"type": "voip", "node": "node1", "iv": "aXY=", "payload": "Y2lwaGVy"})
        );
        assert_eq!(v["message"]["android"]["priority"], "HIGH");
    }

    fn p2_push(body_text: Option<&str>, priority: Priority) -> Push {
        Push {
            component: "push.example.org".into(),
            push_type: "conversations".into(),
            node: "node1".into(),
            token: "fcm-token-1".into(),
            priority,
            summary: Summary {
                message_count: Some(1),
                last_message_sender: Some("romeo@montague.lit".into()),
                last_message_body: body_text.map(str::to_owned),
                pending_subscription_count: None,
            },
            encrypted: None,
            flavour: Flavour::P2 {
                account: "acc".into(),
                channel: None,
            },
        }
    }

    #[test]
    fn p2_message_carries_the_account_and_high_priority_with_a_body() {
        let t = MessageTemplate {
            ttl_secs: 3600,
            collapse_key: Some("xmpp".into()),
            include_summary: true,
        };
        let v: Value =
            serde_json::from_slice(&body(&p2_push(Some("hi"), Priority::High), &t)).unwrap();
        assert_eq!(
            v,
            json!({"message": {
                "token": "fcm-token-1",
                "data": {"account": "acc"},
                "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "xmpp"}
            }})
        );
        let v: Value = serde_json::from_slice(&body(&p2_push(None, Priority::Silent), &t)).unwrap();
        assert_eq!(v["message"]["android"]["priority"], "NORMAL");
        // A body wakes the phone even under a silent profile policy.
        let v: Value =
            serde_json::from_slice(&body(&p2_push(Some("hi"), Priority::Silent), &t)).unwrap();
        assert_eq!(v["message"]["android"]["priority"], "HIGH");
    }
}
