//! Shared by the stateless dialects: which app profiles they may name,
//! and turning a provider's outcome into the XMPP error to answer.

use std::collections::BTreeMap;

use crate::config::{ConfigContext, ConfigError};
use crate::providers::{Outcome, ProviderSettings};
use crate::pushes::PushError;
use crate::registrations::owner::{domain_of, owner_of};
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

/// Validates an `allow_from` list of sender domains (lowercased).
pub(super) fn allow_from(
    ctx: &ConfigContext,
    key: &str,
    domains: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for d in domains.unwrap_or_default() {
        if d.is_empty()
            || d.len() > 253
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(ctx.error(key, format!("{d:?} is not a domain")));
        }
        out.push(d.to_ascii_lowercase());
    }
    Ok(out)
}

/// Whether a stateless push from `from` is served: any sender when
/// `allowed` is empty, else only JIDs of the listed domains. Without it
/// anyone on the XMPP network could use this server as a push relay.
pub(super) fn sender_allowed(allowed: &[String], from: &str) -> Result<(), StanzaError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let sender = owner_of(from);
    match sender.as_deref().map(domain_of) {
        Some(d) if allowed.iter().any(|a| a == d) => Ok(()),
        _ => Err(StanzaError::new(
            ErrorType::Auth,
            "forbidden",
            "this push service does not serve your server",
        )),
    }
}

/// The XMPP error for a provider's outcome, `None` when delivered, from
/// the one error table ([`PushError::to_stanza_error`]): only a dead token
/// is final; everything else is `wait`, so no XMPP server turns push off
/// for a passing failure.
pub(super) fn outcome_error(outcome: &Outcome) -> Option<StanzaError> {
    match outcome {
        Outcome::Delivered => None,
        Outcome::DeadToken { .. } => Some(PushError::DeadToken.to_stanza_error()),
        Outcome::Failed(f) => Some(PushError::Provider(f.clone()).to_stanza_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::FailureKind;
    use std::time::SystemTime;

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
        let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
        assert_eq!(
            allow_from(&ctx, "k", Some(vec!["Example.COM".into()])).unwrap(),
            vec!["example.com".to_owned()]
        );
        assert_eq!(
            allow_from(&ctx, "k", Some(vec!["a b".into()]))
                .unwrap_err()
                .key,
            "k"
        );
    }

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
