//! The UnifiedPush registration, as Conversations sends it to a push
//! provider (docs/protocols.md section 9): `<register/>` with
//! `application` and `instance`, answered `<registered/>` with the
//! endpoint and its expiry. The endpoint itself is served by the HTTP API;
//! both sides call [`crate::unifiedpush::UnifiedPush`].

use crate::clock::rfc3339;
use crate::stanza::{ErrorType, StanzaError};
use crate::unifiedpush::{RegisterError, UnifiedPush, NS_UP};
use crate::xml::Element;

/// Registers the `<register/>` payload `register` of `from` at `component`
/// and builds the `<registered/>` answer.
pub fn run(
    service: &UnifiedPush,
    component: &str,
    from: &str,
    register: &Element,
) -> Result<Element, StanzaError> {
    let application = register.get_attr("application").unwrap_or_default();
    let instance = register.get_attr("instance").unwrap_or_default();
    let r = service
        .register(component, from, application, instance)
        .map_err(|e| stanza_error(&e))?;
    Ok(Element::new("registered", NS_UP)
        .attr("expiration", &rfc3339(r.expires))
        .attr("endpoint", &r.endpoint))
}

/// The XMPP error for a refused registration (as the module answers).
fn stanza_error(e: &RegisterError) -> StanzaError {
    let text = e.to_string();
    match e {
        RegisterError::NotOffered => StanzaError::service_unavailable(),
        RegisterError::NotServed => StanzaError::new(ErrorType::Auth, "forbidden", text),
        RegisterError::BadRequest(_) => StanzaError::bad_request(text),
        RegisterError::RateLimited => {
            StanzaError::new(ErrorType::Wait, "resource-constraint", text)
        }
    }
}
