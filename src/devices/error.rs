//! Why a registration request failed, and the one table mapping that to
//! an XMPP error and an HTTP status.

use crate::registrations::{InputError, LimitKind, Refusal, RegError, StoreError};
use crate::stanza::{ErrorType, StanzaError};

/// Why a register or unregister request failed.
#[derive(Debug)]
pub enum RegisterError {
    /// The push type is not offered by this component.
    UnknownType(String),
    /// A field is missing or invalid.
    Input(InputError),
    /// Unregister of a node that is not registered with this type (or, over
    /// XMPP, not by this requester).
    NotFound,
    /// A command without a usable sender JID.
    NoRequester,
    /// The requester sent too many commands lately.
    RateLimited,
    /// Refused by the store's rules: a count limit, a node owned by an XMPP
    /// account, a wrong secret.
    Refused(Refusal),
    /// The store thread did not take the request in time.
    Busy,
    /// The store failed.
    Store(StoreError),
}

impl RegisterError {
    /// The reason shown to the requester; store details stay in the log.
    pub fn client_reason(&self) -> String {
        match self {
            RegisterError::Store(_) => "registration store unavailable".to_owned(),
            e => e.to_string(),
        }
    }

    /// The XMPP error answering an ad-hoc command.
    pub fn to_stanza_error(&self) -> StanzaError {
        let reason = self.client_reason();
        match self {
            RegisterError::UnknownType(_)
            | RegisterError::Input(_)
            | RegisterError::NoRequester => StanzaError::bad_request(reason),
            RegisterError::NotFound => StanzaError::item_not_found(reason),
            RegisterError::RateLimited
            | RegisterError::Refused(Refusal::Limit(LimitKind::Rate | LimitKind::Client)) => {
                StanzaError::new(ErrorType::Wait, "resource-constraint", reason)
            }
            RegisterError::Refused(Refusal::WrongSecret) => {
                StanzaError::new(ErrorType::Auth, "forbidden", reason)
            }
            RegisterError::Refused(_) => StanzaError::new(ErrorType::Cancel, "not-allowed", reason),
            RegisterError::Busy => StanzaError::new(ErrorType::Wait, "resource-constraint", reason),
            RegisterError::Store(_) => StanzaError::internal(reason),
        }
    }

    /// The HTTP status answering the API.
    pub fn http_status(&self) -> u16 {
        match self {
            RegisterError::UnknownType(_)
            | RegisterError::Input(_)
            | RegisterError::NoRequester => 400,
            RegisterError::NotFound => 404,
            RegisterError::RateLimited
            | RegisterError::Refused(Refusal::Limit(LimitKind::Rate | LimitKind::Client)) => 429,
            RegisterError::Refused(Refusal::Limit(LimitKind::Total)) => 507,
            RegisterError::Refused(_) => 403,
            RegisterError::Busy => 503,
            RegisterError::Store(_) => 500,
        }
    }
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::UnknownType(t) => write!(f, "unknown push type {t:?}"),
            RegisterError::Input(e) => write!(f, "{e}"),
            RegisterError::NotFound => f.write_str("node not registered with this push type"),
            RegisterError::NoRequester => f.write_str("the command has no sender JID"),
            RegisterError::RateLimited => {
                f.write_str("too many registration commands; try again later")
            }
            RegisterError::Refused(r) => write!(f, "{}", RegError::Refused(*r)),
            RegisterError::Busy => f.write_str("the registration store is busy; try again later"),
            RegisterError::Store(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_error_table_for_xmpp_and_http() {
        let row = |e: RegisterError| {
            let s = e.to_stanza_error();
            (s.condition, e.http_status(), s.text.unwrap_or_default())
        };
        assert_eq!(
            row(RegisterError::UnknownType("pigeon".into())),
            ("bad-request", 400, "unknown push type \"pigeon\"".into())
        );
        assert_eq!(
            row(RegisterError::Input(InputError::Missing("token"))),
            ("bad-request", 400, "missing field 'token'".into())
        );
        assert_eq!(row(RegisterError::NotFound).0, "item-not-found");
        assert_eq!(row(RegisterError::NotFound).1, 404);
        assert_eq!(
            row(RegisterError::RateLimited),
            (
                "resource-constraint",
                429,
                "too many registration commands; try again later".into()
            )
        );
        let limit = |k| RegisterError::Refused(Refusal::Limit(k));
        assert_eq!(row(limit(LimitKind::Jid)).0, "not-allowed");
        assert_eq!(row(limit(LimitKind::Jid)).1, 403);
        assert_eq!(row(limit(LimitKind::Total)).1, 507);
        assert_eq!(
            row(RegisterError::Busy),
            (
                "resource-constraint",
                503,
                "the registration store is busy; try again later".into()
            )
        );
        assert_eq!(
            (row(limit(LimitKind::Rate)).0, row(limit(LimitKind::Rate)).1),
            ("resource-constraint", 429)
        );
        assert_eq!(
            row(RegisterError::Refused(Refusal::Owned)),
            (
                "not-allowed",
                403,
                "node belongs to another registration".into()
            )
        );
        assert_eq!(row(RegisterError::Refused(Refusal::WrongSecret)).1, 403);
        let store = RegisterError::Store(StoreError::Corrupt("secret detail".into()));
        assert_eq!(store.client_reason(), "registration store unavailable");
        assert_eq!(row(store).0, "internal-server-error");
    }
}
