//! Endpoint tokens: everything a relay needs (the registering full JID,
//! the application and instance, the expiry) sealed into the endpoint URL
//! itself with AES-256-GCM, so nothing is stored per endpoint and the
//! app's server, which sees the URL, learns nothing about the user. The
//! key is derived from `server.key` per component: rotating that key
//! invalidates every endpoint. Plain data and pure functions.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::jwt::{base64url, base64url_decode};

/// Format version, the first byte of a token (also authenticated).
const VERSION: u8 = 1;

/// Longest token accepted before anything is decoded: a full JID of 1,023
/// bytes and two 44-byte values fit with room to spare.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The full JID that registered; relays go to it.
    pub jid: String,
    /// `application` (base64 of 32 bytes, as sent).
    pub application: String,
    /// `instance` (base64 of 32 bytes, as sent).
    pub instance: String,
    /// Expiry, seconds since the epoch.
    pub expires: u64,
}

/// Why a token is refused. All are answered alike (404), so a caller
/// learns nothing from which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this format.
    Malformed,
    /// Not sealed with this key (forged, altered, or the key rotated).
    Forged,
    /// Past its expiry.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "not an endpoint token",
            TokenError::Forged => "not sealed with this server's key",
            TokenError::Expired => "expired",
        })
    }
}

impl std::error::Error for TokenError {}

/// The sealing key of one component.
pub struct TokenKey(LessSafeKey);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from 32 bytes (derived from the server key).
    pub fn new(bytes: &[u8; 32]) -> TokenKey {
        // 32 bytes is AES-256's key length: this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("a 256-bit key");
        TokenKey(LessSafeKey::new(unbound))
    }
}

fn put(out: &mut Vec<u8>, field: &str) {
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
}

fn take<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (field, rest) = (rest.get(..len)?, rest.get(len..)?);
    *input = rest;
    std::str::from_utf8(field).ok()
}

/// Seals `claims` with a fresh random `nonce` (12 bytes).
pub fn seal(key: &TokenKey, claims: &Claims, nonce: [u8; NONCE_LEN]) -> String {
    let mut plain = claims.expires.to_be_bytes().to_vec();
    for field in [&claims.jid, &claims.application, &claims.instance] {
        put(&mut plain, field);
    }
    // The version is authenticated, not encrypted.
    let aad = Aad::from([VERSION]);
    key.0
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad, &mut plain)
        .expect("AES-GCM seals any message this small");
    let mut token = Vec::with_capacity(1 + NONCE_LEN + plain.len());
    token.push(VERSION);
    token.extend_from_slice(&nonce);
    token.extend_from_slice(&plain);
    base64url(&token)
}

/// Opens a token at `now` (seconds since the epoch). Linear in the
/// token's length, which is bounded first.
pub fn open(key: &TokenKey, token: &str, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = base64url_decode(token).ok_or(TokenError::Malformed)?;
    let (&version, rest) = bytes.split_first().ok_or(TokenError::Malformed)?;
    if version != VERSION {
        return Err(TokenError::Malformed);
    }
    let (nonce, sealed) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(TokenError::Malformed)?;
    let mut sealed = sealed.to_vec();
    let plain = key
        .0
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from([VERSION]),
            &mut sealed,
        )
        .map_err(|_| TokenError::Forged)?;
    let (expires, mut rest) = plain
        .split_first_chunk::<8>()
        .ok_or(TokenError::Malformed)?;
    let expires = u64::from_be_bytes(*expires);
    let jid = take(&mut rest).ok_or(TokenError::Malformed)?.to_owned();
    let application = take(&mut rest).ok_or(TokenError::Malformed)?.to_owned();
    let instance = take(&mut rest).ok_or(TokenError::Malformed)?.to_owned();
    if now >= expires {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        jid,
        application,
        instance,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            jid: "alice@example.org/phone".into(),
            application: "a".repeat(43) + "=",
            instance: "b".repeat(43) + "=",
            expires: 1_000,
        }
    }

    #[test]
    fn a_sealed_token_opens_with_its_key_until_it_expires() {
        let key = TokenKey::new(&[7; 32]);
        let t = seal(&key, &claims(), [1; 12]);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(open(&key, &t, 999).unwrap(), claims());
        assert_eq!(open(&key, &t, 1_000), Err(TokenError::Expired));
        // Nothing of the JID is readable in the token.
        let raw = base64url_decode(&t).unwrap();
        assert!(!raw.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn altered_forged_and_foreign_tokens_are_refused() {
        let key = TokenKey::new(&[7; 32]);
        let t = seal(&key, &claims(), [1; 12]);
        let other = TokenKey::new(&[8; 32]);
        assert_eq!(open(&other, &t, 0), Err(TokenError::Forged));
        let mut raw = base64url_decode(&t).unwrap();
        let last = raw.len() - 20;
        raw[last] ^= 1;
        assert_eq!(open(&key, &base64url(&raw), 0), Err(TokenError::Forged));
        raw[0] = 2;
        assert_eq!(open(&key, &base64url(&raw), 0), Err(TokenError::Malformed));
        for bad in ["", "!!!", "AQ", &"A".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(open(&key, bad, 0), Err(TokenError::Malformed), "{bad:?}");
        }
    }
}
