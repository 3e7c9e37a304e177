//! The dialect of Siskin and Snikket iOS, as the Tigase push component
//! serves it: `register-device` (sent without an `action`) with
//! `provider`, `device-token` and optional `device-second-token` (the
//! PushKit token); `unregister-device` with `provider` and `device-token`.
//! The client sends no secret, so the node is the credential: random, 128
//! bits. The APNS payload carries custom keys beside `aps`.

use crate::config::ComponentSettings;
use crate::devices::{Devices, NodeChoice, OwnedRegistration, PushType};
use crate::registrations::owner::owner_of;
use crate::registrations::{check_field, DialectRecord};
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

/// Runs a command for `from`.
pub async fn run(
    devices: &Devices,
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
        StanzaError::bad_request(format!(
            "provider {} is not served here",
            crate::stanza::quoted(&req.provider)
        ))
    })?;
    let owner = owner_of(from).ok_or_else(|| StanzaError::bad_request("no sender JID"))?;
    match req.command {
        Command::Register => {
            let record = DialectRecord::Siskin {
                account: owner,
                voip_token: req.second_token.clone(),
            };
            let reg = OwnedRegistration {
                push_type: PushType::Dialect(profile),
                node: NodeChoice::ByToken,
                token: &req.device_token,
                record: Some(record),
                replaces: None,
            };
            let r = devices
                .register_owned(component, from, reg)
                .await
                .map_err(|e| e.to_stanza_error())?;
            Ok(completed(
                &session,
                &r.registration.node,
                settings.payload.encrypted,
            ))
        }
        Command::Unregister => {
            let node = devices
                .find_owned_by_token(component, from, profile, &req.device_token)
                .await
                .map_err(|e| e.to_stanza_error())?
                .ok_or_else(|| StanzaError::item_not_found("device not registered"))?;
            devices
                .unregister_owned(component, from, PushType::Dialect(profile), &node)
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

#[cfg(test)]
mod tests;
