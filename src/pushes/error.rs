//! Why a push was not accepted, and the one table mapping that to an XMPP
//! error (docs/protocols.md section 2) and to the HTTP API's text.

use crate::providers::{Failure, FailureKind};
use crate::registrations::StoreError;
use crate::stanza::{ErrorType, StanzaError};

/// A push that was not accepted.
#[derive(Debug)]
pub enum PushError {
    /// The request is malformed.
    BadRequest(String),
    /// No registration for this node.
    UnknownNode,
    /// The secret does not match.
    WrongSecret,
    /// The provider reported the token dead; the registration was removed.
    DeadToken,
    /// The registration's push type is no longer configured.
    TypeNotConfigured(String),
    /// The provider failed.
    Provider(Failure),
    /// The store failed.
    Store(StoreError),
    /// The sender's domain pushes faster than
    /// `limits.pushes_per_second_per_domain`.
    RateLimited,
}

impl PushError {
    /// The XMPP error to answer: the one table of push failures. Only a
    /// device that is really gone (unknown node, wrong secret, dead token)
    /// gets `cancel`/`auth`, which makes the user's server disable push for
    /// it (docs/protocols.md section 8); everything transient or caused by the
    /// operator answers `wait` with a condition Tigase keeps push for.
    /// Throttled pushes are no error at all (accepted, then coalesced).
    pub fn to_stanza_error(&self) -> StanzaError {
        match self {
            PushError::BadRequest(why) => StanzaError::bad_request(why.clone()),
            PushError::UnknownNode => StanzaError::item_not_found("unknown node"),
            PushError::WrongSecret => {
                StanzaError::new(ErrorType::Auth, "forbidden", "wrong secret for this node")
            }
            PushError::DeadToken => {
                StanzaError::item_not_found("the push provider reported the device token as dead")
            }
            PushError::TypeNotConfigured(t) => {
                StanzaError::internal(format!("push type {t} is not configured"))
            }
            PushError::Provider(f) => match f.kind {
                FailureKind::Timeout => {
                    StanzaError::new(ErrorType::Wait, "remote-server-timeout", f.reason.clone())
                }
                FailureKind::Unavailable => StanzaError::internal(f.reason.clone()),
                FailureKind::Refused => {
                    StanzaError::new(ErrorType::Cancel, "not-allowed", f.reason.clone())
                }
                FailureKind::Unacceptable => {
                    StanzaError::new(ErrorType::Modify, "not-acceptable", f.reason.clone())
                }
            },
            PushError::Store(_) => StanzaError::internal("registration store unavailable"),
            // `internal-server-error`, not `resource-constraint`: Tigase
            // turns push off on every condition but four (section 8).
            PushError::RateLimited => {
                StanzaError::internal("too many pushes from your server; try again later")
            }
        }
    }

    /// HTTP status for the API.
    pub fn http_status(&self) -> u16 {
        match self {
            PushError::BadRequest(_) => 400,
            PushError::UnknownNode | PushError::DeadToken => 404,
            PushError::WrongSecret => 403,
            PushError::Provider(f) => match f.kind {
                FailureKind::Timeout => 504,
                FailureKind::Unavailable => 502,
                FailureKind::Refused => 403,
                FailureKind::Unacceptable => 400,
            },
            PushError::TypeNotConfigured(_) | PushError::Store(_) => 500,
            PushError::RateLimited => 429,
        }
    }
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::BadRequest(why) => write!(f, "bad request: {why}"),
            PushError::UnknownNode => f.write_str("unknown node"),
            PushError::WrongSecret => f.write_str("wrong secret"),
            PushError::DeadToken => f.write_str("device token is dead; registration removed"),
            PushError::TypeNotConfigured(t) => write!(f, "push type {t} is not configured"),
            PushError::Provider(fl) => write!(f, "push provider failed: {}", fl.reason),
            PushError::Store(e) => write!(f, "{e}"),
            PushError::RateLimited => f.write_str("too many pushes from this sender's domain"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table_matches_protocols_md() {
        let row = |e: PushError| {
            let s = e.to_stanza_error();
            format!(
                "{}/{}",
                s.to_element().get_attr("type").unwrap(),
                s.condition
            )
        };
        assert_eq!(row(PushError::UnknownNode), "cancel/item-not-found");
        assert_eq!(row(PushError::WrongSecret), "auth/forbidden");
        assert_eq!(row(PushError::DeadToken), "cancel/item-not-found");
        assert_eq!(row(PushError::BadRequest("x".into())), "modify/bad-request");
        assert_eq!(
            row(PushError::Provider(Failure {
                kind: FailureKind::Unavailable,
                reason: "503".into()
            })),
            "wait/internal-server-error"
        );
        assert_eq!(
            row(PushError::Provider(Failure {
                kind: FailureKind::Timeout,
                reason: "slow".into()
            })),
            "wait/remote-server-timeout"
        );
        let provider = |kind| {
            row(PushError::Provider(Failure {
                kind,
                reason: "x".into(),
            }))
        };
        // Only a Push 2.0 Web Push target gets these (docs/protocols.md section 8).
        assert_eq!(provider(FailureKind::Refused), "cancel/not-allowed");
        assert_eq!(provider(FailureKind::Unacceptable), "modify/not-acceptable");
    }

    /// The XMPP servers' reactions to an error reply (docs/protocols.md
    /// section 8).
    #[derive(Debug, Clone, Copy)]
    enum Server {
        /// mod_push: any non-`wait` error deletes the registration.
        Ejabberd,
        /// mod_cloud_notify: 16 non-`wait` errors in a row disable push.
        Prosody,
        /// Disables on every condition but four, whatever the type.
        Tigase,
    }

    /// Whether `server` disables push after `n` such errors in a row.
    fn disables(server: Server, e: &StanzaError, n: u32) -> bool {
        match server {
            Server::Ejabberd => e.kind != ErrorType::Wait,
            Server::Prosody => e.kind != ErrorType::Wait && n >= 16,
            Server::Tigase => !matches!(
                e.condition,
                "remote-server-timeout"
                    | "service-unavailable"
                    | "internal-server-error"
                    | "bad-request"
            ),
        }
    }

    fn every_failure() -> Vec<(PushError, bool)> {
        let provider = |kind| {
            PushError::Provider(Failure {
                kind,
                reason: "x".into(),
            })
        };
        vec![
            (PushError::UnknownNode, true),
            (PushError::WrongSecret, true),
            (PushError::DeadToken, true),
            (PushError::TypeNotConfigured("apns".into()), false),
            (provider(FailureKind::Unavailable), false),
            (provider(FailureKind::Timeout), false),
            (PushError::Store(StoreError::Corrupt("disk".into())), false),
            (PushError::RateLimited, false),
        ]
    }

    #[test]
    fn ejabberd_drops_a_device_only_when_it_is_gone() {
        for (e, gone) in every_failure() {
            assert_eq!(
                disables(Server::Ejabberd, &e.to_stanza_error(), 1),
                gone,
                "{e}"
            );
        }
    }

    #[test]
    fn prosody_disables_after_16_only_when_the_device_is_gone() {
        for (e, gone) in every_failure() {
            let s = e.to_stanza_error();
            assert!(!disables(Server::Prosody, &s, 15), "{e}");
            assert_eq!(disables(Server::Prosody, &s, 16), gone, "{e}");
        }
    }

    #[test]
    fn tigase_keeps_push_for_everything_transient() {
        for (e, gone) in every_failure() {
            assert_eq!(
                disables(Server::Tigase, &e.to_stanza_error(), 1),
                gone,
                "{e}"
            );
        }
        // Malformed requests: Tigase keeps push; ejabberd drops it, as for
        // any request that can never succeed.
        let bad = PushError::BadRequest("x".into()).to_stanza_error();
        assert!(!disables(Server::Tigase, &bad, 1));
        assert!(disables(Server::Ejabberd, &bad, 1));
    }
}
