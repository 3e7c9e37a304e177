//! The Google service-account JSON (who we are to Google) and the signed
//! RS256 JWT assertion that [`super::oauth`] exchanges for an access token.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::PrivateKeyDer;
use serde::Deserialize;

use crate::clock::unix_secs;
use crate::jwt;

/// OAuth scope that allows sending FCM messages.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// Lifetime of an assertion; Google accepts at most one hour.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// A loaded service account: the identity and its RSA signing key.
pub struct ServiceAccount {
    /// `client_email`, the JWT issuer.
    pub client_email: String,
    /// `project_id`, if the file has one.
    pub project_id: Option<String>,
    /// `token_uri`, the JWT audience and the default token endpoint.
    pub token_uri: String,
    /// `private_key_id`, sent as the JWT `kid` when present.
    pub private_key_id: Option<String>,
    key: RsaKeyPair,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"********")
            .finish()
    }
}

/// Why a service-account file was refused. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountError(pub String);

impl fmt::Display for ServiceAccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServiceAccountError {}

#[derive(Deserialize)]
struct RawAccount {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

fn err(reason: impl Into<String>) -> ServiceAccountError {
    ServiceAccountError(reason.into())
}

impl ServiceAccount {
    /// Reads and validates a service-account JSON file.
    pub fn load(path: &Path) -> Result<Self, ServiceAccountError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// Parses a service-account JSON document.
    pub fn from_json(text: &str) -> Result<Self, ServiceAccountError> {
        // serde_json's message may quote input, which could be key material.
        let raw: RawAccount = serde_json::from_str(text).map_err(|e| {
            err(format!(
                "not a JSON service-account file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(err(format!(
                "\"type\" is {kind:?}, expected \"service_account\" (download the key from \
                 Firebase console > Project settings > Service accounts)"
            )));
        }
        let present = |v: Option<String>, name: &str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or_else(|| err(format!("missing \"{name}\"")))
        };
        let client_email = present(raw.client_email, "client_email")?;
        let token_uri = present(raw.token_uri, "token_uri")?;
        let pem = present(raw.private_key, "private_key")?;
        let key = parse_rsa_key(&pem)?;
        Ok(ServiceAccount {
            client_email,
            project_id: raw.project_id.filter(|s| !s.is_empty()),
            token_uri,
            private_key_id: raw.private_key_id.filter(|s| !s.is_empty()),
            key,
        })
    }

    /// A signed JWT asserting our identity to `token_uri`, valid from `now`
    /// for [`ASSERTION_LIFETIME`].
    pub fn assertion(&self, now: SystemTime) -> Result<String, ServiceAccountError> {
        let iat = unix_secs(now);
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        jwt::signed(&header, &claims, |input| {
            let mut sig = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut sig)
                .map(|()| sig)
                .map_err(|_| err("RSA signing failed"))
        })
    }
}

/// The RSA key of a `private_key` PEM (PKCS#8 as Google issues it, or PKCS#1).
fn parse_rsa_key(pem: &str) -> Result<RsaKeyPair, ServiceAccountError> {
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| err("\"private_key\" holds no PEM private key"))?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(err("\"private_key\" is not an RSA key")),
    };
    parsed.map_err(|e| err(format!("\"private_key\" is not a usable RSA key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::base64url_decode;

    const KEY: &str = include_str!("../../../tests/data/fcm-test-key.pem");

    fn account() -> serde_json::Value {
        serde_json::json!({
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "kid1",
            "private_key": KEY,
            "client_email": "push@demo-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
    }

    fn account_json() -> String {
        account().to_string()
    }

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt_with_the_right_claims() {
        let acct = ServiceAccount::from_json(&account_json()).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = acct.assertion(now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            acct.key.public().as_ref().to_vec(),
        );
        let sig = base64url_decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &sig).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid1");
        let claims: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "push@demo-project.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);
    }

    #[test]
    fn refuses_incomplete_or_foreign_files_without_echoing_them() {
        let e = ServiceAccount::from_json("{\"private_key\": \"-----BEGIN").unwrap_err();
        assert!(!e.0.contains("BEGIN"), "{e}");
        let mut user = account();
        user["type"] = "authorized_user".into();
        let e = ServiceAccount::from_json(&user.to_string()).unwrap_err();
        assert!(e.0.contains("authorized_user"), "{e}");
        let no_email = account_json().replace("client_email", "client_mail");
        assert_eq!(
            ServiceAccount::from_json(&no_email).unwrap_err().0,
            "missing \"client_email\""
        );
        let bad_key = account_json().replace("MII", "XXX");
        assert!(ServiceAccount::from_json(&bad_key).is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let acct = ServiceAccount::from_json(&account_json()).unwrap();
        let shown = format!("{acct:?}");
        assert!(shown.contains("********") && !shown.contains("PRIVATE"));
    }
}
