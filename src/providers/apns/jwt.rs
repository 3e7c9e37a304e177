//! APNS provider tokens: ES256 JWTs signed with the `.p8` key. Apple
//! rejects tokens older than an hour and answers
//! `TooManyProviderTokenUpdates` when they change more often than every 20
//! minutes, so one token is reused for [`REUSE_FOR`] and never replaced
//! sooner than [`MIN_REFRESH`]. Time comes from a [`Clock`], so tests move
//! it instead of sleeping.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls::pki_types::PrivateKeyDer;

use crate::clock::{unix_secs, Clock};
use crate::h2client::tls;
use crate::jwt;

/// How long one token is used.
pub const REUSE_FOR: Duration = Duration::from_secs(50 * 60);
/// Tokens are never replaced sooner than this, even when Apple says one
/// expired.
pub const MIN_REFRESH: Duration = Duration::from_secs(20 * 60);

/// A `.p8` key that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The file has no PEM private key.
    Read(tls::TlsError),
    /// Not a PKCS#8 key.
    NotPkcs8(PathBuf),
    /// Not a P-256 key ring accepts (it needs the public key included,
    /// as in Apple's files).
    Rejected {
        /// Which file.
        path: PathBuf,
        /// ring's reason.
        reason: String,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Read(e) => e.fmt(f),
            KeyError::NotPkcs8(p) => write!(f, "{} is not a PKCS#8 (.p8) key", p.display()),
            KeyError::Rejected { path, reason } => write!(
                f,
                "{} is not a P-256 .p8 key as Apple issues them: {reason}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Reads a `.p8` key.
pub fn load_key(path: &Path) -> Result<EcdsaKeyPair, KeyError> {
    let der = match tls::load_private_key(path).map_err(KeyError::Read)? {
        PrivateKeyDer::Pkcs8(der) => der,
        _ => return Err(KeyError::NotPkcs8(path.to_path_buf())),
    };
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        der.secret_pkcs8_der(),
        &SystemRandom::new(),
    )
    .map_err(|e| KeyError::Rejected {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[derive(Debug)]
struct Cached {
    token: Arc<str>,
    made: Instant,
    /// Apple called it expired or invalid: replace it when allowed.
    stale: bool,
}

/// Makes and caches the provider token of one key.
pub struct TokenCache {
    key: EcdsaKeyPair,
    key_id: String,
    team_id: String,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
    cached: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache for `key`, identified to Apple by `key_id` and `team_id`.
    pub fn new(key: EcdsaKeyPair, key_id: &str, team_id: &str, clock: Arc<dyn Clock>) -> Self {
        TokenCache {
            key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            clock,
            rng: SystemRandom::new(),
            cached: Mutex::new(None),
        }
    }

    /// The Key ID tokens are made for.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The token to send now: the cached one while it is young enough,
    /// else a fresh one.
    pub fn token(&self) -> Result<Arc<str>, ring::error::Unspecified> {
        let now = self.clock.instant();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref() {
            let age = now.saturating_duration_since(c.made);
            let due = age >= REUSE_FOR || (c.stale && age >= MIN_REFRESH);
            if !due {
                return Ok(c.token.clone());
            }
        }
        let token: Arc<str> = self.sign(unix_secs(self.clock.now()))?.into();
        *cached = Some(Cached {
            token: token.clone(),
            made: now,
            stale: false,
        });
        Ok(token)
    }

    /// Apple rejected `token` as expired or invalid: replace it as soon as
    /// [`MIN_REFRESH`] allows.
    pub fn reject(&self, token: &str) {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_mut().filter(|c| &*c.token == token) {
            c.stale = true;
        }
    }

    /// `header.claims.signature` for a token issued at `iat`.
    fn sign(&self, iat: u64) -> Result<String, ring::error::Unspecified> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let claims = serde_json::json!({"iss": self.team_id, "iat": iat});
        jwt::signed(&header, &claims, |input| self.key.sign(&self.rng, input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::jwt::{base64url, base64url_decode};
    use ring::signature::{KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use std::time::SystemTime;

    fn cache() -> (TokenCache, Arc<ManualClock>, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = key.public_key().as_ref().to_vec();
        let clock = Arc::new(ManualClock::at(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ));
        (
            TokenCache::new(key, "ABC123DEFG", "TEAM123456", clock.clone()),
            clock,
            public,
        )
    }

    #[test]
    fn token_is_a_verifiable_es256_jwt() {
        let (cache, _, public) = cache();
        let token = cache.token().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            base64url(br#"{"alg":"ES256","kid":"ABC123DEFG"}"#)
        );
        assert_eq!(
            parts[1],
            base64url(br#"{"iat":1700000000,"iss":"TEAM123456"}"#)
        );
        let sig = base64url_decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(signed.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn token_is_reused_for_50_minutes_then_replaced() {
        let (cache, clock, _) = cache();
        let first = cache.token().unwrap();
        clock.advance(Duration::from_secs(49 * 60));
        assert_eq!(cache.token().unwrap(), first);
        clock.advance(Duration::from_secs(60));
        let second = cache.token().unwrap();
        assert_ne!(second, first);
        assert_eq!(cache.token().unwrap(), second);
    }

    #[test]
    fn rejected_token_is_replaced_no_sooner_than_20_minutes() {
        let (cache, clock, _) = cache();
        let first = cache.token().unwrap();
        cache.reject(&first);
        clock.advance(Duration::from_secs(19 * 60));
        assert_eq!(cache.token().unwrap(), first);
        clock.advance(Duration::from_secs(60));
        let second = cache.token().unwrap();
        assert_ne!(second, first);
        // Rejecting an old token does not mark the new one.
        cache.reject(&first);
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(cache.token().unwrap(), second);
    }
}
