//! The mock Apple of the APNS tests: a [`h2_mock`](super::h2_mock) server
//! that checks every request as APNS would (path, headers, payload size,
//! the ES256 JWT or the client certificate), plus a log capture.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::h2_mock::{self, MockOptions, MockRequest, MockServer, Reply};
use super::pki::{Pki, TempDir};
use push_appserver::clock::unix_secs;
use push_appserver::config::ConfigContext;
use push_appserver::jwt::base64url_decode;
use push_appserver::providers::apns::{ApnsProvider, ApnsSettings};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

pub const TOPIC: &str = "org.example.chat";
pub const KEY_ID: &str = "ABC123DEFG";
pub const TEAM_ID: &str = "TEAM123456";

// ---- captured logs -------------------------------------------------------

pub struct Capture(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        self.0
            .lock()
            .unwrap()
            .push((r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

pub fn logs() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

/// Log lines at `level` or more severe that contain `needle`.
pub fn logged(level: log::Level, needle: &str) -> usize {
    let lines = logs().0.lock().unwrap();
    lines
        .iter()
        .filter(|(l, m)| *l <= level && m.contains(needle))
        .count()
}

// ---- the mock Apple --------------------------------------------------------

/// What the mock Apple checks and what it saw.
pub struct Apple {
    pub server: MockServer,
    pub pki: Pki,
    pub files: TempDir,
    /// Every distinct JWT presented.
    pub jwts: Arc<Mutex<HashSet<String>>>,
}

/// Auth the mock expects.
#[derive(Clone)]
pub enum Expect {
    /// ES256 JWTs verifiable with this P-256 public key.
    Token(Vec<u8>),
    /// This client certificate (DER).
    Cert(Vec<u8>),
}

/// Checks one request as Apple would; `Err` is the 4xx Apple would send.
pub fn check(r: &MockRequest, expect: &Expect, jwts: &Mutex<HashSet<String>>) -> Result<(), Reply> {
    let bad =
        |status: u16, reason: &str| Reply::status(status, &format!(r#"{{"reason":"{reason}"}}"#));
    let token = r
        .path
        .strip_prefix("/3/device/")
        .ok_or_else(|| bad(404, "BadPath"))?;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(400, "BadDeviceToken"));
    }
    if r.method != http::Method::POST {
        return Err(bad(405, "MethodNotAllowed"));
    }
    let push_type = r
        .header("apns-push-type")
        .ok_or_else(|| bad(400, "InvalidPushType"))?;
    let topic = r
        .header("apns-topic")
        .ok_or_else(|| bad(400, "MissingTopic"))?;
    let want_topic = if push_type == "voip" {
        format!("{TOPIC}.voip")
    } else {
        TOPIC.to_owned()
    };
    if topic != want_topic {
        return Err(bad(400, "DeviceTokenNotForTopic"));
    }
    let priority = r.header("apns-priority").unwrap_or("10");
    if push_type == "background" && priority != "5" {
        return Err(bad(400, "BadPriority"));
    }
    let expiration: u64 = r
        .header("apns-expiration")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| bad(400, "BadExpirationDate"))?;
    if expiration != 0 && expiration < unix_secs(SystemTime::now()) {
        return Err(bad(400, "BadExpirationDate"));
    }
    let limit = if push_type == "voip" { 5120 } else { 4096 };
    if r.body.len() > limit {
        return Err(bad(413, "PayloadTooLarge"));
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|_| bad(400, "PayloadEmpty"))?;
    if payload.get("aps").is_none() {
        return Err(bad(400, "PayloadEmpty"));
    }
    match expect {
        Expect::Token(public) => {
            let auth = r
                .header("authorization")
                .ok_or_else(|| bad(403, "MissingProviderToken"))?;
            let jwt = auth
                .strip_prefix("bearer ")
                .ok_or_else(|| bad(403, "InvalidProviderToken"))?;
            verify_jwt(jwt, public).map_err(|why| bad(403, why))?;
            jwts.lock().unwrap().insert(jwt.to_owned());
        }
        Expect::Cert(der) => {
            if r.client_cert.as_deref() != Some(&der[..]) {
                return Err(bad(403, "BadCertificate"));
            }
            if r.header("authorization").is_some() {
                return Err(bad(400, "UnexpectedAuthorization"));
            }
        }
    }
    Ok(())
}

pub fn verify_jwt(jwt: &str, public: &[u8]) -> Result<(), &'static str> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, sig] = parts[..] else {
        return Err("InvalidProviderToken");
    };
    let json = |part: &str| -> Result<serde_json::Value, &'static str> {
        let bytes = base64url_decode(part).ok_or("InvalidProviderToken")?;
        serde_json::from_slice(&bytes).map_err(|_| "InvalidProviderToken")
    };
    let (header, claims) = (json(header)?, json(claims)?);
    if header["alg"] != "ES256" || header["kid"] != KEY_ID || claims["iss"] != TEAM_ID {
        return Err("InvalidProviderToken");
    }
    let iat = claims["iat"].as_u64().ok_or("InvalidProviderToken")?;
    if iat + 3600 < unix_secs(SystemTime::now()) {
        return Err("ExpiredProviderToken");
    }
    let sig = base64url_decode(sig).ok_or("InvalidProviderToken")?;
    let signed = &jwt[..jwt.rfind('.').unwrap()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| "InvalidProviderToken")
}

pub type Behaviour = Arc<dyn Fn(&MockRequest) -> Reply + Send + Sync>;

impl Apple {
    /// A mock Apple for token auth; `behaviour` answers requests that pass
    /// the checks.
    pub async fn token(opts: MockOptions, behaviour: Behaviour) -> Apple {
        let files = TempDir::new("apns");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        files.write("AuthKey.p8", key.serialize_pem());
        Apple::start(
            files,
            Expect::Token(key.public_key_raw().to_vec()),
            opts,
            behaviour,
        )
        .await
    }

    /// A mock Apple for certificate auth; the client PEM is `client.pem`.
    pub async fn cert(behaviour: Behaviour, not_after: SystemTime) -> Apple {
        let files = TempDir::new("apns-cert");
        let pki = Pki::new();
        let (pem, der) = pki.client_pem("client", not_after);
        std::fs::copy(pem, files.0.join("client.pem")).unwrap();
        let opts = MockOptions {
            client_auth: true,
            ..MockOptions::default()
        };
        Apple::start_with(pki, files, Expect::Cert(der), opts, behaviour).await
    }

    pub async fn start(
        files: TempDir,
        expect: Expect,
        opts: MockOptions,
        behaviour: Behaviour,
    ) -> Apple {
        Apple::start_with(Pki::new(), files, expect, opts, behaviour).await
    }

    pub async fn start_with(
        pki: Pki,
        files: TempDir,
        expect: Expect,
        opts: MockOptions,
        behaviour: Behaviour,
    ) -> Apple {
        let jwts = Arc::new(Mutex::new(HashSet::new()));
        let j = jwts.clone();
        let handler: h2_mock::Handler = Arc::new(move |r| match check(r, &expect, &j) {
            Ok(()) => behaviour(r),
            Err(reply) => reply,
        });
        let server = h2_mock::start(&pki, opts, handler).await;
        Apple {
            server,
            pki,
            files,
            jwts,
        }
    }

    pub fn config(&self, extra: &str) -> ApnsSettings {
        let auth = if self.files.0.join("AuthKey.p8").exists() {
            format!("auth_key = \"AuthKey.p8\"\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n")
        } else {
            "cert = \"client.pem\"\n".to_owned()
        };
        let text = format!(
            "topic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\n{auth}{extra}",
            self.server.url(),
            self.pki.ca_pem.display().to_string(),
        );
        let table: toml::Table = toml::from_str(&text).unwrap();
        let ctx = ConfigContext::for_file(&self.files.0.join("appserver.toml"));
        let mut s = ApnsSettings::from_table("app.apns", table, &ctx).unwrap();
        s.tuning.backoff = Duration::from_millis(10);
        s.tuning.max_backoff = Duration::from_millis(40);
        s
    }

    pub fn provider(&self, extra: &str) -> ApnsProvider {
        ApnsProvider::new(&self.config(extra)).unwrap()
    }

    pub fn jwt_count(&self) -> usize {
        self.jwts.lock().unwrap().len()
    }
}

pub fn ok() -> Behaviour {
    Arc::new(|_| Reply::ok())
}
