//! The HTTP API's input parsers on arbitrary bytes. Each parser is one
//! function in `SURFACES`; all run on every input, so a new parser (e.g.
//! the request head) is one function and one line in that list.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The form module is private to the HTTP server and self-contained, so the
// target compiles the same source file rather than widening the API.
#[path = "../../src/http/form.rs"]
mod form;

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

/// Every HTTP input surface, each taking the raw fuzz input.
const SURFACES: &[fn(&[u8])] = &[form_body, percent_decoding, request_head];

fuzz_target!(|data: &[u8]| {
    for surface in SURFACES {
        surface(data);
    }
});

/// A request head as the server reads it off the socket, and the client
/// address it names through trusted proxies: bounded, and a peer that is
/// not a trusted proxy is always the client.
fn request_head(data: &[u8]) {
    use push_appserver::settings::TrustedProxies;
    use push_appserver::http::request::{parse_head, MAX_HEAD};
    match parse_head(data) {
        Ok(Some(h)) => {
            assert!(h.len <= data.len() && h.len <= MAX_HEAD);
            assert!(h.path.len() <= h.len && h.method.len() <= h.len);
            let trusted = TrustedProxies(vec![
                "127.0.0.1".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ]);
            let xff = h.x_forwarded_for.as_deref();
            let fwd = h.forwarded.as_deref();
            let stranger = "192.0.2.7".parse().unwrap();
            assert_eq!(trusted.client(stranger, xff, fwd), stranger);
            let _ = trusted.client("127.0.0.1".parse().unwrap(), xff, fwd);
        }
        Ok(None) => assert!(data.len() < MAX_HEAD),
        Err(e) => assert!((400..=431).contains(&e.status())),
    }
}

/// An `application/x-www-form-urlencoded` request body, as the API reads it.
fn form_body(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let pairs = form::parse(&body);
    assert!(pairs.len() <= body.len());
    for (k, v) in &pairs {
        // Decoding never grows a byte past one U+FFFD (3 bytes).
        assert!(k.len() + v.len() <= 3 * body.len());
    }
    if let Some((k, v)) = pairs.first() {
        assert_eq!(form::get(&pairs, k), Some(v.trim()));
    }
    // The keys the API reads.
    for key in ["type", "node", "token", "secret"] {
        let _ = form::get(&pairs, key);
    }
}

/// Percent decoding in both modes: bounded output, identity on plain text,
/// and exact inverse of percent-encoding.
fn percent_decoding(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    for plus in [false, true] {
        let d = form::decode(&s, plus);
        assert!(d.len() <= 3 * s.len());
        if !s.contains('%') && !(plus && s.contains('+')) {
            assert_eq!(d, s, "plain text changed");
        }
        assert_eq!(
            form::decode(&encode(&s), plus),
            s,
            "not the inverse of encoding"
        );
    }
}

/// Percent-encodes every byte that is not unreserved (RFC 3986).
fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}
