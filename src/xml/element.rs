//! A small owned XML element tree: what a stanza is once parsed, and how
//! replies are built and serialized.

use std::fmt::Write;
use std::sync::Arc;

/// A child of an element: another element or character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A nested element.
    Element(Element),
    /// Unescaped character data.
    Text(String),
}

/// An XML element with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name (without prefix).
    pub name: String,
    /// Resolved namespace URI; shared, because every element of a stanza
    /// repeats its parent's (the parser hands out one copy per
    /// declaration, and the common ones once per process).
    pub ns: Arc<str>,
    /// Attributes other than namespace declarations, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// A new empty element.
    pub fn new(name: &str, ns: &str) -> Self {
        Element {
            name: name.to_owned(),
            ns: super::parse::intern(ns),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: sets an attribute.
    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: sets an attribute when a value is present.
    pub fn attr_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Builder: appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends character data.
    pub fn text(mut self, text: &str) -> Self {
        self.children.push(Node::Text(text.to_owned()));
        self
    }

    /// Sets or replaces an attribute.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.attrs.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The value of an attribute.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when this element has the given name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && &*self.ns == ns
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name, ns))
    }

    /// All child elements with this name and namespace.
    pub fn children_named<'a>(
        &'a self,
        name: &'a str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(name, ns))
    }

    /// Concatenated direct character data.
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Serializes the element; `parent_ns` is the default namespace in scope,
    /// so an `xmlns` is written only where it changes.
    pub fn write_to(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if &*self.ns != parent_ns {
            out.push_str(" xmlns='");
            escape_into(out, &self.ns);
            out.push('\'');
        }
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}='");
            escape_into(out, v);
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => escape_into(out, t),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// Serializes as a top-level stanza of a component stream.
    pub fn to_stanza_string(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_to(&mut out, super::NS_COMPONENT);
        out
    }
}

/// Appends `s` with the five XML special characters escaped.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// `s` with XML special characters escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_namespaces_only_where_they_change() {
        let iq = Element::new("iq", crate::xml::NS_COMPONENT)
            .attr("type", "result")
            .attr("id", "a'b")
            .child(Element::new("ping", "urn:xmpp:ping"))
            .child(Element::new("x", "jabber:x:data").text("<&>"));
        assert_eq!(
            iq.to_stanza_string(),
            "<iq type='result' id='a&apos;b'><ping xmlns='urn:xmpp:ping'/>\
             <x xmlns='jabber:x:data'>&lt;&amp;&gt;</x></iq>"
        );
    }
}
