//! The dialect of Siskin and Snikket iOS, as the Tigase push component
//! serves it: `register-device` (sent without an `action`) with
//! `provider`, `device-token` and optional `device-second-token` (the
//! PushKit token); `unregister-device` with `provider` and `device-token`.
//! The client sends no secret, so the node is the credential: random, 128
//! bits. The APNS payload carries custom keys beside `aps`.

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

use super::{DialectRecord, NodeChoice};
use crate::config::{ComponentSettings, SiskinPayload};
use crate::core::Core;
use crate::providers::apns::settings::AlertText;
use crate::providers::{Priority, Push};
use crate::registrations::owner::owner_of;
use crate::registrations::{check_field, hex, KeyError};
use crate::stanza::forms::Form;
use crate::stanza::StanzaError;
use crate::xml::{Element, NS_DATA};

/// The commands, `(node, human name)`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("register-device", "Register a device (Siskin)"),
    ("unregister-device", "Unregister a device (Siskin)"),
];

/// Advertised in the reply's `features` when encrypted pushes are
/// forwarded: Siskin encrypts only then.
pub const NS_ENCRYPT: &str = "tigase:push:encrypt:0";

/// `max-payload-size` answered: what an encrypted push may take so that
/// the APNS payload around it stays under Apple's 4096 bytes.
pub const MAX_PAYLOAD_SIZE: usize = 3072;

/// Bytes of randomness in a node (128 bits: the node is the credential).
const NODE_BYTES: usize = 16;

/// Longest summary text copied into a payload, in bytes.
const MAX_TEXT: usize = 1024;

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `register-device`.
    Register,
    /// `unregister-device`.
    Unregister,
}

impl Command {
    /// The command named by `node`.
    pub fn from_node(node: &str) -> Option<Command> {
        match node {
            "register-device" => Some(Command::Register),
            "unregister-device" => Some(Command::Unregister),
            _ => None,
        }
    }

    fn node(self) -> &'static str {
        match self {
            Command::Register => "register-device",
            Command::Unregister => "unregister-device",
        }
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which command.
    pub command: Command,
    /// Session id to echo.
    pub session_id: Option<String>,
    /// The requester cancelled.
    pub cancel: bool,
    /// `provider`, e.g. `tigase:messenger:apns:1`.
    pub provider: String,
    /// `device-token` (APNS, hex).
    pub device_token: String,
    /// `device-second-token` (PushKit, hex).
    pub second_token: Option<String>,
}

/// Parses the command's form (the command has no `action`: execute).
pub fn parse(command: Command, cmd: &Element) -> Result<Request, StanzaError> {
    let session_id = cmd.get_attr("sessionid").map(str::to_owned);
    if cmd.get_attr("action") == Some("cancel") {
        return Ok(Request {
            command,
            session_id,
            cancel: true,
            provider: String::new(),
            device_token: String::new(),
            second_token: None,
        });
    }
    let form = cmd.get_child("x", NS_DATA).map(Form::parse);
    let value = |name: &str| form.as_ref().and_then(|f| f.value(name));
    let field = |name: &'static str| -> Result<String, StanzaError> {
        let v = value(name).unwrap_or_default();
        check_field(name, v).map_err(|e| StanzaError::bad_request(e.to_string()))?;
        Ok(v.to_owned())
    };
    let provider = field("provider")?;
    let device_token = apns_token("device-token", &field("device-token")?)?;
    let second_token = match (command, value("device-second-token")) {
        (Command::Register, Some(t)) if !t.is_empty() => {
            Some(apns_token("device-second-token", t)?)
        }
        _ => None,
    };
    Ok(Request {
        command,
        session_id,
        cancel: false,
        provider,
        device_token,
        second_token,
    })
}

/// An APNS token as Apple takes it: hex, lowercased (Siskin sends the
/// device token in upper case and the PushKit token in lower case).
fn apns_token(name: &str, t: &str) -> Result<String, StanzaError> {
    if t.is_empty() || t.len() > 200 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StanzaError::bad_request(format!(
            "{name} is not a hexadecimal APNS token"
        )));
    }
    Ok(t.to_ascii_lowercase())
}

/// A fresh random node: 128 bits, lowercase hex.
pub fn random_node() -> Result<String, KeyError> {
    let mut b = [0u8; NODE_BYTES];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KeyError::Random)?;
    Ok(hex(&b))
}

/// Runs a command for `from`.
pub async fn run(
    core: &Core,
    component: &ComponentSettings,
    from: &str,
    req: Request,
) -> Result<Element, StanzaError> {
    let session = super::session_id(req.session_id.as_deref());
    let node_name = req.command.node();
    if req.cancel {
        return Ok(super::command_el(node_name, &session, "canceled"));
    }
    let Some(settings) = &component.dialects.siskin else {
        return Err(StanzaError::item_not_found("command not offered"));
    };
    // An unknown provider id is the operator's to add: the app can do
    // nothing about it, so no error that reads as "device gone".
    let profile = settings.providers.get(&req.provider).ok_or_else(|| {
        StanzaError::bad_request(format!("provider {:?} is not served here", req.provider))
    })?;
    let owner = owner_of(from).ok_or_else(|| StanzaError::bad_request("no sender JID"))?;
    match req.command {
        Command::Register => {
            let record = DialectRecord::Siskin {
                account: owner,
                voip_token: req.second_token.clone(),
            };
            let r = super::register(
                core,
                component,
                from,
                profile,
                NodeChoice::ByToken,
                &req.device_token,
                record,
            )
            .await
            .map_err(|e| e.to_stanza_error())?;
            Ok(completed(
                &session,
                &r.registration.node,
                settings.payload.encrypted,
            ))
        }
        Command::Unregister => {
            let regs = &core.registrations;
            let node = regs
                .lookup_token(profile, &req.device_token)
                .map_err(|_| StanzaError::internal("registration store unavailable"))?
                .into_iter()
                .find(|r| r.component == component.jid && r.owner.as_deref() == Some(&owner))
                .map(|r| r.node)
                .ok_or_else(|| StanzaError::item_not_found("device not registered"))?;
            super::unregister(core, component, from, profile, &node)
                .await
                .map_err(|e| e.to_stanza_error())?;
            Ok(super::command_el(node_name, &session, "completed"))
        }
    }
}

/// The `register-device` reply: a form with a `type`, `node`,
/// `features` (exactly `text-multi`: older Siskin accepts nothing else)
/// and `max-payload-size`.
pub fn completed(session: &str, node: &str, encrypted: bool) -> Element {
    let field = |var: &str, ty: &str| {
        Element::new("field", NS_DATA)
            .attr("var", var)
            .attr("type", ty)
    };
    let value = |v: &str| Element::new("value", NS_DATA).text(v);
    let mut features = field("features", "text-multi");
    if encrypted {
        features = features.child(value(NS_ENCRYPT));
    }
    let x = Element::new("x", NS_DATA)
        .attr("type", "result")
        .child(field("node", "text-single").child(value(node)))
        .child(features)
        .child(
            field("max-payload-size", "text-single").child(value(&MAX_PAYLOAD_SIZE.to_string())),
        );
    super::command_el("register-device", session, "completed").child(x)
}

/// The APNS device token of a Siskin push: the PushKit token for a call.
pub fn apns_device_token<'a>(push: &'a Push, voip_token: Option<&'a str>) -> &'a str {
    match (push.priority, voip_token) {
        (Priority::Voip, Some(t)) => t,
        _ => &push.token,
    }
}

/// The APNS payload of a Siskin push: `aps` with an alert and
/// `mutable-content: 1` (so the Notification Service Extension runs; a
/// call carries an empty `aps`), and beside it `account` and what the
/// operator allows.
pub fn apns_payload(push: &Push, account: &str, allow: SiskinPayload, alert: &AlertText) -> Value {
    let mut v = if push.priority == Priority::Voip {
        json!({ "aps": {} })
    } else {
        let mut a = json!({ "body": alert.body });
        if let Some(t) = &alert.title {
            a["title"] = json!(t);
        }
        let mut aps = json!({ "alert": a, "mutable-content": 1 });
        if let Some(sound) = &alert.sound {
            aps["sound"] = json!(sound);
        }
        json!({ "aps": aps })
    };
    v["account"] = json!(account);
    let s = &push.summary;
    if allow.sender {
        if let Some(sender) = &s.last_message_sender {
            v["sender"] = json!(cut(sender));
            // The summary has no nickname: the sender's localpart stands in.
            let nick = sender.split(['@', '/']).next().unwrap_or_default();
            if !nick.is_empty() {
                v["nickname"] = json!(cut(nick));
            }
        }
    }
    if allow.body {
        if let Some(body) = &s.last_message_body {
            v["body"] = json!(cut(body));
        }
    }
    if allow.count {
        if let Some(n) = s.message_count {
            v["unread-messages"] = json!(n);
        }
    }
    if allow.encrypted {
        if let Some(e) = &push.encrypted {
            v["encrypted"] = json!(e.payload);
            v["iv"] = json!(e.iv);
        }
    }
    v
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[path = "siskin_tests.rs"]
mod tests;
