//! The dialect of Conversations and Snikket Android, as p2 serves it:
//! `register-push-fcm` / `register-push-apns` with `token`, `android-id`
//! (p2 reads `device-id` first) and optional `muc`; `unregister-push-*`
//! with the device id, and for a channel its `muc` (p2) or its `channel`
//! hash (Conversations). The device is (requester's bare JID, android-id),
//! or the channel's hash for a channel, so registering again returns the
//! same node and secret and updates the token. The FCM message carries
//! `data.account`, which tells the app which account to wake, and for a
//! channel `data.channel`, which channel.

use ring::digest;

use crate::config::{ComponentSettings, ConversationsSettings};
use crate::devices::{Devices, NodeChoice, OwnedRegistration, PushType, RegisterError};
use crate::registrations::owner::owner_of;
use crate::registrations::{check_field, hex, DialectRecord};
use crate::stanza::forms::{self, Form};
use crate::stanza::StanzaError;
use crate::xml::{Element, NS_DATA};

/// The provider a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-fcm`.
    Fcm,
    /// `-apns`.
    Apns,
}

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `register-push-<kind>`.
    Register(Kind),
    /// `unregister-push-<kind>`.
    Unregister(Kind),
}

const NODES: [(&str, Command, &str); 4] = [
    (
        "register-push-fcm",
        Command::Register(Kind::Fcm),
        "Register an Android device (FCM)",
    ),
    (
        "unregister-push-fcm",
        Command::Unregister(Kind::Fcm),
        "Unregister an Android device (FCM)",
    ),
    (
        "register-push-apns",
        Command::Register(Kind::Apns),
        "Register a device (APNS)",
    ),
    (
        "unregister-push-apns",
        Command::Unregister(Kind::Apns),
        "Unregister a device (APNS)",
    ),
];

fn profile(kind: Kind, s: &ConversationsSettings) -> Option<&str> {
    match kind {
        Kind::Fcm => s.fcm.as_deref(),
        Kind::Apns => s.apns.as_deref(),
    }
}

impl Command {
    /// The command named by `node` (matched case-insensitively, as p2
    /// does), if its provider is configured.
    pub fn from_node(node: &str, s: &ConversationsSettings) -> Option<Command> {
        NODES
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(node))
            .map(|&(_, c, _)| c)
            .filter(|c| profile(c.kind(), s).is_some())
    }

    fn kind(self) -> Kind {
        match self {
            Command::Register(k) | Command::Unregister(k) => k,
        }
    }

    fn node(self) -> &'static str {
        NODES
            .iter()
            .find(|(_, c, _)| *c == self)
            .map_or("", |(n, _, _)| n)
    }
}

/// The commands offered under these settings.
pub fn commands(s: &ConversationsSettings) -> Vec<(&'static str, &'static str)> {
    NODES
        .iter()
        .filter(|(_, c, _)| profile(c.kind(), s).is_some())
        .map(|&(n, _, name)| (n, name))
        .collect()
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
    /// `device-id`, else `android-id`.
    pub android_id: String,
    /// `token` (register only).
    pub token: Option<String>,
    /// `muc`: a channel's registration.
    pub muc: Option<String>,
    /// `channel` (unregister only): the channel's hash, as the app got it
    /// in `data.channel`; names the channel as `muc` does.
    pub channel: Option<String>,
}

/// Parses the command's form.
pub fn parse(command: Command, cmd: &Element) -> Result<Request, StanzaError> {
    let session_id = cmd.get_attr("sessionid").map(str::to_owned);
    let cancel = cmd.get_attr("action") == Some("cancel");
    let form = cmd.get_child("x", NS_DATA).map(Form::parse);
    let value = |name: &'static str| form.as_ref().and_then(|f| f.value(name));
    let checked = |name: &'static str, v: Option<&str>| -> Result<String, StanzaError> {
        let v = v.unwrap_or_default();
        check_field(name, v).map_err(|e| StanzaError::bad_request(e.to_string()))?;
        Ok(v.to_owned())
    };
    if cancel {
        return Ok(Request {
            command,
            session_id,
            cancel,
            android_id: String::new(),
            token: None,
            muc: None,
            channel: None,
        });
    }
    let android_id = checked(
        "android-id",
        value("device-id")
            .filter(|v| !v.is_empty())
            .or(value("android-id")),
    )?;
    let token = match command {
        Command::Register(_) => Some(checked("token", value("token"))?),
        Command::Unregister(_) => None,
    };
    let muc = match value("muc").filter(|m| !m.is_empty()) {
        // A bare JID: its domain is what may publish to the registration.
        Some(m) => Some(
            owner_of(&checked("muc", Some(m))?)
                .filter(|j| !j.contains('/') && j.as_str() == m.to_lowercase())
                .ok_or_else(|| StanzaError::bad_request("muc is not a bare JID"))?,
        ),
        None => None,
    };
    let channel = match (command, value("channel").filter(|c| !c.is_empty())) {
        (Command::Unregister(_), Some(c)) => {
            let hash = c.to_ascii_lowercase();
            if hash.len() != 40 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(StanzaError::bad_request("channel is not a channel's hash"));
            }
            Some(hash)
        }
        _ => None,
    };
    Ok(Request {
        command,
        session_id,
        cancel,
        android_id,
        token,
        muc,
        channel,
    })
}

/// `data.account`: lowercase hex SHA-1 of UTF-8 `jid \0 android_id`, where
/// `jid` is the account's bare JID (or the channel's, for `muc`).
pub fn account(jid: &str, android_id: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(jid.as_bytes());
    ctx.update(b"\0");
    ctx.update(android_id.as_bytes());
    hex(ctx.finish().as_ref())
}

/// The device id under which the node is derived: the channel and the
/// account are separate devices, as in p2. A channel's is named by its
/// hash, which both `muc` (at registration) and `channel` (at
/// unregistration, where only the hash is known) give.
fn device(req: &Request) -> String {
    let channel = req
        .channel
        .clone()
        .or_else(|| req.muc.as_deref().map(|m| account(m, &req.android_id)));
    match channel {
        Some(hash) => format!("p2\0channel\0{hash}"),
        None => format!("p2\0{}", req.android_id),
    }
}

/// The device id a channel's registration had before it was named by its
/// hash (so that it can be unregistered by `channel`).
fn legacy_channel_device(req: &Request) -> Option<String> {
    req.muc
        .as_deref()
        .map(|m| format!("p2\0muc\0{m}\0{}", req.android_id))
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
    let profile = profile(req.command.kind(), &component.dialects.conversations)
        .ok_or_else(|| StanzaError::item_not_found("command not offered"))?;
    if owner_of(from).is_none() {
        return Err(RegisterError::NoRequester.to_stanza_error());
    }
    let device = device(&req);
    match req.command {
        Command::Register(_) => {
            // The bare JID as the account knows it, not lowercased: the
            // app hashes its own JID string.
            let bare = from.split('/').next().unwrap_or_default();
            // As p2: `account` names the account, `channel` the channel.
            let record = DialectRecord::Conversations {
                account: account(bare, &req.android_id),
                muc: req.muc.clone(),
                channel: req.muc.as_deref().map(|m| account(m, &req.android_id)),
            };
            let token = req.token.as_deref().unwrap_or_default();
            let req = OwnedRegistration {
                push_type: PushType::Dialect(profile),
                node: NodeChoice::Derived(device),
                token,
                record: Some(record),
                replaces: legacy_channel_device(&req),
            };
            let r = devices
                .register_owned(component, from, req)
                .await
                .map_err(|e| e.to_stanza_error())?;
            Ok(completed(
                node_name,
                &session,
                &component.jid,
                &r.registration.node,
                &r.secret,
            ))
        }
        Command::Unregister(_) => {
            let ty = PushType::Dialect(profile);
            let mut gone = devices.unregister_owned(component, from, ty, &device).await;
            // A channel registered before channels were named by their hash.
            if let (Err(RegisterError::NotFound), Some(legacy)) =
                (&gone, legacy_channel_device(&req))
            {
                gone = devices.unregister_owned(component, from, ty, &legacy).await;
            }
            gone.map_err(|e| e.to_stanza_error())?;
            Ok(super::command_el(node_name, &session, "completed"))
        }
    }
}

/// The register reply: `status='completed'` with `jid`, `node`, `secret`.
pub fn completed(command: &str, session: &str, jid: &str, node: &str, secret: &str) -> Element {
    super::command_el(command, session, "completed").child(forms::build(
        "form",
        None,
        &[
            ("jid-single", "jid", jid),
            ("text-single", "node", node),
            ("text-single", "secret", secret),
        ],
    ))
}

#[cfg(test)]
mod tests;
