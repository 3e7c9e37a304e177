//! XEP-0114 handshake and stream framing strings: pure functions.

use crate::registrations::hex;
use crate::xml::{escape, Element, NS_STREAM, NS_STREAMS};

/// The opening stream header the component sends.
pub fn stream_header(jid: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='{NS_STREAM}' to='{}'>",
        escape(jid)
    )
}

/// `<handshake>hex(sha1(stream_id + secret))</handshake>`.
pub fn handshake(stream_id: &str, secret: &str) -> String {
    let mut input = Vec::with_capacity(stream_id.len() + secret.len());
    input.extend_from_slice(stream_id.as_bytes());
    input.extend_from_slice(secret.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    format!("<handshake>{}</handshake>", hex(digest.as_ref()))
}

/// A stream error followed by the stream close.
pub fn stream_error(condition: &str, text: &str) -> String {
    let mut out = String::from("<stream:error>");
    Element::new(condition, NS_STREAMS).write_to(&mut out, "");
    Element::new("text", NS_STREAMS)
        .text(text)
        .write_to(&mut out, "");
    out.push_str("</stream:error></stream:stream>");
    out
}

/// The stream error condition of a received `<stream:error/>`.
pub fn error_condition(el: &Element) -> String {
    el.elements()
        .find(|c| &*c.ns == NS_STREAMS && c.name != "text")
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "undefined-condition".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_is_sha1_of_id_and_secret() {
        // sha1("3BF96D32" + "s3cr3t") computed independently with sha1sum.
        assert_eq!(
            handshake("3BF96D32", "s3cr3t"),
            "<handshake>ba33290100f616a33656a931798d6c9011cfa840</handshake>"
        );
    }

    #[test]
    fn stream_error_is_well_formed_inside_a_stream() {
        let s = stream_error("not-well-formed", "bad <xml>");
        let doc = format!("<stream:stream xmlns:stream='{NS_STREAM}'>{s}");
        let mut f = crate::xml::Framer::new(4096);
        f.push(doc.as_bytes());
        assert!(matches!(
            f.next_frame(),
            Ok(Some(crate::xml::Frame::Header(_)))
        ));
        let Ok(Some(crate::xml::Frame::Stanza(b))) = f.next_frame() else {
            panic!()
        };
        let el = crate::xml::parse_element(&b).unwrap();
        assert_eq!(error_condition(&el), "not-well-formed");
    }
}
