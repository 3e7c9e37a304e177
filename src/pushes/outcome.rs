//! What a provider's answer changes: the registration's push record, a
//! dead token's registrations, and the error the publisher gets. A push
//! with no registration behind it (a stateless dialect's) changes nothing
//! stored.

use std::sync::Arc;

use super::{store_failed, PushError, PushService, Target};
use crate::metrics::PushResult;
use crate::providers::{Failure, FailureKind, Outcome, Push};
use crate::registrations::owner::short;

/// The metrics result of a provider's outcome.
pub(super) fn counted(outcome: &Outcome) -> PushResult {
    match outcome {
        Outcome::Delivered => PushResult::Delivered,
        Outcome::DeadToken { .. } => PushResult::DeadToken,
        Outcome::Failed(f) if f.kind == FailureKind::Timeout => PushResult::TimedOut,
        Outcome::Failed(_) => PushResult::Failed,
    }
}

impl PushService {
    /// Applies `outcome` of `push` and answers the publisher.
    pub(super) async fn apply(
        &self,
        push: &Push,
        target: Target,
        outcome: Outcome,
    ) -> Result<(), PushError> {
        let now = self.clock.now();
        let registered = target == Target::Registered;
        match outcome {
            Outcome::Delivered => {
                if registered {
                    self.registrations
                        .record_push(&push.component, &push.node, now, None);
                }
                Ok(())
            }
            Outcome::DeadToken { .. } if !registered => {
                log::info!(
                    "provider rejects token {} ({}) of a stateless push",
                    short(&push.token),
                    push.push_type
                );
                Err(PushError::DeadToken)
            }
            // A dead PushKit token says nothing about the device token the
            // registration is stored under: keep it, and keep push on.
            Outcome::DeadToken { .. } if push.flavour.uses_second_token(push.priority) => {
                log::info!(
                    "provider rejects the VoIP token of node {} ({})",
                    short(&push.node),
                    push.push_type
                );
                Err(PushError::Provider(Failure {
                    kind: FailureKind::Unavailable,
                    reason: "the VoIP token was rejected by the provider".into(),
                }))
            }
            Outcome::DeadToken { since } => {
                let regs = Arc::clone(&self.registrations);
                let (ty, token) = (push.push_type.clone(), push.token.clone());
                let removed = self
                    .store_thread
                    .run(move || regs.remove_dead_token(&ty, &token, since))
                    .await
                    .map_err(store_failed)?;
                if !removed
                    .iter()
                    .any(|r| r.node == push.node && r.component == push.component)
                {
                    // The device registered again after the provider's
                    // timestamp: keep it, and do not make the XMPP server
                    // disable push for it.
                    log::info!(
                        "provider reports node {} ({}) dead, but it registered again since",
                        short(&push.node),
                        push.push_type
                    );
                    return Err(PushError::Provider(Failure {
                        kind: FailureKind::Unavailable,
                        reason: "token rejected by the provider; the device registered again since"
                            .into(),
                    }));
                }
                log::info!(
                    "dead token for node {} ({}): removed {} registration(s)",
                    short(&push.node),
                    push.push_type,
                    removed.len()
                );
                Err(PushError::DeadToken)
            }
            Outcome::Failed(f) => {
                log::warn!(
                    "push to node {} ({}) failed: {}",
                    short(&push.node),
                    push.push_type,
                    f.reason
                );
                if registered {
                    self.registrations.record_push(
                        &push.component,
                        &push.node,
                        now,
                        Some(&f.reason),
                    );
                }
                Err(PushError::Provider(f))
            }
        }
    }
}
