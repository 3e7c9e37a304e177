//! Service discovery (XEP-0030) answers and XMPP ping (XEP-0199).

use super::error::StanzaError;
use super::NS_COMMANDS;
use crate::xml::Element;

/// disco#info namespace.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// disco#items namespace.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Ping namespace.
pub const NS_PING: &str = "urn:xmpp:ping";

/// Features of the service itself.
pub const FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    "urn:xmpp:push:0",
    NS_COMMANDS,
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#publish-options",
    NS_PING,
    "jabber:x:data",
];

/// The disco#info payload for `node` (None = the service itself), for a
/// component offering `commands` (`(node, name)`) and, beside
/// [`FEATURES`], `extra` features (Siskin's provider ids).
pub fn info(
    node: Option<&str>,
    commands: &[(&str, &str)],
    extra: &[String],
) -> Result<Element, StanzaError> {
    let mut q = Element::new("query", NS_DISCO_INFO).attr_opt("node", node);
    let (identity, features): ((&str, &str, &str), Vec<&str>) = match node {
        None => (
            ("pubsub", "push", "XEP-0357 push app server"),
            FEATURES
                .iter()
                .copied()
                .chain(extra.iter().map(String::as_str))
                .collect(),
        ),
        Some(n) if n == NS_COMMANDS => (
            ("automation", "command-list", "Commands"),
            vec![NS_DISCO_INFO, NS_DISCO_ITEMS, NS_COMMANDS],
        ),
        Some(n) => match commands.iter().find(|(c, _)| *c == n) {
            Some((_, name)) => (
                ("automation", "command-node", name),
                vec![NS_DISCO_INFO, NS_COMMANDS, "jabber:x:data"],
            ),
            None => {
                return Err(StanzaError::item_not_found(format!(
                    "no disco node {}",
                    super::quoted(n)
                )))
            }
        },
    };
    q = q.child(
        Element::new("identity", NS_DISCO_INFO)
            .attr("category", identity.0)
            .attr("type", identity.1)
            .attr("name", identity.2),
    );
    for f in features {
        q = q.child(Element::new("feature", NS_DISCO_INFO).attr("var", f));
    }
    Ok(q)
}

/// The disco#items payload for `node`: the command list on the commands
/// node, nothing elsewhere.
pub fn items(
    our_jid: &str,
    node: Option<&str>,
    commands: &[(&str, &str)],
) -> Result<Element, StanzaError> {
    let mut q = Element::new("query", NS_DISCO_ITEMS).attr_opt("node", node);
    match node {
        None => {}
        Some(n) if n == NS_COMMANDS => {
            for (cmd, name) in commands {
                q = q.child(
                    Element::new("item", NS_DISCO_ITEMS)
                        .attr("jid", our_jid)
                        .attr("node", cmd)
                        .attr("name", name),
                );
            }
        }
        Some(n) if commands.iter().any(|(c, _)| *c == n) => {}
        Some(n) => {
            return Err(StanzaError::item_not_found(format!(
                "no disco node {}",
                super::quoted(n)
            )))
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    const COMMANDS: &[(&str, &str)] = &[
        ("v1-register-push", "Register a device"),
        ("v1-unregister-push", "Unregister a device"),
    ];

    #[test]
    fn service_identity_is_pubsub_push_for_siskin() {
        let s = info(None, COMMANDS, &["snikket:apns:1".to_owned()])
            .unwrap()
            .to_stanza_string();
        assert!(s.contains("<feature var='snikket:apns:1'/>"), "{s}");
        assert!(s.contains("<identity category='pubsub' type='push'"), "{s}");
        for f in [
            "urn:xmpp:push:0",
            NS_COMMANDS,
            "http://jabber.org/protocol/pubsub",
        ] {
            assert!(s.contains(&format!("<feature var='{f}'/>")), "{f}");
        }
    }

    #[test]
    fn commands_node_lists_every_command() {
        let s = items("push.example.org", Some(NS_COMMANDS), COMMANDS)
            .unwrap()
            .to_stanza_string();
        for (c, _) in COMMANDS {
            assert!(s.contains(&format!("node='{c}'")), "{c}");
        }
        assert!(items("push.example.org", Some("nope"), COMMANDS).is_err());
        assert!(info(Some("v1-register-push"), COMMANDS, &[]).is_ok());
        assert!(info(Some("register-device"), COMMANDS, &[]).is_err());
    }
}
