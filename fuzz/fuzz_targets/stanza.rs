//! One stanza as the link hands it on: parsed, routed, validated by the
//! publish or command parser (every registration dialect), and answered. The reply is built the way the
//! link builds it; it must serialize to XML that parses back to the same
//! addressing, and stay bounded in size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use push_appserver::dialects::push2;
use push_appserver::registrations::owner::{derive_node, may_publish, owner_of};
use push_appserver::config::ConversationsSettings;
use push_appserver::dialects::v1::{self as commands, Step};
use push_appserver::dialects::{conversations, siskin};
use push_appserver::router::{route, Route};
use push_appserver::stanza::{disco, publish, IqHeader, StanzaError};
use push_appserver::xml::{parse_element, Element, NS_COMPONENT};

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

const JID: &str = "push.example.org";

fuzz_target!(|data: &[u8]| {
    let Ok(stanza) = parse_element(data) else {
        return;
    };
    let header = IqHeader::of_request(&stanza);
    let route = route(&stanza);
    if let Route::Push2(n) = route {
        push2_check(&stanza, n, data.len());
        return;
    }
    // The link answers exactly the iq requests: every routed stanza but
    // the ignored ones (and Push 2.0 messages, answered only on failure).
    assert_eq!(header.is_some(), route != Route::Ignore, "{route:?}");
    let Some(header) = header else {
        return;
    };
    let answer = match route {
        Route::Ping => Ok(None),
        Route::DiscoInfo(node) => {
            disco::info(node, commands::COMMANDS, &["tigase:messenger:apns:1".into()]).map(Some)
        }
        Route::DiscoItems(node) => disco::items(JID, node, commands::COMMANDS).map(Some),
        Route::Command(cmd) => command(cmd),
        Route::Publish(pubsub) => publish_check(&header.from, pubsub),
        Route::Unsupported => Err(StanzaError::service_unavailable()),
        Route::Malformed(why) => Err(StanzaError::bad_request(why)),
        Route::Ignore | Route::Push2(_) => unreachable!("checked above"),
    };
    let reply = match &answer {
        Ok(payload) => header.result(JID, payload.clone()),
        Err(e) => header.error(JID, e),
    };
    check_reply(&header, &reply, data.len());
});

fn command(cmd: &Element) -> Result<Option<Element>, StanzaError> {
    let node = cmd.get_attr("node").unwrap_or_default();
    let both = ConversationsSettings {
        fcm: Some("fcm".into()),
        apns: Some("apns".into()),
    };
    if let Some(c) = conversations::Command::from_node(node, &both) {
        let req = conversations::parse(c, cmd)?;
        let session = req.session_id.as_deref().unwrap_or("fuzz-session");
        let derived = derive_node(JID, "user@example.com", &req.android_id);
        return Ok(Some(conversations::completed(
            node, session, JID, &derived, "secret",
        )));
    }
    if let Some(c) = siskin::Command::from_node(node) {
        let req = siskin::parse(c, cmd)?;
        let session = req.session_id.as_deref().unwrap_or("fuzz-session");
        assert!(req.cancel || req.device_token.bytes().all(|b| b.is_ascii_hexdigit()));
        return Ok(Some(siskin::completed(session, &req.device_token, true)));
    }
    let req = commands::parse(cmd)?;
    let session = req.session_id.as_deref().unwrap_or("fuzz-session");
    Ok(Some(match req.step {
        Step::Cancel => commands::canceled(req.command, session),
        Step::ShowForm => {
            commands::form_to_fill(req.command, session, &["apns".into(), "fcm".into()])
        }
        Step::Execute { node, .. } => {
            let owner = owner_of("user@example.com/res").unwrap_or_default();
            let derived = derive_node(JID, &owner, &node);
            commands::completed(req.command, session, JID, &derived, "secret")
        }
    }))
}

fn publish_check(from: &str, pubsub: &Element) -> Result<Option<Element>, StanzaError> {
    let req = publish::parse(pubsub).map_err(StanzaError::bad_request)?;
    assert!(!req.node.is_empty() && req.secret.as_deref() != Some(""));
    // The owner of whatever the sender registered may always publish.
    if let Some(owner) = owner_of(from) {
        assert!(
            may_publish(&owner, Some(from)),
            "{from:?} may not publish to {owner:?}"
        );
    }
    Ok(None)
}

/// A Push 2.0 notification: parsed and routed without panicking; its
/// error message parses back, addressed to the sender with its id.
fn push2_check(stanza: &Element, n: &Element, input_len: usize) {
    let from = IqHeader::of(stanza);
    let err = match push2::parse(n) {
        Ok(n) => match push2::target(&n.client) {
            Ok(_) => return,
            Err(why) => StanzaError::item_not_found(why),
        },
        Err(why) => StanzaError::bad_request(why),
    };
    let out = push2::error_message(JID, &from.from, &from.id, &err).to_stanza_string();
    assert!(out.len() <= 6 * input_len + 4096, "{out}");
    let back = match parse_element(out.as_bytes()) {
        Ok(back) => back,
        Err(e) => panic!("error message does not parse ({e}): {out}"),
    };
    assert!(back.is("message", NS_COMPONENT));
    assert_eq!(back.get_attr("type"), Some("error"));
    let id = Some(from.id.as_str()).filter(|i| !i.is_empty());
    assert_eq!(back.get_attr("id"), id, "{out}");
}

/// The reply parses back as an iq from us, to the sender, with its id, and
/// its size is linear in the request's (escaping grows a byte at most 6x).
fn check_reply(header: &IqHeader, reply: &Element, input_len: usize) {
    let out = reply.to_stanza_string();
    assert!(
        out.len() <= 6 * input_len + 4096,
        "reply of {} bytes for {input_len}",
        out.len()
    );
    let back = match parse_element(out.as_bytes()) {
        Ok(back) => back,
        Err(e) => panic!("reply does not parse ({e}): {out}"),
    };
    assert!(back.is("iq", NS_COMPONENT));
    assert_eq!(back.get_attr("id"), Some(header.id.as_str()), "{out}");
    assert_eq!(back.get_attr("from"), Some(JID));
    let to = Some(header.from.as_str()).filter(|f| !f.is_empty());
    assert_eq!(back.get_attr("to"), to, "{out}");
}
