//! Registration dialects: each client family registers and pushes in its
//! own way (docs/protocols.md sections 3 and 8). One module per dialect
//! parses its command, publish or message, calls the registration service
//! ([`crate::devices`]) or the push service ([`crate::pushes`]), and
//! builds its reply. What its app expects in the push itself is a payload
//! flavour that lives with the provider sending it
//! ([`crate::providers::Flavour`]); what a registration keeps for push
//! time is a [`crate::registrations::DialectRecord`].
//!
//! This module is the registry: which commands a component offers (from
//! its [`DialectSettings`]) and which dialect a command node belongs to.
//! Adding a dialect is one module, one arm in each match here, and its
//! settings in `config`.

pub mod conversations;
pub mod monal;
pub mod push2;
pub mod siskin;
pub mod unifiedpush;
pub mod v1;

use crate::config::{ComponentSettings, DialectSettings};
use crate::devices::Devices;
use crate::registrations::owner::{domain_of, owner_of};
use crate::stanza::{ErrorType, StanzaError, NS_COMMANDS};
use crate::xml::Element;

/// A parsed command of any dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// mod_push_appserver v1.
    V1(v1::CommandRequest),
    /// Conversations / p2.
    Conversations(conversations::Request),
    /// Siskin / Tigase.
    Siskin(siskin::Request),
}

/// The commands `component` offers, `(node, human name)`: v1 always, the
/// others as configured.
pub fn commands(component: &ComponentSettings) -> Vec<(&'static str, &'static str)> {
    let d = &component.dialects;
    let mut out = v1::COMMANDS.to_vec();
    out.extend(conversations::commands(&d.conversations));
    if d.siskin.is_some() {
        out.extend_from_slice(siskin::COMMANDS);
    }
    out
}

/// Extra disco#info features of the service: Siskin picks a push service
/// only when its provider id is among them.
pub fn features(dialects: &DialectSettings) -> Vec<String> {
    dialects
        .siskin
        .iter()
        .flat_map(|s| s.providers.keys().cloned())
        .collect()
}

/// Parses a `<command/>` for `component`; a node it does not offer is
/// `item-not-found`.
pub fn parse(cmd: &Element, component: &ComponentSettings) -> Result<Request, StanzaError> {
    let node = cmd.get_attr("node").unwrap_or_default();
    let d = &component.dialects;
    if let Some(c) = conversations::Command::from_node(node, &d.conversations) {
        return conversations::parse(c, cmd).map(Request::Conversations);
    }
    if let (Some(c), Some(_)) = (siskin::Command::from_node(node), &d.siskin) {
        return siskin::parse(c, cmd).map(Request::Siskin);
    }
    v1::parse(cmd).map(Request::V1)
}

/// Runs a parsed command for `from` and builds the `<command/>` reply.
pub async fn run(
    devices: &Devices,
    component: &ComponentSettings,
    from: &str,
    req: Request,
) -> Result<Element, StanzaError> {
    match req {
        Request::V1(r) => v1::run(devices, component, from, r).await,
        Request::Conversations(r) => conversations::run(devices, component, from, r).await,
        Request::Siskin(r) => siskin::run(devices, component, from, r).await,
    }
}

/// The session id to answer: the requester's, else a fresh one.
pub fn session_id(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:x}", fastrand::u64(..)))
}

/// A `<command/>` reply element.
pub fn command_el(node: &str, session_id: &str, status: &str) -> Element {
    Element::new("command", NS_COMMANDS)
        .attr("node", node)
        .attr("sessionid", session_id)
        .attr("status", status)
}

/// Whether a stateless push from `from` is served: any sender when
/// `allowed` is empty (`open_relay`), else only JIDs of the listed
/// domains. Without it anyone on the XMPP network could use this server
/// as a push relay.
fn sender_allowed(allowed: &[String], from: &str) -> Result<(), StanzaError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let sender = owner_of(from);
    match sender.as_deref().map(domain_of) {
        Some(d) if allowed.iter().any(|a| a == d) => Ok(()),
        _ => Err(not_served()),
    }
}

/// [`sender_allowed`] for a push only a server itself sends (Push 2.0:
/// mod_push2 sends from its bare domain), never one of its users.
fn server_allowed(allowed: &[String], from: &str) -> Result<(), StanzaError> {
    if from.contains(['@', '/']) {
        return Err(not_served());
    }
    sender_allowed(allowed, from)
}

fn not_served() -> StanzaError {
    StanzaError::new(
        ErrorType::Auth,
        "forbidden",
        "this push service does not serve your server",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_checked_by_domain_when_a_list_is_set() {
        assert!(sender_allowed(&[], "anyone@anywhere.example").is_ok());
        let list = vec!["example.com".to_owned()];
        for ok in ["example.com", "User@Example.com/res", "EXAMPLE.COM"] {
            assert!(sender_allowed(&list, ok).is_ok(), "{ok}");
        }
        for bad in [
            "evil.com",
            "u@sub.example.com",
            "",
            "example.com.evil.org",
            "u@evil.com/example.com",
        ] {
            let e = sender_allowed(&list, bad).unwrap_err();
            assert_eq!(
                (e.kind, e.condition),
                (ErrorType::Auth, "forbidden"),
                "{bad}"
            );
        }
    }
}
