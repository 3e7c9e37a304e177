//! XML for the component stream: framing bytes into stanzas, parsing them
//! into element trees and serializing replies.

mod discard;
pub mod element;
pub mod framer;
pub mod parse;

pub use element::{escape, Element, Node};
pub use framer::{Frame, FrameError, Framer, SkipReason};
pub use parse::{
    parse_element, parse_header, parse_start_tag, ParseError, MAX_ATTRIBUTES,
    MAX_NAMESPACE_DECLARATIONS,
};

/// Default namespace of stanzas on a XEP-0114 component stream.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// Namespace of client stanzas; servers may forward them unchanged.
pub const NS_CLIENT: &str = "jabber:client";
/// Namespace of server-to-server stanzas.
pub const NS_SERVER: &str = "jabber:server";
/// Namespace of the stream element and stream errors.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Namespace of stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// Namespace of stream error conditions.
pub const NS_STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// XEP-0004 data forms.
pub const NS_DATA: &str = "jabber:x:data";

#[cfg(test)]
mod robustness {
    use super::*;

    const SAMPLE: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x'><handshake/>\
        <iq type='set' id='a&amp;b' from='u@example.com'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
        <publish node='n'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'>\
        <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field></x></notification></item>\
        </publish></pubsub></iq><message><body><![CDATA[<x>]]> &#x263A;</body></message></stream:stream>";

    /// Random mutations of a valid stream, fed in random chunks: the framer
    /// and parser must return frames or errors, never panic or loop.
    #[test]
    fn mutated_streams_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let specials = b"<>/&;'\"=![]?:-x \n\0\xff";
        for _ in 0..3000 {
            let mut input = SAMPLE.to_vec();
            for _ in 0..rng.usize(1..8) {
                let at = rng.usize(..input.len());
                match rng.u8(..3) {
                    0 => input[at] = specials[rng.usize(..specials.len())],
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, specials[rng.usize(..specials.len())]),
                }
            }
            let mut framer = Framer::new(512);
            let mut frames = 0;
            let mut rest = &input[..];
            'feed: while !rest.is_empty() {
                let n = rng.usize(1..=rest.len().min(64));
                framer.push(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Stanza(b))) => {
                            frames += 1;
                            let _ = parse_element(&b);
                        }
                        Ok(Some(Frame::Header(h))) => {
                            frames += 1;
                            let _ = parse_header(&h);
                        }
                        Ok(Some(Frame::Skipped { head, .. })) => {
                            frames += 1;
                            assert!(head.is_none_or(|h| h.len() <= framer::MAX_HEAD));
                        }
                        Ok(Some(Frame::End)) => break 'feed,
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                    assert!(frames < 100, "runaway framing");
                }
            }
        }
    }
}
