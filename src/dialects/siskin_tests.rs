use super::*;
use crate::providers::{Encrypted, Summary};
use crate::xml::parse_element;
use serde_json::json;

fn cmd(xml: &str) -> Result<Request, StanzaError> {
    let el = parse_element(xml.as_bytes()).unwrap();
    let c = Command::from_node(el.get_attr("node").unwrap()).unwrap();
    parse(c, &el)
}

#[test]
fn register_device_without_action_reads_provider_and_both_tokens() {
    let r = cmd(
        "<command xmlns='http://jabber.org/protocol/commands' node='register-device'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='provider'><value>tigase:messenger:apns:1</value></field>\
        <field var='device-token'><value>00FFAB</value></field>\
        <field var='device-second-token'><value>c0ffee</value></field></x></command>",
    )
    .unwrap();
    assert_eq!(r.command, Command::Register);
    assert_eq!(r.provider, "tigase:messenger:apns:1");
    assert_eq!(r.device_token, "00ffab");
    assert_eq!(r.second_token.as_deref(), Some("c0ffee"));
    assert!(!r.cancel);
}

#[test]
fn bad_tokens_and_missing_fields_are_bad_requests() {
    let e = cmd(
        "<command xmlns='http://jabber.org/protocol/commands' node='register-device'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='provider'><value>p</value></field>\
        <field var='device-token'><value>not hex</value></field></x></command>",
    )
    .unwrap_err();
    assert_eq!(e.condition, "bad-request");
    let e = cmd(
        "<command xmlns='http://jabber.org/protocol/commands' node='unregister-device'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='device-token'><value>00</value></field></x></command>",
    )
    .unwrap_err();
    assert!(e.text.unwrap().contains("provider"));
    let r = cmd(
        "<command xmlns='http://jabber.org/protocol/commands' node='unregister-device'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='provider'><value>p</value></field>\
        <field var='device-token'><value>AB</value></field>\
        <field var='device-second-token'><value>cd</value></field></x></command>",
    )
    .unwrap();
    assert_eq!((r.command, r.second_token), (Command::Unregister, None));
}

#[test]
fn nodes_are_128_random_bits() {
    let a = random_node().unwrap();
    let b = random_node().unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn reply_form_has_a_type_text_multi_features_and_max_payload_size() {
    let s = completed("s1", "abcd", true).to_stanza_string();
    assert_eq!(
        s,
        "<command xmlns='http://jabber.org/protocol/commands' node='register-device' sessionid='s1' status='completed'>\
         <x xmlns='jabber:x:data' type='result'>\
         <field var='node' type='text-single'><value>abcd</value></field>\
         <field var='features' type='text-multi'><value>tigase:push:encrypt:0</value></field>\
         <field var='max-payload-size' type='text-single'><value>3072</value></field>\
         </x></command>"
    );
    let s = completed("s1", "abcd", false).to_stanza_string();
    assert!(
        s.contains("<field var='features' type='text-multi'/>"),
        "{s}"
    );
    assert!(!s.contains("encrypt"));
}

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
        dialect: None,
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
