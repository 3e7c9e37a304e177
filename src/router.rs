//! Pure dispatch: which handler owns a stanza.

use crate::stanza::disco::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING};
use crate::stanza::publish::NS_PUBSUB;
use crate::stanza::NS_COMMANDS;
use crate::unifiedpush::NS_UP;
use crate::xml::Element;

/// Where a stanza goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// XEP-0199 ping.
    Ping,
    /// disco#info, optionally on a node.
    DiscoInfo(Option<&'a str>),
    /// disco#items, optionally on a node.
    DiscoItems(Option<&'a str>),
    /// XEP-0050 command (the `<command/>` element).
    Command(&'a Element),
    /// XEP-0357 publish (the `<pubsub/>` element).
    Publish(&'a Element),
    /// A get/set iq nobody handles: answer `service-unavailable`.
    Unsupported,
    /// A get/set iq without exactly one payload: answer `bad-request`.
    Malformed(&'static str),
    /// A Push 2.0 `<notification/>` in a message (answered only on failure).
    Push2(&'a Element),
    /// A UnifiedPush `<register/>` (the iq's payload).
    UnifiedPushRegister(&'a Element),
    /// Results, errors, messages and presence: nothing to answer.
    Ignore,
}

/// Routes one stanza.
pub fn route(stanza: &Element) -> Route<'_> {
    // Push 2.0 comes as a message: answered by the handler only on failure.
    if let Some(n) = crate::dialects::push2::notification_of(stanza) {
        return Route::Push2(n);
    }
    // The link answers exactly the stanzas this accepts, whatever the handler does.
    if !crate::stanza::is_iq_request(stanza) {
        return Route::Ignore;
    }
    let kind = stanza.get_attr("type").unwrap_or_default();
    let mut payloads = stanza.elements();
    let Some(payload) = payloads.next() else {
        return Route::Malformed("iq without a payload");
    };
    if payloads.next().is_some() {
        return Route::Malformed("iq with more than one payload");
    }
    let node = payload.get_attr("node");
    match (kind, payload.name.as_str(), &*payload.ns) {
        ("get", "ping", NS_PING) => Route::Ping,
        ("get", "query", NS_DISCO_INFO) => Route::DiscoInfo(node),
        ("get", "query", NS_DISCO_ITEMS) => Route::DiscoItems(node),
        ("set", "command", NS_COMMANDS) => Route::Command(payload),
        ("set", "pubsub", NS_PUBSUB) => Route::Publish(payload),
        ("set", "register", NS_UP) => Route::UnifiedPushRegister(payload),
        _ => Route::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    fn r(xml: &str) -> String {
        format!("{:?}", route(&parse_element(xml.as_bytes()).unwrap()))
    }

    #[test]
    fn routes_by_type_and_payload() {
        assert_eq!(
            r("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
            "Ping"
        );
        assert_eq!(
            r("<iq type='get'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"),
            "DiscoItems(Some(\"http://jabber.org/protocol/commands\"))"
        );
        assert!(
            r("<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>")
                .starts_with("Publish")
        );
        assert!(
            r("<iq type='set'><command xmlns='http://jabber.org/protocol/commands'/></iq>")
                .starts_with("Command")
        );
        assert_eq!(
            r("<iq type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>"),
            "Unsupported"
        );
        assert_eq!(
            r("<iq type='get'><vCard xmlns='vcard-temp'/></iq>"),
            "Unsupported"
        );
        assert!(r("<iq type='set'/>").starts_with("Malformed"));
        assert_eq!(r("<iq type='result' id='1'/>"), "Ignore");
        assert!(r(
            "<iq type='set'><register xmlns='http://gultsch.de/xmpp/drafts/unified-push'/></iq>"
        )
        .starts_with("UnifiedPushRegister"));
        assert_eq!(
            r("<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
            "Ping"
        );
        assert_eq!(
            r("<iq xmlns='jabber:client' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
            "DiscoInfo(None)"
        );
        assert_eq!(r("<message><body>hi</body></message>"), "Ignore");
        assert!(
            r("<message id='m'><notification xmlns='urn:xmpp:push2:0'/></message>")
                .starts_with("Push2")
        );
        assert_eq!(
            r("<message type='error'><notification xmlns='urn:xmpp:push2:0'/></message>"),
            "Ignore"
        );
    }
}
