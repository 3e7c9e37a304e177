//! Stanza-level protocol code: plain data and pure functions that parse
//! requests and build replies. No I/O here.

pub mod disco;
pub mod error;
pub mod forms;
pub mod publish;

pub use error::{is_iq_request, ErrorType, IqHeader, StanzaError};

/// XEP-0050 ad-hoc commands namespace.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";

/// A peer's value as an error text quotes it: Debug-quoted and cut to 48
/// bytes, so an answer (or a log line) never grows with what a peer sent
/// (escaping alone made one 3.5 times larger).
pub fn quoted(value: &str) -> String {
    const MAX: usize = 48;
    if value.len() <= MAX {
        return format!("{value:?}");
    }
    format!("{:?}...", crate::text::cut(value, MAX))
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn quoted_values_are_bounded() {
        assert_eq!(quoted("abc"), "\"abc\"");
        let long = "\u{300}".repeat(10_000);
        assert!(quoted(&long).len() < 300, "{}", quoted(&long).len());
        assert!(quoted(&"x".repeat(100)).ends_with("\"..."));
    }
}
