//! Why a push was not accepted, and the one table mapping that to an XMPP
//! error (protocols.md section 2) and to the HTTP API's text.

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
}

impl PushError {
    /// The XMPP error to answer.
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
            },
            PushError::Store(_) => StanzaError::internal("registration store unavailable"),
        }
    }

    /// HTTP status for the API.
    pub fn http_status(&self) -> u16 {
        match self {
            PushError::BadRequest(_) => 400,
            PushError::UnknownNode | PushError::DeadToken => 404,
            PushError::WrongSecret => 403,
            PushError::Provider(f) if f.kind == FailureKind::Timeout => 504,
            PushError::Provider(_) => 502,
            PushError::TypeNotConfigured(_) | PushError::Store(_) => 500,
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
    }
}
