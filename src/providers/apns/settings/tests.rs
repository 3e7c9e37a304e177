//! Config validation of `provider = "apns"`: every bad input gets an error
//! naming `app.<type>.<key>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ApnsAuth, ApnsSettings, MAX_TTL, SANDBOX_ENDPOINT};
use crate::providers::PriorityPolicy;
use crate::settings::{ConfigContext, ConfigError};

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "apns-settings-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Files {
    dir: TempDir,
    p8: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    combined: PathBuf,
}

fn files() -> Files {
    let dir = TempDir::new("files");
    let p8_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p8 = dir.write("AuthKey.p8", &p8_key.serialize_pem());
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let cert_pem = rcgen::CertificateParams::new(vec!["apns client".into()])
        .unwrap()
        .self_signed(&key_pair)
        .unwrap()
        .pem();
    let cert = dir.write("apns.crt", &cert_pem);
    let key = dir.write("apns.key", &key_pair.serialize_pem());
    let combined = dir.write(
        "apns.pem",
        &format!("{cert_pem}\n{}", key_pair.serialize_pem()),
    );
    Files {
        dir,
        p8,
        cert,
        key,
        combined,
    }
}

fn parse(dir: &Path, toml_text: &str) -> Result<ApnsSettings, ConfigError> {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    let ctx = ConfigContext::for_file(&dir.join("appserver.toml"));
    ApnsSettings::from_table("app.apns", table, &ctx)
}

fn token_config(f: &Files) -> String {
    format!(
        "topic = \"org.example.chat\"\nauth_key = {:?}\nkey_id = \"ABC123DEFG\"\nteam_id = \"TEAM123456\"\n",
        f.p8.file_name().unwrap().to_str().unwrap()
    )
}

fn err(dir: &Path, text: &str) -> ConfigError {
    parse(dir, text).expect_err(text)
}

#[test]
fn token_auth_with_defaults() {
    let f = files();
    let s = parse(&f.dir.0, &token_config(&f)).unwrap();
    assert!(s.sandbox);
    assert_eq!(
        format!("https://{}", s.endpoint.authority()),
        SANDBOX_ENDPOINT
    );
    assert_eq!(s.push_priority, PriorityPolicy::Auto);
    assert!(s.mutable_content);
    assert_eq!(s.ttl, MAX_TTL);
    assert!(!s.collapse_pushes);
    assert_eq!(s.alert.sound.as_deref(), Some("default"));
    // Relative paths resolve against the config file's folder.
    assert!(matches!(&s.auth, ApnsAuth::Token { key_file, .. } if key_file == &f.p8));
    let described = s.describe();
    assert!(described.contains(&("provider".into(), "\"apns\"".into())));
    assert!(described.contains(&("key_id".into(), "\"ABC123DEFG\"".into())));
}

#[test]
fn production_endpoint_and_options() {
    let f = files();
    let text = format!(
        "{}sandbox = false\npush_priority = \"voip\"\npush_ttl = 3600\ncollapse_pushes = true\n\
         push_alert = \"Ring\"\npush_alert_title = \"Chat\"\npush_sound = \"\"\nmutable_content = false\n\
         feedback_request_interval = 86400\n",
        token_config(&f)
    );
    let s = parse(&f.dir.0, &text).unwrap();
    assert_eq!(s.endpoint.host, "api.push.apple.com");
    assert_eq!(s.push_priority, PriorityPolicy::Voip);
    assert_eq!(s.ttl, Duration::from_secs(3600));
    assert!(s.collapse_pushes && !s.mutable_content && s.feedback_interval_given);
    assert_eq!(s.alert.title.as_deref(), Some("Chat"));
    assert_eq!(s.alert.body, "Ring");
    assert_eq!(s.alert.sound, None);
}

#[test]
fn certificate_auth_separate_or_combined() {
    let f = files();
    let text = format!(
        "topic = \"org.example.chat\"\ncert = {:?}\nkey = {:?}\n",
        f.cert.display().to_string(),
        f.key.display().to_string()
    );
    let s = parse(&f.dir.0, &text).unwrap();
    assert_eq!(
        s.auth,
        ApnsAuth::Certificate {
            cert: f.cert.clone(),
            key: f.key.clone()
        }
    );
    let text = format!(
        "topic = \"org.example.chat\"\ncert = {:?}\n",
        f.combined.display().to_string()
    );
    let s = parse(&f.dir.0, &text).unwrap();
    assert_eq!(
        s.auth,
        ApnsAuth::Certificate {
            cert: f.combined.clone(),
            key: f.combined.clone()
        }
    );
    // A certificate without its key.
    let text = format!(
        "topic = \"org.example.chat\"\ncert = {:?}\n",
        f.cert.display().to_string()
    );
    let e = err(&f.dir.0, &text);
    assert_eq!(e.key, "app.apns.cert");
    assert!(e.reason.contains("private key"), "{}", e.reason);
}

#[test]
fn bad_configs_name_the_key() {
    let f = files();
    let d = &f.dir.0;
    let tok = token_config(&f);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            tok.replace("topic = \"org.example.chat\"\n", ""),
            "app.apns.topic",
            "missing",
        ),
        (
            tok.replace("org.example.chat", "org.example.chat.voip"),
            "app.apns.topic",
            ".voip",
        ),
        (
            format!("{tok}push_priority = \"normal\"\n"),
            "app.apns.push_priority",
            "normal",
        ),
        (
            format!("{tok}push_ttl = 0\n"),
            "app.apns.push_ttl",
            "seconds",
        ),
        (
            format!("{tok}push_ttl = 99999999\n"),
            "app.apns.push_ttl",
            "seconds",
        ),
        (
            format!("{tok}ciphers = \"HIGH\"\n"),
            "app.apns.ciphers",
            "rustls",
        ),
        (
            format!("{tok}endpoint = \"http://127.0.0.1:1\"\n"),
            "app.apns.endpoint",
            "https://",
        ),
        (
            format!("{tok}capath = \"/nonexistent/ca\"\n"),
            "app.apns.capath",
            "/nonexistent/ca",
        ),
        (
            format!("{tok}colour = \"blue\"\n"),
            "app.apns.colour",
            "unknown field",
        ),
        (
            format!("{tok}sandbox = \"yes\"\n"),
            "app.apns.sandbox",
            "boolean",
        ),
        (tok.replace("ABC123DEFG", "short"), "app.apns.key_id", "10"),
        (
            tok.replace("key_id = \"ABC123DEFG\"\n", ""),
            "app.apns.key_id",
            "missing",
        ),
        (
            tok.replace("TEAM123456", "TEAM-12345"),
            "app.apns.team_id",
            "10",
        ),
        (
            tok.replace("AuthKey.p8", "missing.p8"),
            "app.apns.auth_key",
            "missing.p8",
        ),
        (
            tok.replace("AuthKey.p8", "apns.crt"),
            "app.apns.auth_key",
            "private key",
        ),
        (
            format!("{tok}cert = {:?}\n", f.cert.display().to_string()),
            "app.apns",
            "choose one",
        ),
        (
            "topic = \"org.example.chat\"\n".to_owned(),
            "app.apns",
            "no authentication",
        ),
    ];
    for (text, key, needle) in cases {
        let e = err(d, &text);
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.reason.contains(needle), "{text}: {e}");
    }
}

#[test]
fn capath_accepts_a_file_or_a_folder_of_pem_files() {
    let f = files();
    let tok = token_config(&f);
    let s = parse(&f.dir.0, &format!("{tok}capath = \"apns.crt\"\n")).unwrap();
    assert_eq!(s.extra_ca.as_deref(), Some(f.cert.as_path()));
    let s = parse(&f.dir.0, &format!("{tok}capath = \".\"\n")).unwrap();
    assert!(s.extra_ca.unwrap().is_dir());
    let e = err(&f.dir.0, &format!("{tok}capath = \"apns.key\"\n"));
    assert_eq!(e.key, "app.apns.capath");
}
