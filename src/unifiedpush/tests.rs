use super::*;
use crate::xml::parse_element;

fn el(xml: &str) -> Element {
    parse_element(xml.as_bytes()).unwrap()
}

#[test]
fn answers_map_as_the_module_maps_them() {
    let error = |cond: &str| {
        el(&format!(
            "<iq type='error' from='a@x/r' id='1'><error type='cancel'>\
             <{cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ))
    };
    assert_eq!(answer_of(&el("<iq type='result' id='1'/>")).1.status, 201);
    for (cond, status) in [
        ("item-not-found", 404),
        ("feature-not-implemented", 404),
        ("service-unavailable", 503),
        ("recipient-unavailable", 503),
        ("internal-server-error", 500),
        ("bad-request", 500),
    ] {
        assert_eq!(answer_of(&error(cond)).1.status, status, "{cond}");
    }
    assert_eq!(answer_of(&el("<iq type='error' id='1'/>")).1.status, 500);
}

#[test]
fn application_and_instance_are_base64_of_32_bytes() {
    let ok = crate::jwt::base64(&[9u8; 32]);
    assert_eq!(check_sha256(&ok), Ok(()));
    assert_eq!(check_sha256(ok.trim_end_matches('=')), Ok(()));
    assert!(check_sha256("").is_err());
    assert!(check_sha256(&crate::jwt::base64(&[9u8; 31])).is_err());
    assert!(check_sha256("not base64 at all!").is_err());
    assert!(check_sha256(&"A".repeat(65)).is_err());
}
