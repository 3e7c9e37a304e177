//! Compact JWTs (RFC 7519) as the providers sign them: unpadded base64url
//! (RFC 4648 section 5) of the header and claims JSON, joined by dots, then
//! the signature over those two. The algorithm and key stay with each
//! provider (ES256 for APNS in `providers::apns::jwt`, RS256 for
//! FCM in `providers::fcm::service_account`).

/// The base64url alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 4648 section 5), as JWTs use.
pub fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Standard padded base64 (RFC 4648 section 4), as XMPP payloads carry.
pub fn base64(data: &[u8]) -> String {
    let mut out: String = base64url(data)
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while out.len() % 4 != 0 {
        out.push('=');
    }
    out
}

/// Decodes unpadded base64url; `None` for a character outside the
/// alphabet. Trailing bits that do not make a whole byte are dropped.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// A signed compact JWT, `header.claims.signature`: `sign` gets the
/// signing input (`header.claims`, each base64url-encoded JSON) and returns
/// the signature bytes or its error.
pub fn signed<S, E>(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    sign: impl FnOnce(&[u8]) -> Result<S, E>,
) -> Result<String, E>
where
    S: AsRef<[u8]>,
{
    let mut jwt = base64url(header.to_string().as_bytes());
    jwt.push('.');
    jwt.push_str(&base64url(claims.to_string().as_bytes()));
    let sig = sign(jwt.as_bytes())?;
    jwt.push('.');
    jwt.push_str(&base64url(sig.as_ref()));
    Ok(jwt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_padded_with_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64url(input.as_bytes()), want);
            assert_eq!(base64url_decode(want).unwrap(), input.as_bytes());
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_decode("-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn decode_refuses_characters_outside_the_url_alphabet() {
        for bad in ["Zm9v+", "Zm9v/", "Zm9vYg==", "Zm 9v"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn signed_joins_header_claims_and_the_signature_of_both() {
        let header = serde_json::json!({"alg": "none"});
        let claims = serde_json::json!({"iss": "me"});
        let mut input = Vec::new();
        let jwt = signed(&header, &claims, |msg| {
            input = msg.to_vec();
            Ok::<_, ()>(*b"sig")
        })
        .unwrap();
        let want_input = format!(
            "{}.{}",
            base64url(br#"{"alg":"none"}"#),
            base64url(br#"{"iss":"me"}"#)
        );
        assert_eq!(input, want_input.as_bytes());
        assert_eq!(jwt, format!("{want_input}.{}", base64url(b"sig")));
        assert_eq!(
            signed(&header, &claims, |_| Err::<[u8; 0], _>("no key")),
            Err("no key")
        );
    }
}
