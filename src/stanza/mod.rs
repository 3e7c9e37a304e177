//! Stanza-level protocol code: plain data and pure functions that parse
//! requests and build replies. No I/O here.

pub mod disco;
pub mod error;
pub mod forms;
pub mod publish;

pub use error::{is_iq_request, ErrorType, IqHeader, StanzaError};

/// XEP-0050 ad-hoc commands namespace.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
