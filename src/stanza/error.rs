//! Stanza errors (RFC 6120 section 8.3) and iq replies.

use crate::xml::{Element, NS_CLIENT, NS_COMPONENT, NS_SERVER, NS_STANZAS};

/// The `type` of a stanza error: what the sender should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Do not retry.
    Cancel,
    /// Retry after changing the request.
    Modify,
    /// Retry later.
    Wait,
    /// Retry with other credentials.
    Auth,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Cancel => "cancel",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
            ErrorType::Auth => "auth",
        }
    }
}

/// A stanza error to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// Error type.
    pub kind: ErrorType,
    /// Defined condition, e.g. `item-not-found`.
    pub condition: &'static str,
    /// Human readable explanation.
    pub text: Option<String>,
}

impl StanzaError {
    /// An error with an explanation.
    pub fn new(kind: ErrorType, condition: &'static str, text: impl Into<String>) -> Self {
        StanzaError {
            kind,
            condition,
            text: Some(text.into()),
        }
    }

    /// `modify/bad-request` with a reason.
    pub fn bad_request(text: impl Into<String>) -> Self {
        Self::new(ErrorType::Modify, "bad-request", text)
    }

    /// `cancel/item-not-found` with a reason.
    pub fn item_not_found(text: impl Into<String>) -> Self {
        Self::new(ErrorType::Cancel, "item-not-found", text)
    }

    /// `cancel/service-unavailable`, for iqs nobody handles.
    pub fn service_unavailable() -> Self {
        StanzaError {
            kind: ErrorType::Cancel,
            condition: "service-unavailable",
            text: None,
        }
    }

    /// `wait/remote-server-timeout` with a reason.
    pub fn remote_server_timeout(text: impl Into<String>) -> Self {
        Self::new(ErrorType::Wait, "remote-server-timeout", text)
    }

    /// `modify/policy-violation` with a reason (a stanza over a limit).
    pub fn policy_violation(text: impl Into<String>) -> Self {
        Self::new(ErrorType::Modify, "policy-violation", text)
    }

    /// `wait/internal-server-error` with a reason.
    pub fn internal(text: impl Into<String>) -> Self {
        Self::new(ErrorType::Wait, "internal-server-error", text)
    }

    /// The `<error/>` element.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("error", NS_COMPONENT)
            .attr("type", self.kind.as_str())
            .child(Element::new(self.condition, NS_STANZAS));
        if let Some(t) = &self.text {
            e = e.child(
                Element::new("text", NS_STANZAS)
                    .attr("xml:lang", "en")
                    .text(t),
            );
        }
        e
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.condition)?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

/// The addressing of an iq, kept to build its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IqHeader {
    /// Sender (reply goes here).
    pub from: String,
    /// The `id` to echo.
    pub id: String,
}

/// Whether a stanza is an iq request (type `get` or `set`) in a stanza
/// namespace: exactly these must get exactly one answer. Servers forward
/// stanzas as `jabber:component:accept`, some as `jabber:client`.
pub fn is_iq_request(stanza: &Element) -> bool {
    stanza.name == "iq"
        && [NS_COMPONENT, NS_CLIENT, NS_SERVER].contains(&&*stanza.ns)
        && matches!(stanza.get_attr("type"), Some("get" | "set"))
}

impl IqHeader {
    /// The header of an iq request (see [`is_iq_request`]), else `None`.
    pub fn of_request(stanza: &Element) -> Option<Self> {
        is_iq_request(stanza).then(|| Self::of(stanza))
    }

    /// Reads `from` and `id` of a stanza (empty when missing).
    pub fn of(stanza: &Element) -> Self {
        IqHeader {
            from: stanza.get_attr("from").unwrap_or_default().to_owned(),
            id: stanza.get_attr("id").unwrap_or_default().to_owned(),
        }
    }

    /// A `type='result'` reply from `our_jid`, with an optional payload.
    pub fn result(&self, our_jid: &str, payload: Option<Element>) -> Element {
        let mut iq = self.reply(our_jid, "result");
        if let Some(p) = payload {
            iq = iq.child(p);
        }
        iq
    }

    /// A `type='error'` reply from `our_jid`.
    pub fn error(&self, our_jid: &str, err: &StanzaError) -> Element {
        self.reply(our_jid, "error").child(err.to_element())
    }

    fn reply(&self, our_jid: &str, kind: &str) -> Element {
        Element::new("iq", NS_COMPONENT)
            .attr("type", kind)
            .attr("from", our_jid)
            .attr_opt("to", Some(self.from.as_str()).filter(|f| !f.is_empty()))
            .attr("id", &self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iq_requests_in_any_stanza_namespace() {
        let req = |xml: &str| is_iq_request(&crate::xml::parse_element(xml.as_bytes()).unwrap());
        assert!(req("<iq type='get'/>"));
        assert!(req("<iq xmlns='jabber:client' type='set'/>"));
        assert!(req("<iq xmlns='jabber:server' type='get'/>"));
        assert!(!req("<iq xmlns='urn:other' type='get'/>"));
        assert!(!req("<iq type='result'/>"));
        assert!(!req("<iq/>"));
        assert!(!req("<message type='get'/>"));
    }

    #[test]
    fn error_reply_shape() {
        let h = IqHeader {
            from: "user@example.com".into(),
            id: "n1".into(),
        };
        let s = h
            .error(
                "push.example.org",
                &StanzaError::item_not_found("unknown node"),
            )
            .to_stanza_string();
        assert_eq!(
            s,
            "<iq type='error' from='push.example.org' to='user@example.com' id='n1'>\
             <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>unknown node</text>\
             </error></iq>"
        );
    }
}
