//! Registration dialects: each client family registers in its own way and
//! expects its own payload (protocols.md sections 3 and 8). One module per
//! dialect parses its command, applies it through the registrations and
//! builds its reply, and builds the provider payload its app expects.
//!
//! This module is the registry: which commands a component offers (from
//! its [`DialectSettings`]), which dialect a command node belongs to, and
//! what a registration of each dialect keeps for push time
//! ([`DialectRecord`], turned into a [`DialectPush`] for the provider).
//! Adding a dialect is one module, one arm in each match here, and one
//! config value in `config/dialects.rs`.

pub mod conversations;
pub mod monal;
mod profiles;
pub mod push2;
pub mod siskin;
pub mod v1;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{ComponentSettings, DialectSettings, SiskinPayload};
use crate::core::{Core, RegisterError};
use crate::providers::Priority;
use crate::registrations::owner::short;
use crate::registrations::{check_field, RegError, Registered};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0050 namespace.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";

/// What a registration of a dialect keeps for push time, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "dialect", rename_all = "lowercase")]
pub enum DialectRecord {
    /// Conversations / p2.
    Conversations {
        /// `data.account` of the FCM message (see [`conversations::account`]).
        account: String,
        /// The channel of a `muc` registration: its service publishes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muc: Option<String>,
    },
    /// Siskin / Snikket iOS: the node is the credential, no secret.
    Siskin {
        /// The registering bare JID, `account` in the payload.
        account: String,
        /// The PushKit token (`device-second-token`) for VoIP pushes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voip_token: Option<String>,
    },
}

impl DialectRecord {
    /// Whether publishes to this registration carry no secret: the
    /// unguessable node alone authorises them.
    pub fn secretless(&self) -> bool {
        matches!(self, DialectRecord::Siskin { .. })
    }

    /// Who publishes besides the owner's server: a channel's service.
    pub fn publisher(&self) -> Option<&str> {
        match self {
            DialectRecord::Conversations { muc, .. } => muc.as_deref(),
            DialectRecord::Siskin { .. } => None,
        }
    }
}

/// A dialect's part of one push, for the provider's payload builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectPush {
    /// Conversations / p2: FCM `data.account`.
    Conversations {
        /// Lowercase hex SHA-1 of `bareJid \0 androidId`.
        account: String,
    },
    /// Siskin: custom top-level keys beside `aps`.
    Siskin {
        /// The registering bare JID.
        account: String,
        /// The PushKit token, where VoIP pushes go.
        voip_token: Option<String>,
        /// What the operator lets the payload carry.
        payload: SiskinPayload,
    },
}

impl DialectPush {
    /// The push part of `record` under `component`'s current settings (an
    /// operator's change applies to the next push, not only to new
    /// registrations).
    pub fn new(record: DialectRecord, component: Option<&ComponentSettings>) -> DialectPush {
        match record {
            DialectRecord::Conversations { account, .. } => DialectPush::Conversations { account },
            DialectRecord::Siskin {
                account,
                voip_token,
            } => DialectPush::Siskin {
                account,
                voip_token,
                payload: component
                    .and_then(|c| c.dialects.siskin.as_ref())
                    .map(|s| s.payload)
                    .unwrap_or_default(),
            },
        }
    }

    /// Whether a push of `priority` goes to a token other than the one the
    /// registration is stored under (Siskin's calls: the PushKit token).
    pub fn uses_second_token(&self, priority: Priority) -> bool {
        matches!(self, DialectPush::Siskin { voip_token: Some(_), .. } if priority == Priority::Voip)
    }

    /// The priority of a push of this dialect, given the profile's own
    /// decision and whether the XMPP server marked it a call.
    pub fn priority(&self, decided: Priority, voip_hint: bool) -> Priority {
        match self {
            DialectPush::Conversations { .. } => decided,
            // Siskin's extension runs only for an alert; calls go to the
            // PushKit token when there is one.
            DialectPush::Siskin { voip_token, .. } => {
                if voip_hint && voip_token.is_some() {
                    Priority::Voip
                } else {
                    Priority::High
                }
            }
        }
    }
}

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
    core: &Core,
    component: &ComponentSettings,
    from: &str,
    req: Request,
) -> Result<Element, StanzaError> {
    match req {
        Request::V1(r) => v1::run(core, component, from, r).await,
        Request::Conversations(r) => conversations::run(core, component, from, r).await,
        Request::Siskin(r) => siskin::run(core, component, from, r).await,
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

/// Where a dialect registration goes.
#[derive(Debug, Clone)]
pub enum NodeChoice {
    /// This node (derived from the device identity).
    Fixed(String),
    /// The node of the owner's registration with this token, else a fresh
    /// random one (Siskin: the node is the credential).
    ByToken,
}

/// Registers `from`'s device in `profile` through the store thread, with
/// the command rate and count limits of every XMPP registration.
pub async fn register(
    core: &Core,
    component: &ComponentSettings,
    from: &str,
    profile: &str,
    node: NodeChoice,
    token: &str,
    record: DialectRecord,
) -> Result<Registered, RegisterError> {
    check_field("token", token).map_err(RegisterError::Input)?;
    let owner = core.requester(from)?;
    let regs = Arc::clone(&core.registrations);
    let (jid, ty, tok, who) = (
        component.jid.clone(),
        profile.to_owned(),
        token.to_owned(),
        owner.clone(),
    );
    let now = core.clock.now();
    let r = core
        .store_thread
        .run(move || {
            let node = match node {
                NodeChoice::Fixed(n) => n,
                NodeChoice::ByToken => {
                    let mine = regs.lookup_token(&ty, &tok)?.into_iter().find(|r| {
                        r.component == jid
                            && r.owner.as_deref() == Some(who.as_str())
                            && r.dialect.as_ref().is_some_and(DialectRecord::secretless)
                    });
                    match mine {
                        Some(r) => r.node,
                        None => siskin::random_node().map_err(|e| {
                            RegError::Store(crate::registrations::StoreError::Key(e))
                        })?,
                    }
                }
            };
            regs.register_dialect(&jid, &ty, &who, &node, &tok, record, now)
        })
        .await
        .map_err(|e| match e {
            RegError::Store(e) => {
                log::error!("registration failed: {e}");
                RegisterError::Store(e)
            }
            RegError::Refused(r) => {
                log::info!("registration by {owner} refused: {}", RegError::Refused(r));
                RegisterError::Refused(r)
            }
        })?;
    log::info!(
        "registered node {} ({profile}) at {} for {owner}",
        short(&r.registration.node),
        component.jid
    );
    Ok(r)
}

/// Removes `from`'s registration at `node` in `profile`, if it is theirs.
pub async fn unregister(
    core: &Core,
    component: &ComponentSettings,
    from: &str,
    profile: &str,
    node: &str,
) -> Result<Registered, RegisterError> {
    let owner = core.requester(from)?;
    let regs = Arc::clone(&core.registrations);
    let (jid, ty, n, who) = (
        component.jid.clone(),
        profile.to_owned(),
        node.to_owned(),
        owner.clone(),
    );
    let r = core
        .store_thread
        .run(move || regs.unregister_owned(&jid, &ty, &who, &n))
        .await
        .map_err(|e| {
            log::error!("unregistration failed: {e}");
            RegisterError::Store(e)
        })?
        .ok_or(RegisterError::NotFound)?;
    log::info!(
        "unregistered node {} ({profile}) at {} for {owner}",
        short(node),
        component.jid
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_records_have_none() {
        let r = DialectRecord::Siskin {
            account: "a@b".into(),
            voip_token: None,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"dialect":"siskin","account":"a@b"}"#);
        assert_eq!(serde_json::from_str::<DialectRecord>(&j).unwrap(), r);
        assert!(r.secretless());
        let c = DialectRecord::Conversations {
            account: "ab".into(),
            muc: None,
        };
        assert!(!c.secretless());
        assert_eq!(c.publisher(), None);
        // Records written without `muc` read back.
        let old: DialectRecord =
            serde_json::from_str(r#"{"dialect":"conversations","account":"ab"}"#).unwrap();
        assert_eq!(old, c);
        let channel = DialectRecord::Conversations {
            account: "ab".into(),
            muc: Some("room@conference.example.org".into()),
        };
        assert_eq!(channel.publisher(), Some("room@conference.example.org"));
    }

    #[test]
    fn siskin_pushes_are_alerts_or_voip_with_a_pushkit_token() {
        let p = |voip: Option<&str>| DialectPush::Siskin {
            account: "a@b".into(),
            voip_token: voip.map(str::to_owned),
            payload: SiskinPayload::default(),
        };
        assert_eq!(p(None).priority(Priority::Silent, false), Priority::High);
        assert_eq!(p(None).priority(Priority::Silent, true), Priority::High);
        assert_eq!(p(Some("ab")).priority(Priority::High, true), Priority::Voip);
        assert!(p(Some("ab")).uses_second_token(Priority::Voip));
        assert!(!p(Some("ab")).uses_second_token(Priority::High));
        assert!(!p(None).uses_second_token(Priority::Voip));
        let c = DialectPush::Conversations {
            account: "x".into(),
        };
        assert_eq!(c.priority(Priority::Silent, true), Priority::Silent);
    }
}
