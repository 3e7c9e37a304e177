//! Turns one complete frame into an [`Element`] tree with namespaces
//! resolved, using quick-xml for tokenizing and unescaping.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::element::{Element, Node};
use super::{NS_CLIENT, NS_COMPONENT, NS_DATA, NS_SERVER, NS_STANZAS, NS_STREAM, NS_STREAMS};

/// Attributes (namespace declarations included) one element may carry.
/// Real stanzas carry a handful; the cap keeps the duplicate check, which
/// compares each attribute with those before it, linear in the input.
pub const MAX_ATTRIBUTES: usize = 64;

/// Namespace declarations in scope at once, over the whole stanza: every
/// element looks its prefix up among them, so the cap keeps that lookup
/// linear in the input too.
pub const MAX_NAMESPACE_DECLARATIONS: usize = 128;

/// Why a frame is not a well-formed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub reason: String,
    /// Well-formed, but over one of this parser's limits
    /// ([`MAX_ATTRIBUTES`], [`MAX_NAMESPACE_DECLARATIONS`]): the stanza is
    /// skipped, the stream goes on.
    pub over_limit: bool,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.over_limit {
            f.write_str(&self.reason)
        } else {
            write!(f, "malformed XML: {}", self.reason)
        }
    }
}

impl std::error::Error for ParseError {}

/// Namespace declarations in scope: (prefix, uri), innermost last. The
/// prefixes borrow the frame; the URIs are shared with the elements.
type Scope<'a> = Vec<(Cow<'a, str>, Arc<str>)>;

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Namespaces stanzas use all the time, made once per process, so parsing
/// a stanza allocates no namespace it declares or inherits from these.
const COMMON: [&str; 18] = [
    NS_COMPONENT,
    NS_STREAM,
    NS_XML,
    NS_CLIENT,
    NS_SERVER,
    NS_STANZAS,
    NS_STREAMS,
    NS_DATA,
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#publish-options",
    "urn:xmpp:push:0",
    "http://jabber.org/protocol/commands",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "urn:xmpp:ping",
    "urn:xmpp:push2:0",
    "tigase:push:encrypt:0",
    "jabber:iq:version",
];

/// The shared copy of `uri` if it is a common namespace, else a new one.
pub fn intern(uri: &str) -> Arc<str> {
    static SHARED: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| COMMON.iter().map(|&u| Arc::from(u)).collect());
    match shared.iter().find(|s| ***s == *uri) {
        Some(s) => Arc::clone(s),
        None => Arc::from(uri),
    }
}

/// Entries of [`base_scope`].
const BASE_SCOPE: usize = 3;

fn base_scope<'a>() -> Scope<'a> {
    vec![
        (Cow::Borrowed(""), intern(NS_COMPONENT)),
        (Cow::Borrowed("stream"), intern(NS_STREAM)),
        (Cow::Borrowed("xml"), intern(NS_XML)),
    ]
}

fn err(e: impl std::fmt::Display) -> ParseError {
    ParseError {
        reason: e.to_string(),
        over_limit: false,
    }
}

fn over_limit(reason: String) -> ParseError {
    ParseError {
        reason,
        over_limit: true,
    }
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
fn open_element<'a>(start: &BytesStart<'a>, scope: &mut Scope<'a>) -> Result<Element, ParseError> {
    let mut attrs = Vec::new();
    for (i, a) in start.attributes().enumerate() {
        if i >= MAX_ATTRIBUTES {
            return Err(over_limit(format!(
                "more than {MAX_ATTRIBUTES} attributes on one element"
            )));
        }
        let a = a.map_err(err)?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(err)?;
        let value = a.unescape_value().map_err(err)?;
        if key == "xmlns" {
            scope.push((Cow::Borrowed(""), intern(&value)));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            scope.push((Cow::Owned(prefix.to_owned()), intern(&value)));
        } else {
            attrs.push((key.to_owned(), value.into_owned()));
        }
    }
    if scope.len() > BASE_SCOPE + MAX_NAMESPACE_DECLARATIONS {
        return Err(over_limit(format!(
            "more than {MAX_NAMESPACE_DECLARATIONS} namespace declarations"
        )));
    }
    let name = start.name();
    let qname = std::str::from_utf8(name.as_ref()).map_err(err)?;
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    };
    let ns = scope
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, uri)| Arc::clone(uri))
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
    fn elements_share_their_namespace_instead_of_copying_it() {
        let el = parse_element(
            b"<iq><x xmlns='urn:rare'><field><value/></field></x>\
              <y xmlns='urn:rare'/></iq>",
        )
        .unwrap();
        let x = el.get_child("x", "urn:rare").unwrap();
        let field = x.get_child("field", "urn:rare").unwrap();
        let value = field.get_child("value", "urn:rare").unwrap();
        // One copy per declaration, shared by the elements under it.
        assert!(Arc::ptr_eq(&x.ns, &field.ns) && Arc::ptr_eq(&field.ns, &value.ns));
        let y = el.get_child("y", "urn:rare").unwrap();
        assert!(!Arc::ptr_eq(&x.ns, &y.ns));
        // Common namespaces: one copy per process.
        let again = parse_element(b"<iq/>").unwrap();
        assert!(Arc::ptr_eq(&el.ns, &again.ns));
        assert!(Arc::ptr_eq(&el.ns, &intern(NS_COMPONENT)));
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
    fn attributes_and_namespace_declarations_are_capped() {
        let attrs = |n: usize| (0..n).map(|i| format!(" a{i}=''")).collect::<String>();
        let ok = format!("<iq{}/>", attrs(MAX_ATTRIBUTES));
        assert_eq!(
            parse_element(ok.as_bytes()).unwrap().attrs.len(),
            MAX_ATTRIBUTES
        );
        // The attack of issue 17: tens of thousands of distinct attributes,
        // each checked against all before it, stalled the process.
        let attack = format!("<iq{}/>", attrs(37_000));
        let e = parse_element(attack.as_bytes()).unwrap_err();
        assert!(e.over_limit && e.reason.contains("attributes"), "{e}");
        let dup = "<iq a='1' a='2'/>";
        assert!(!parse_element(dup.as_bytes()).unwrap_err().over_limit);
        // Declarations spread over nested elements count together.
        let decl = |i: usize| format!("<e xmlns:p{i}='urn:x:{i}'>");
        let n = MAX_NAMESPACE_DECLARATIONS;
        let nested = |k: usize| {
            let open: String = (0..k).map(decl).collect();
            format!("<iq>{open}{}</iq>", "</e>".repeat(k))
        };
        assert!(parse_element(nested(n).as_bytes()).is_ok());
        let e = parse_element(nested(n + 1).as_bytes()).unwrap_err();
        assert!(e.over_limit && e.reason.contains("namespace"), "{e}");
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
