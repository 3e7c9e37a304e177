//! What the link does with a stanza the framer skipped for breaking a limit:
//! an iq request gets a `modify/policy-violation` error with its id, anything
//! else is only logged. Pure: the link sends what this decides.

use crate::stanza::{IqHeader, StanzaError};
use crate::xml::{parse_start_tag, Element, SkipReason};

/// The decision about one skipped stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Element name of the stanza (`iq`, `message`, ...), if its head was kept.
    pub name: Option<String>,
    /// Its sender, if known.
    pub from: Option<String>,
    /// The error reply, for an iq request.
    pub reply: Option<(IqHeader, Element)>,
}

/// Decides about a stanza of `size` bytes skipped for `why`; `head` is its
/// opening tag when kept, `max_stanza` the size limit, `jid` ours.
pub fn decide(
    head: Option<&[u8]>,
    why: SkipReason,
    size: usize,
    max_stanza: usize,
    jid: &str,
) -> Skipped {
    let Some(el) = head.and_then(|h| parse_start_tag(h).ok()) else {
        return Skipped {
            name: None,
            from: None,
            reply: None,
        };
    };
    let reply = IqHeader::of_request(&el).map(|h| {
        let text = match why {
            SkipReason::TooLarge => {
                format!("stanza too large ({size} bytes; this service accepts {max_stanza})")
            }
            SkipReason::TooDeep => format!(
                "elements nested too deeply (this service accepts {})",
                crate::xml::framer::MAX_DEPTH
            ),
            SkipReason::TooManyAttributes => format!(
                "too many attributes or namespace declarations (this service accepts {} \
                 attributes per element)",
                crate::xml::MAX_ATTRIBUTES
            ),
        };
        let stanza = h.error(jid, &StanzaError::policy_violation(text));
        (h, stanza)
    });
    Skipped {
        from: el.get_attr("from").map(str::to_owned),
        name: Some(el.name),
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iq_request_gets_policy_violation_with_its_id() {
        let d = decide(
            Some(b"<iq type='set' id='big1' from='u@example.com/r' to='push.example.org'>"),
            SkipReason::TooLarge,
            300_000,
            262_144,
            "push.example.org",
        );
        assert_eq!(d.from.as_deref(), Some("u@example.com/r"));
        let (h, reply) = d.reply.unwrap();
        assert_eq!(h.id, "big1");
        assert_eq!(
            reply.to_stanza_string(),
            "<iq type='error' from='push.example.org' to='u@example.com/r' id='big1'>\
             <error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>stanza too large \
             (300000 bytes; this service accepts 262144)</text></error></iq>"
        );
    }

    #[test]
    fn messages_results_and_unknown_heads_get_no_reply() {
        let none = |head: &[u8]| {
            decide(Some(head), SkipReason::TooDeep, 10, 10, "p")
                .reply
                .is_none()
        };
        assert!(none(b"<message from='a@b' id='m'>"));
        assert!(none(b"<iq type='result' id='r'>"));
        assert!(none(b"<iq xmlns='urn:x' type='get' id='r'>"));
        assert!(none(b"<iq type='get' id='x' a='unclosed>"));
        let d = decide(None, SkipReason::TooLarge, 10, 10, "p");
        assert_eq!((d.name, d.from, d.reply), (None, None, None));
        assert!(!none(b"<iq xmlns='jabber:client' type='get' id='c'>"));
    }
}
