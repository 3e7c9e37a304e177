//! Turns one complete frame into an [`Element`] tree with namespaces
//! resolved, using quick-xml for tokenizing and unescaping.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::element::{Element, Node};
use super::{NS_COMPONENT, NS_STREAM};

/// Why a frame is not a well-formed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed XML: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// Namespace declarations in scope: (prefix, uri), innermost last.
type Scope = Vec<(String, String)>;

fn base_scope() -> Scope {
    vec![
        (String::new(), NS_COMPONENT.to_owned()),
        ("stream".to_owned(), NS_STREAM.to_owned()),
        (
            "xml".to_owned(),
            "http://www.w3.org/XML/1998/namespace".to_owned(),
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> ParseError {
    ParseError(e.to_string())
}

/// Parses a complete top-level element of a component stream.
pub fn parse_element(bytes: &[u8]) -> Result<Element, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut scope = base_scope();
    let mut stack: Vec<(Element, usize)> = Vec::new();
    loop {
        match reader.read_event().map_err(err)? {
            Event::Start(start) => {
                let mark = scope.len();
                let el = open_element(&start, &mut scope)?;
                stack.push((el, mark));
            }
            Event::Empty(start) => {
                let mark = scope.len();
                let el = open_element(&start, &mut scope)?;
                scope.truncate(mark);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => return finish(&mut reader, el),
                }
            }
            Event::End(_) => {
                let (el, mark) = stack.pop().ok_or_else(|| err("unexpected end tag"))?;
                scope.truncate(mark);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => return finish(&mut reader, el),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(err)?;
                match stack.last_mut() {
                    Some((parent, _)) => push_text(parent, &text),
                    None if text.trim().is_empty() => {}
                    None => return Err(err("text outside the element")),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c).map_err(err)?;
                if let Some((parent, _)) = stack.last_mut() {
                    push_text(parent, text);
                }
            }
            Event::Eof => return Err(err("unexpected end of input")),
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {
                return Err(err("restricted XML construct"));
            }
        }
    }
}

fn finish(reader: &mut Reader<&[u8]>, el: Element) -> Result<Element, ParseError> {
    loop {
        match reader.read_event().map_err(err)? {
            Event::Eof => return Ok(el),
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            _ => return Err(err("content after the element")),
        }
    }
}

fn push_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(prev)) = parent.children.last_mut() {
        prev.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_owned()));
    }
}

/// Builds an element from its start tag, pushing its namespace declarations
/// onto `scope`.
fn open_element(start: &BytesStart<'_>, scope: &mut Scope) -> Result<Element, ParseError> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(err)?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(err)?.to_owned();
        let value = a.unescape_value().map_err(err)?.into_owned();
        if key == "xmlns" {
            scope.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            scope.push((prefix.to_owned(), value));
        } else {
            attrs.push((key, value));
        }
    }
    let qname = std::str::from_utf8(start.name().as_ref())
        .map_err(err)?
        .to_owned();
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname.as_str()),
    };
    let ns = scope
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, uri)| uri.clone())
        .ok_or_else(|| err(format!("unbound namespace prefix {prefix:?}")))?;
    Ok(Element {
        name: local.to_owned(),
        ns,
        attrs,
        children: Vec::new(),
    })
}

/// The attributes of a stream header tag such as
/// `<stream:stream xmlns=... id='abc'>`.
pub fn parse_header(bytes: &[u8]) -> Result<Element, ParseError> {
    let el = parse_start_tag(bytes).map_err(|_| err("expected a stream header"))?;
    if el.is("stream", NS_STREAM) {
        Ok(el)
    } else {
        Err(err("expected a stream:stream header"))
    }
}

/// The element (name, namespace, attributes; no children) opened by a lone
/// start tag such as `<iq type='set' id='1'>`, e.g. the kept head of a
/// skipped stanza.
pub fn parse_start_tag(bytes: &[u8]) -> Result<Element, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    let mut scope = base_scope();
    match reader.read_event().map_err(err)? {
        Event::Start(start) | Event::Empty(start) => open_element(&start, &mut scope),
        _ => Err(err("expected a start tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_default_and_prefixed_namespaces() {
        let el = parse_element(
            b"<iq type='set' id='x&amp;1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
              <p:publish xmlns:p='urn:other' node='n'/>text &lt;1</pubsub></iq>",
        )
        .unwrap();
        assert!(el.is("iq", NS_COMPONENT));
        assert_eq!(el.get_attr("id"), Some("x&1"));
        let pubsub = el
            .get_child("pubsub", "http://jabber.org/protocol/pubsub")
            .unwrap();
        assert_eq!(
            pubsub
                .get_child("publish", "urn:other")
                .unwrap()
                .get_attr("node"),
            Some("n")
        );
        assert_eq!(pubsub.text_content(), "text <1");
    }

    #[test]
    fn stream_errors_use_the_stream_prefix() {
        let el = parse_element(
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        )
        .unwrap();
        assert!(el.is("error", NS_STREAM));
    }

    #[test]
    fn rejects_mismatched_tags_unbound_prefixes_and_bad_entities() {
        assert!(parse_element(b"<iq><a></b></iq>").is_err());
        assert!(parse_element(b"<iq><x:a/></iq>").is_err());
        assert!(parse_element(b"<iq>&bogus;</iq>").is_err());
    }

    #[test]
    fn reads_header_id() {
        let h = parse_header(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
              xmlns='jabber:component:accept' from='push.localhost' id='abc123'>",
        )
        .unwrap();
        assert_eq!(h.get_attr("id"), Some("abc123"));
    }
}
