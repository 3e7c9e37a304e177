//! Issue 18: `push-appserver doctor` proves a configuration against the
//! real peers before a user's missing notification does: the mock Apple
//! (HTTP/2, TLS, JWT checked with the key's public half), the mock FCM and
//! Google OAuth endpoints, a fake XMPP server's handshake, and the HTTP
//! listener, from the binary's exit code and its one line per check.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::apple::{self, Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::fcm_mock::{self, Answer};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::harness::*;

const FAKE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Apple as it answers a well-formed token that belongs to no device.
fn apple() -> Apple {
    let behaviour: apple::Behaviour = Arc::new(|r| {
        if r.path.ends_with(FAKE) {
            Reply::status(400, r#"{"reason":"BadDeviceToken"}"#)
        } else {
            Reply::ok()
        }
    });
    smol::block_on(Apple::token(MockOptions::default(), behaviour))
}

fn apns_app(apple: &Apple, key: &str) -> String {
    format!(
        "provider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\n\
         auth_key = {key:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
    )
}

fn write_config(dir: &TempDir, xmpp: u16, http: u16, apps: &[(&str, String)]) -> String {
    let types: Vec<String> = apps.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let mut text = format!(
        "data_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [{}]\n",
        dir.0.join("data").display(),
        types.join(", ")
    );
    for (name, body) in apps {
        text.push_str(&format!("[app.{name}]\n{body}"));
    }
    let path = dir.path("doctor.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs doctor; the handshake side of `xmpp` (if any) is served in a thread.
fn doctor(config: &str, extra: &[&str], xmpp: Option<(FakeXmpp, &'static str)>) -> (i32, String) {
    let server = xmpp.map(|(x, secret)| {
        std::thread::spawn(move || {
            let mut c = x.accept_raw(Duration::from_secs(20));
            let _ = c.handshake(secret);
            // Doctor closes its stream after the answer.
            c.closed_within(Duration::from_secs(5))
        })
    });
    let out = Command::new(env!("CARGO_BIN_EXE_push-appserver"))
        .args(["doctor", "-c", config])
        .args(extra)
        .output()
        .unwrap();
    if let Some(s) = server {
        assert!(s.join().unwrap(), "doctor closes its component stream");
    }
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn line<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(&format!("{what}:")))
        .unwrap_or_else(|| panic!("no line for {what}: {text}"))
}

#[test]
fn doctor_proves_apns_fcm_the_handshake_and_the_listener() {
    let apple = apple();
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    // FCM's answer to a validate_only send to a token of no device.
    google.fcm.script([Answer::error(
        400,
        "INVALID_ARGUMENT",
        Some("INVALID_ARGUMENT"),
    )]);
    let dir = TempDir::new("doctor-ok");
    let x = FakeXmpp::new();
    let key = apple.files.0.join("AuthKey.p8").display().to_string();
    let config = write_config(
        &dir,
        x.port,
        free_port(),
        &[
            ("apns", apns_app(&apple, &key)),
            ("fcm", format!("provider = \"fcm\"\n{}", google.config())),
            ("logged", "provider = \"log\"\n".to_owned()),
        ],
    );
    let (code, out) = doctor(&config, &[], Some((x, SECRET)));
    assert_eq!(code, 0, "{out}");
    assert!(line(&out, "app apns").starts_with("ok"), "{out}");
    assert!(line(&out, "app apns").contains("BadDeviceToken"), "{out}");
    assert!(line(&out, "app fcm").starts_with("ok"), "{out}");
    assert!(line(&out, "app logged").starts_with("warn"), "{out}");
    assert!(
        line(&out, "component push.example.org").starts_with("ok"),
        "{out}"
    );
    assert!(line(&out, "http 127.0.0.1").contains("free"), "{out}");
    // Apple saw one request, for the made-up token; FCM one validate_only send.
    let seen = apple.server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].path.ends_with(FAKE));
    let sent = google.fcm.seen();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["validate_only"], true, "{:?}", sent[0].body);
    assert!(!dir.path("data").exists(), "doctor writes no store");
}

#[test]
fn doctor_names_a_wrong_key_a_refused_account_and_a_wrong_secret() {
    let apple = apple();
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    google.tokens.script([(
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.to_owned(),
    )]);
    let dir = TempDir::new("doctor-bad");
    // A .p8 key of another team: Apple cannot verify the JWT.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_key = dir.path("Other.p8");
    std::fs::write(&other_key, other.serialize_pem()).unwrap();
    let x = FakeXmpp::new();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(
        &dir,
        x.port,
        held.local_addr().unwrap().port(),
        &[
            ("apns", apns_app(&apple, other_key.to_str().unwrap())),
            ("fcm", format!("provider = \"fcm\"\n{}", google.config())),
        ],
    );
    let (code, out) = doctor(&config, &[], Some((x, "another secret")));
    assert_eq!(code, 1, "{out}");
    let apns = line(&out, "app apns");
    assert!(
        apns.starts_with("FAIL")
            && apns.contains("InvalidProviderToken")
            && apns.contains("key_id"),
        "{out}"
    );
    let fcm = line(&out, "app fcm");
    assert!(
        fcm.starts_with("FAIL") && fcm.contains("service account"),
        "{out}"
    );
    assert_eq!(google.fcm.requests(), 0, "no send without an access token");
    let comp = line(&out, "component push.example.org");
    assert!(
        comp.starts_with("FAIL") && comp.contains("not-authorized"),
        "{out}"
    );
    let http = line(&out, "http 127.0.0.1");
    assert!(http.starts_with("FAIL") && http.contains("in use"), "{out}");
    assert!(out.contains("4 check(s) failed"), "{out}");
}

#[test]
fn doctor_send_delivers_one_visible_push_and_reads_a_running_servers_links() {
    let apple = apple();
    let dir = TempDir::new("doctor-send");
    let x = FakeXmpp::new();
    let port = free_port();
    let key = apple.files.0.join("AuthKey.p8").display().to_string();
    let config = write_config(&dir, x.port, port, &[("apns", apns_app(&apple, &key))]);
    // The service runs with this configuration and is linked.
    let text = std::fs::read_to_string(&config).unwrap();
    let _app = AppServer::start(&dir.0, &text, port);
    let _link = x.accept(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health(port).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let device = "ab".repeat(32);
    let (code, out) = doctor(&config, &["--send", &device, "--app", "apns"], None);
    assert_eq!(code, 0, "{out}");
    assert!(
        line(&out, "app apns").contains("accepted the test push"),
        "{out}"
    );
    assert!(
        line(&out, &format!("http 127.0.0.1:{port}")).contains("running"),
        "{out}"
    );
    assert!(
        line(&out, "component push.example.org").contains("running server's link is connected"),
        "no second connection was made: {out}"
    );
    let seen = apple.server.seen();
    let to_device: Vec<_> = seen.iter().filter(|r| r.path.ends_with(&device)).collect();
    assert_eq!(to_device.len(), 1, "one push to the device");
    let body: serde_json::Value = serde_json::from_slice(&to_device[0].body).unwrap();
    assert!(
        body["aps"]["alert"]["body"].as_str().is_some(),
        "visible: {body}"
    );
    assert_eq!(to_device[0].header("apns-push-type"), Some("alert"));

    let (code, out) = doctor(&config, &["--send", &device], None);
    assert_eq!(code, 2, "--send without --app is a usage error: {out}");
}
