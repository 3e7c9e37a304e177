//! XML for the component stream: framing bytes into stanzas, parsing them
//! into element trees and serializing replies.

pub mod element;
pub mod framer;
pub mod parse;

pub use element::{escape, Element, Node};
pub use framer::{Frame, FrameError, Framer};
pub use parse::{parse_element, parse_header, ParseError};

/// Default namespace of stanzas on a XEP-0114 component stream.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// Namespace of the stream element and stream errors.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Namespace of stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// Namespace of stream error conditions.
pub const NS_STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// XEP-0004 data forms.
pub const NS_DATA: &str = "jabber:x:data";
