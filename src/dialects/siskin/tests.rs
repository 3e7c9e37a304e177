use super::*;
use crate::xml::parse_element;

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
