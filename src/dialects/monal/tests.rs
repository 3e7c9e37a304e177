use super::*;
use crate::stanza::ErrorType;
use crate::xml::parse_element;

const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn pubsub(node: &str, module: Option<&str>) -> Element {
    let module = module
        .map(|m| format!("<field var='pushModule'><value>{m}</value></field>"))
        .unwrap_or_default();
    let xml = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item>\
         <notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>{module}\
         </x></publish-options></pubsub>"
    );
    parse_element(xml.as_bytes()).unwrap()
}

#[test]
fn parses_token_and_module() {
    let p = pubsub(&TOKEN.to_uppercase(), Some("monalProdiOS-sandbox"));
    assert_eq!(push_module(&p).as_deref(), Some("monalProdiOS-sandbox"));
    assert_eq!(
        parse(&p).unwrap(),
        MonalRequest {
            token: TOKEN.into(),
            module: "monalProdiOS-sandbox".into()
        }
    );
    assert_eq!(push_module(&pubsub(TOKEN, None)), None);
}

#[test]
fn implausible_tokens_are_refused_as_gone() {
    for node in [
        "abc",
        "xyz",
        &"0".repeat(63),
        &"0".repeat(202),
        &format!("{TOKEN}/x"),
        &"g".repeat(64),
    ] {
        let e = parse(&pubsub(node, Some("monalProdiOS"))).unwrap_err();
        assert_eq!(
            (e.kind, e.condition),
            (ErrorType::Cancel, "item-not-found"),
            "{node}"
        );
    }
    let e = parse(&pubsub(TOKEN, Some("bad module!"))).unwrap_err();
    assert_eq!(e.condition, "bad-request");
}
