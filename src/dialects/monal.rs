//! Monal and Quicksy iOS (fpush's dialect): no registration and no secret.
//! The publish node is the device's APNS token and the client's enable
//! form, copied into publish-options, names its `pushModule`
//! (`monalProdiOS`, `monalProdCatalyst`, `quicksyProdiOS`, ..., with a
//! `-sandbox` suffix for development builds). The operator maps modules to
//! app profiles; the payload is an alert with `mutable-content` so Monal's
//! notification extension runs and fetches the messages itself.
//!
//! Its settings are `[component.monal]` ([`MonalSettings`]).

use std::sync::Arc;

use super::sender_allowed;
use crate::config::{valid_module, MonalSettings};
use crate::providers::apns::payload::CustomApns;
use crate::providers::{Flavour, Priority, Push, Summary};
use crate::pushes::{PushService, Target};
use crate::registrations::owner::short;
use crate::stanza::forms::Form;
use crate::stanza::publish::NS_PUBSUB;
use crate::stanza::StanzaError;
use crate::xml::{Element, NS_DATA};

/// Shortest APNS token accepted, in hex digits (tokens are 32 bytes today).
const MIN_TOKEN_HEX: usize = 64;
/// Longest APNS token accepted, in hex digits (Apple says they may grow).
const MAX_TOKEN_HEX: usize = 200;

/// A Monal push: the device token and its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonalRequest {
    /// APNS token, lowercase hex.
    pub token: String,
    /// `pushModule` from publish-options.
    pub module: String,
}

/// The `pushModule` of a publish, if its publish-options carry one: then
/// the publish is Monal's, whatever else it holds.
pub fn push_module(pubsub: &Element) -> Option<String> {
    let x = pubsub
        .get_child("publish-options", NS_PUBSUB)?
        .get_child("x", NS_DATA)?;
    Form::parse(x).value("pushModule").map(str::to_owned)
}

/// Parses a Monal publish. `Err` carries the error to answer: a token that
/// cannot be an APNS token is final (`cancel/item-not-found`), since no
/// retry could ever deliver it.
pub fn parse(pubsub: &Element) -> Result<MonalRequest, StanzaError> {
    let module = push_module(pubsub)
        .ok_or_else(|| StanzaError::bad_request("publish-options without pushModule"))?;
    if !valid_module(&module) {
        return Err(StanzaError::bad_request("pushModule is not a module name"));
    }
    let mut publishes = pubsub.children_named("publish", NS_PUBSUB);
    let node = match (publishes.next(), publishes.next()) {
        (Some(p), None) => p.get_attr("node").unwrap_or_default(),
        _ => return Err(StanzaError::bad_request("expected exactly one <publish/>")),
    };
    if node.len() < MIN_TOKEN_HEX
        || node.len() > MAX_TOKEN_HEX
        || node.len() % 2 != 0
        || !node.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(StanzaError::item_not_found(
            "the node is not a plausible APNS device token",
        ));
    }
    Ok(MonalRequest {
        token: node.to_ascii_lowercase(),
        module,
    })
}

/// Sends one Monal push through the module's app profile, down the one
/// push pipeline; `Err` is the error to answer (`wait` unless the token is
/// dead).
pub async fn push(
    pushes: &Arc<PushService>,
    component: &str,
    from: &str,
    settings: &MonalSettings,
    req: MonalRequest,
) -> Result<(), StanzaError> {
    sender_allowed(&settings.allow_from, from)?;
    let Some(profile) = settings.profile_for(&req.module) else {
        // The operator's choice, not the device's fault: wait, never cancel.
        log::info!(
            "Monal push for token {} with pushModule {:?}, which no profile serves",
            short(&req.token),
            req.module
        );
        return Err(StanzaError::internal(format!(
            "pushModule {} is not served here",
            req.module
        )));
    };
    let Some(app) = pushes.apps().get(profile).cloned() else {
        return Err(StanzaError::internal(format!(
            "app profile {profile} is not running"
        )));
    };
    let custom = CustomApns {
        payload: settings.payload().to_string().into_bytes(),
        voip: false,
        priority: 10,
        apns_id: None,
    };
    let push = Push {
        component: component.to_owned(),
        push_type: profile.to_owned(),
        node: req.token.clone(),
        token: req.token,
        priority: Priority::High,
        summary: Summary::default(),
        encrypted: None,
        flavour: Flavour::Apns(custom),
    };
    pushes
        .deliver(app, push, Target::Stateless, Some(from))
        .await
        .map_err(|e| e.to_stanza_error())
}

#[cfg(test)]
mod tests;
