//! Parsing and validating a XEP-0357 publish (docs/protocols.md section 2).

use super::forms::Form;
use crate::providers::{Encrypted, Summary};
use crate::text::cut;
use crate::xml::{Element, NS_DATA};

/// Pubsub namespace.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0357 namespace.
pub const NS_PUSH: &str = "urn:xmpp:push:0";
const NS_ENCRYPT: &str = "tigase:push:encrypt:0";
const NS_TIGASE_PRIORITY: &str = "tigase:push:priority:0";
const NS_TIGASE_JINGLE: &str = "tigase:push:jingle:0";
const SUMMARY_FORM: &str = "urn:xmpp:push:summary";
const PUBLISH_OPTIONS_FORM: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Longest summary text kept (sender, body), in bytes: no provider
/// carries more than 4 KiB, and a push held by the throttle keeps its
/// summary until it is sent.
pub const MAX_SUMMARY_TEXT: usize = 4096;
/// Longest encrypted payload (base64) forwarded: what fits the 4 KiB a
/// provider carries (Siskin's `max-payload-size` of 3072 bytes encodes to
/// 4096).
pub const MAX_ENCRYPTED: usize = 4096;

/// A valid push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The node (device id).
    pub node: String,
    /// The secret from publish-options; `None` when the publish carries
    /// none (Siskin's registrations need none: the node is the credential).
    pub secret: Option<String>,
    /// Summary fields (all optional).
    pub summary: Summary,
    /// Encrypted payload to forward.
    pub encrypted: Option<Encrypted>,
    /// Tigase asked for high priority.
    pub high_hint: bool,
    /// A call: Tigase's `<jingle xmlns='tigase:push:jingle:0'/>`, or an
    /// `<encrypted type='voip'/>`.
    pub voip_hint: bool,
}

/// Parses the `<pubsub/>` child of an iq set. The error string says what is
/// malformed (answered as `modify/bad-request`).
pub fn parse(pubsub: &Element) -> Result<PublishRequest, String> {
    let mut publishes = pubsub.children_named("publish", NS_PUBSUB);
    let publish = publishes
        .next()
        .ok_or("pubsub request without a <publish/> element")?;
    if publishes.next().is_some() {
        return Err("more than one <publish/> element".into());
    }
    let node = publish
        .get_attr("node")
        .filter(|n| !n.is_empty())
        .ok_or("publish without a node")?;
    crate::registrations::check_field("node", node).map_err(|e| e.to_string())?;
    let mut items = publish.children_named("item", NS_PUBSUB);
    let item = items.next().ok_or("publish without an <item/>")?;
    if items.next().is_some() {
        return Err("publish with more than one <item/>".into());
    }
    let notification = item
        .get_child("notification", NS_PUSH)
        .ok_or("item without a urn:xmpp:push:0 <notification/>")?;

    let mut summary = Summary::default();
    for x in notification.children_named("x", NS_DATA) {
        let form = Form::parse(x);
        if form.form_type() != Some(SUMMARY_FORM) {
            continue; // unknown forms are ignored, as XEP-0357 allows
        }
        summary.message_count = count(&form, "message-count")?;
        summary.pending_subscription_count = count(&form, "pending-subscription-count")?;
        let text = |var| form.value(var).map(|v| cut(v, MAX_SUMMARY_TEXT).to_owned());
        summary.last_message_sender = text("last-message-sender");
        summary.last_message_body = text("last-message-body");
    }
    let encrypted = match notification.get_child("encrypted", NS_ENCRYPT) {
        Some(e) => Some(Encrypted {
            iv: e
                .get_attr("iv")
                .filter(|v| !v.is_empty() && v.len() <= 64)
                .ok_or("<encrypted/> without an iv of at most 64 bytes")?
                .to_owned(),
            payload: {
                let p = e.text_content();
                let p = p.trim();
                if p.is_empty() {
                    return Err("<encrypted/> without a payload".into());
                }
                if p.len() > MAX_ENCRYPTED {
                    return Err(format!(
                        "<encrypted/> payload over {MAX_ENCRYPTED} bytes, more than a provider carries"
                    ));
                }
                p.to_owned()
            },
            kind: e.get_attr("type").map(str::to_owned),
        }),
        None => None,
    };
    let high_hint = notification
        .get_child("priority", NS_TIGASE_PRIORITY)
        .is_some_and(|p| p.text_content().trim() == "high");

    let voip_hint = notification.get_child("jingle", NS_TIGASE_JINGLE).is_some()
        || encrypted
            .as_ref()
            .is_some_and(|e| e.kind.as_deref() == Some("voip"));

    // Without publish-options there is no secret: only registrations whose
    // dialect needs none accept that (checked by the push service).
    let secret = match pubsub.get_child("publish-options", NS_PUBSUB) {
        None => None,
        Some(options) => {
            let form = options
                .get_child("x", NS_DATA)
                .map(Form::parse)
                .ok_or("publish-options without a data form")?;
            if form.form_type() != Some(PUBLISH_OPTIONS_FORM) {
                return Err(format!(
                    "publish-options FORM_TYPE must be {PUBLISH_OPTIONS_FORM}"
                ));
            }
            form.value("secret").map(str::to_owned)
        }
    };
    Ok(PublishRequest {
        node: node.to_owned(),
        secret,
        summary,
        encrypted,
        high_hint,
        voip_hint,
    })
}

fn count(form: &Form, var: &str) -> Result<Option<u64>, String> {
    match form.value(var) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("summary field {var} is not a number: {}", super::quoted(v))),
    }
}

#[cfg(test)]
mod tests;
