use super::*;
use crate::xml::parse_element;

fn el(xml: &str) -> Element {
    parse_element(xml.as_bytes()).unwrap()
}

const MSG: &str =
    "<message from='example.com' to='push.example.org' id='123e4567-e89b-12d3-a456-426614174000'>\
    <notification xmlns='urn:xmpp:push2:0'><client>https://up.example.org/w/1</client>\
    <priority>high</priority><voip/>\
    <encrypted xmlns='urn:xmpp:sce:rfc8291:0'><payload>aGVsbG8=</payload></encrypted>\
    <jwt key='BP+/k='>h.c.s</jwt></notification></message>";

#[test]
fn parses_a_notification() {
    let m = el(MSG);
    let n = parse(notification_of(&m).unwrap()).unwrap();
    assert_eq!(
        n,
        Notification {
            client: "https://up.example.org/w/1".into(),
            priority: Urgency::High,
            voip: true,
            payload: Some("aGVsbG8=".into()),
            jwt: Some(("h.c.s".into(), "BP+/k=".into())),
        }
    );
    let min = el("<notification xmlns='urn:xmpp:push2:0'><client>x</client></notification>");
    let n = parse(&min).unwrap();
    assert_eq!(
        (n.priority, n.voip, n.payload, n.jwt),
        (Urgency::Normal, false, None, None)
    );
}

#[test]
fn only_non_error_messages_with_a_notification_are_taken() {
    assert!(notification_of(&el(&MSG.replace("<message ", "<message type='error' "))).is_none());
    assert!(notification_of(&el("<message><body>hi</body></message>")).is_none());
    assert!(notification_of(&el(
        "<iq type='set'><notification xmlns='urn:xmpp:push2:0'/></iq>"
    ))
    .is_none());
}

#[test]
fn malformed_notifications_are_refused() {
    for bad in [
        "<notification xmlns='urn:xmpp:push2:0'/>",
        "<notification xmlns='urn:xmpp:push2:0'><client> </client></notification>",
        "<notification xmlns='urn:xmpp:push2:0'><client>x</client><priority>urgent</priority></notification>",
        "<notification xmlns='urn:xmpp:push2:0'><client>x</client><encrypted xmlns='urn:xmpp:sce:rfc8291:0'/></notification>",
        "<notification xmlns='urn:xmpp:push2:0'><client>x</client><jwt>a.b.c</jwt></notification>",
        "<notification xmlns='urn:xmpp:push2:0'><client>x</client><jwt key='k'>a b</jwt></notification>",
    ] {
        assert!(parse(&el(bad)).is_err(), "{bad}");
    }
    let long = format!(
        "<notification xmlns='urn:xmpp:push2:0'><client>https://h/{}</client></notification>",
        "a".repeat(3000)
    );
    assert!(parse(&el(&long)).is_err());
}

#[test]
fn apns_clients_are_read_with_topic_and_voip_token() {
    assert_eq!(
        target("https://api.push.apple.com/3/device/ABCD#org.example.app&ef01").unwrap(),
        Target::Apns {
            sandbox: false,
            token: "abcd".into(),
            topic: "org.example.app".into(),
            voip_token: Some("ef01".into())
        }
    );
    assert_eq!(
        target("https://api.development.push.apple.com/3/device/abcd#org.example.app").unwrap(),
        Target::Apns {
            sandbox: true,
            token: "abcd".into(),
            topic: "org.example.app".into(),
            voip_token: None
        }
    );
    for bad in [
        "https://api.push.apple.com/3/device/abcd",
        "https://api.push.apple.com/3/device/xyz#t",
        "https://api.push.apple.com/3/device/abcd#",
        "https://api.push.apple.com/3/device/abcd#t&zz",
        "https://api.push.apple.com/3/device/abcd#t/x",
    ] {
        assert!(target(bad).is_err(), "{bad}");
    }
    assert!(matches!(
        target("https://up.example.org/w/1").unwrap(),
        Target::WebPush(_)
    ));
    assert!(target("http://up.example.org/w/1").is_err());
}

/// The error a Web Push result is answered with, through the pipeline's
/// one error table.
fn web_error(result: Result<u16, crate::providers::webpush::WebPushError>) -> Option<StanzaError> {
    match crate::providers::webpush::outcome_of(result) {
        crate::providers::Outcome::Delivered => None,
        crate::providers::Outcome::DeadToken { .. } => Some(PushError::DeadToken.to_stanza_error()),
        crate::providers::Outcome::Failed(f) => Some(PushError::Provider(f).to_stanza_error()),
    }
}

#[test]
fn web_errors_are_wait_unless_the_endpoint_is_gone_or_forbidden() {
    assert_eq!(web_error(Ok(201)), None);
    for s in [404, 410] {
        let e = web_error(Ok(s)).unwrap();
        assert_eq!((e.kind, e.condition), (ErrorType::Cancel, "item-not-found"));
    }
    for s in [301, 302, 400, 413, 429, 500, 503] {
        assert_eq!(web_error(Ok(s)).unwrap().kind, ErrorType::Wait, "{s}");
    }
    let refused = web_error(Err(crate::providers::webpush::WebPushError::Refused(
        crate::providers::webpush::GuardError::AddressRefused("127.0.0.1".parse().unwrap()),
    )))
    .unwrap();
    assert_eq!(
        (refused.kind, refused.condition),
        (ErrorType::Cancel, "not-allowed")
    );
    let t = web_error(Err(crate::providers::webpush::WebPushError::Timeout)).unwrap();
    assert_eq!(
        (t.kind, t.condition),
        (ErrorType::Wait, "remote-server-timeout")
    );
}

#[test]
fn error_message_shape() {
    let s = error_message(
        "push.example.org",
        "example.com",
        "m1",
        &StanzaError::item_not_found("gone"),
    )
    .to_stanza_string();
    assert_eq!(
        s,
        "<message type='error' from='push.example.org' to='example.com' id='m1'>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>gone</text>\
         </error></message>"
    );
}
