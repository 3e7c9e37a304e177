use super::*;
use crate::xml::parse_element;

fn pubsub(inner_item: &str, options: &str) -> Element {
    let iq = format!(
        "<iq type='set' from='user@example.com' to='push.example.org' id='n1'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='NODE'><item>{inner_item}</item></publish>{options}</pubsub></iq>"
    );
    let iq = parse_element(iq.as_bytes()).unwrap();
    iq.get_child("pubsub", NS_PUBSUB).unwrap().clone()
}

const OPTIONS: &str = "<publish-options><x xmlns='jabber:x:data' type='submit'>\
    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
    <field var='pushModule'><value>monal</value></field>\
    <field var='secret'><value>SECRET</value></field></x></publish-options>";

const SUMMARY: &str = "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
    <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
    <field var='message-count'><value>3</value></field>\
    <field var='last-message-sender'><value>juliet@capulet.lit/balcony</value></field>\
    <field var='last-message-body'><value>Wherefore art thou?</value></field>\
    </x></notification>";

#[test]
fn parses_the_protocols_md_example_ignoring_unknown_option_fields() {
    let r = parse(&pubsub(SUMMARY, OPTIONS)).unwrap();
    assert_eq!(r.node, "NODE");
    assert_eq!(r.secret.as_deref(), Some("SECRET"));
    assert!(!r.voip_hint);
    assert_eq!(r.summary.message_count, Some(3));
    assert_eq!(
        r.summary.last_message_body.as_deref(),
        Some("Wherefore art thou?")
    );
    assert_eq!(
        r.summary.last_message_sender.as_deref(),
        Some("juliet@capulet.lit/balcony")
    );
    assert!(r.encrypted.is_none());
}

#[test]
fn summary_form_may_be_missing() {
    let r = parse(&pubsub("<notification xmlns='urn:xmpp:push:0'/>", OPTIONS)).unwrap();
    assert_eq!(r.summary, Summary::default());
}

#[test]
fn encrypted_push_and_tigase_priority_are_kept() {
    let n = "<notification xmlns='urn:xmpp:push:0'>\
             <encrypted xmlns='tigase:push:encrypt:0' iv='SVY=' type='voip'>Q0lQSEVS</encrypted>\
             <priority xmlns='tigase:push:priority:0'>high</priority></notification>";
    let r = parse(&pubsub(n, OPTIONS)).unwrap();
    let e = r.encrypted.unwrap();
    assert_eq!((e.iv.as_str(), e.payload.as_str()), ("SVY=", "Q0lQSEVS"));
    assert_eq!(e.kind.as_deref(), Some("voip"));
    assert!(r.high_hint);
    assert!(r.voip_hint);
}

#[test]
fn malformed_requests_say_what_is_wrong() {
    let cases = [
        (pubsub("", OPTIONS), "notification"),
        (pubsub(SUMMARY, &OPTIONS.replace("pubsub#publish-options", "pubsub#other")), "FORM_TYPE"),
        (pubsub(&SUMMARY.replace(">3<", ">three<"), OPTIONS), "message-count"),
        (pubsub("<notification xmlns='urn:xmpp:push:0'><encrypted xmlns='tigase:push:encrypt:0'>x</encrypted></notification>", OPTIONS), "iv"),
    ];
    for (el, needle) in cases {
        let e = parse(&el).unwrap_err();
        assert!(e.contains(needle), "{e:?} should mention {needle}");
    }
    // No secret parses: the push service decides whether the node needs one.
    assert_eq!(parse(&pubsub(SUMMARY, "")).unwrap().secret, None);
    let no_secret = OPTIONS.replace("<field var='secret'><value>SECRET</value></field>", "");
    assert_eq!(parse(&pubsub(SUMMARY, &no_secret)).unwrap().secret, None);
    let no_node = parse_element(
        b"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish><item/></publish></pubsub>",
    )
    .unwrap();
    assert!(parse(&no_node).unwrap_err().contains("node"));
    let no_publish = parse_element(
        b"<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'/></pubsub>",
    )
    .unwrap();
    assert!(parse(&no_publish).unwrap_err().contains("publish"));
}

#[test]
fn summaries_are_cut_and_oversized_payloads_refused() {
    let form = |body: &str| {
        format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item>\
             <notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
             <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
             <field var='last-message-body'><value>{body}</value></field>\
             <field var='message-count'><value>{}</value></field></x></notification>\
             </item></publish></pubsub>",
            if body.is_empty() {
                "x".repeat(100_000)
            } else {
                "1".into()
            }
        )
    };
    let el = |s: &str| crate::xml::parse_element(s.as_bytes()).unwrap();
    let r = parse(&el(&form(&"é".repeat(100_000)))).unwrap();
    let body = r.summary.last_message_body.unwrap();
    assert!(body.len() <= MAX_SUMMARY_TEXT && body.len() > MAX_SUMMARY_TEXT - 4);
    // An error quoting a peer's value stays short.
    let e = parse(&el(&form(""))).unwrap_err();
    assert!(e.len() < 200, "{}", e.len());
    let enc = |n: usize| {
        format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item>\
             <notification xmlns='urn:xmpp:push:0'><encrypted xmlns='tigase:push:encrypt:0' \
             iv='aXY='>{}</encrypted></notification></item></publish></pubsub>",
            "A".repeat(n)
        )
    };
    assert!(parse(&el(&enc(MAX_ENCRYPTED))).is_ok());
    assert!(parse(&el(&enc(MAX_ENCRYPTED + 1))).is_err());
}
