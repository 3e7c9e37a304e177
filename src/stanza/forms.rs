//! XEP-0004 data forms: reading submitted fields, building result forms.

use crate::xml::{Element, NS_DATA};

/// The fields of a data form, in order: `(var, values)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// The form's `type` attribute.
    pub kind: String,
    /// `(var, values)` pairs.
    pub fields: Vec<(String, Vec<String>)>,
}

impl Form {
    /// Reads an `<x xmlns='jabber:x:data'/>` element.
    pub fn parse(x: &Element) -> Form {
        let fields = x
            .children_named("field", NS_DATA)
            .filter_map(|f| {
                let var = f.get_attr("var")?.to_owned();
                let values = f
                    .children_named("value", NS_DATA)
                    .map(Element::text_content)
                    .collect();
                Some((var, values))
            })
            .collect();
        Form {
            kind: x.get_attr("type").unwrap_or_default().to_owned(),
            fields,
        }
    }

    /// The first value of a field, trimmed; `None` when absent or empty.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(v, _)| v == var)
            .and_then(|(_, vals)| vals.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The `FORM_TYPE` value.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }
}

/// A form field to send: `(type, var, value)`.
pub type FieldOut<'a> = (&'a str, &'a str, &'a str);

/// Builds `<x xmlns='jabber:x:data' type=kind>` with the given fields.
pub fn build(kind: &str, title: Option<&str>, fields: &[FieldOut<'_>]) -> Element {
    let mut x = Element::new("x", NS_DATA).attr("type", kind);
    if let Some(t) = title {
        x = x.child(Element::new("title", NS_DATA).text(t));
    }
    for (ty, var, value) in fields {
        let mut f = Element::new("field", NS_DATA)
            .attr("type", ty)
            .attr("var", var);
        if !value.is_empty() || *ty != "text-single" {
            f = f.child(Element::new("value", NS_DATA).text(value));
        }
        x = x.child(f);
    }
    x
}
