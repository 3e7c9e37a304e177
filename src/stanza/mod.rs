//! Stanza-level protocol code: plain data and pure functions that parse
//! requests and build replies. No I/O here.

pub mod disco;
pub mod error;
pub mod forms;
pub mod publish;

pub use error::{is_iq_request, ErrorType, IqHeader, StanzaError};
