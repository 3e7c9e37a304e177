//! Shared by the stateless dialects: which app profiles they may name,
//! and turning a provider's outcome into the XMPP error to answer.

use std::collections::BTreeMap;

use crate::config::{ConfigContext, ConfigError};
use crate::providers::{FailureKind, Outcome, ProviderSettings};
use crate::stanza::{ErrorType, StanzaError};

/// Checks that `profile` names an `[app.*]` that can send an APNS payload
/// (`apns`, or `log` to try a setup).
pub(super) fn check_apns_profile(
    ctx: &ConfigContext,
    key: &str,
    profile: &str,
    apps: &BTreeMap<String, ProviderSettings>,
) -> Result<(), ConfigError> {
    match apps.get(profile) {
        Some(ProviderSettings::Apns(_) | ProviderSettings::Log(_)) => Ok(()),
        Some(_) => Err(ctx.error(
            key,
            format!("[app.{profile}] must use provider \"apns\" (or \"log\")"),
        )),
        None => Err(ctx.error(
            key,
            format!("app profile {profile:?} has no [app.{profile}]"),
        )),
    }
}

/// The XMPP error for a provider's outcome, `None` when delivered. Only a
/// dead token is final (`cancel/item-not-found`); everything else is
/// `wait`, so no XMPP server turns push off for a passing failure.
pub(super) fn outcome_error(outcome: &Outcome) -> Option<StanzaError> {
    match outcome {
        Outcome::Delivered => None,
        Outcome::DeadToken { .. } => Some(StanzaError::item_not_found(
            "the push provider reported the device token as dead",
        )),
        Outcome::Failed(f) => Some(match f.kind {
            FailureKind::Timeout => {
                StanzaError::new(ErrorType::Wait, "remote-server-timeout", f.reason.clone())
            }
            FailureKind::Unavailable => StanzaError::internal(f.reason.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn only_dead_tokens_are_final() {
        assert_eq!(outcome_error(&Outcome::Delivered), None);
        let dead = outcome_error(&Outcome::DeadToken {
            since: SystemTime::now(),
        })
        .unwrap();
        assert_eq!(
            (dead.kind, dead.condition),
            (ErrorType::Cancel, "item-not-found")
        );
        for (kind, cond) in [
            (FailureKind::Timeout, "remote-server-timeout"),
            (FailureKind::Unavailable, "internal-server-error"),
        ] {
            let e = outcome_error(&Outcome::failed(kind, "x")).unwrap();
            assert_eq!((e.kind, e.condition), (ErrorType::Wait, cond));
        }
    }
}
