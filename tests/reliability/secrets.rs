//! Secrets never leak: a full session at `log_level = "trace"`
//! (registrations over XMPP and HTTP, pushes through a mock APNS with .p8
//! token auth and a mock FCM with OAuth, unregistrations, a clean stop),
//! then every log line (stdout and stderr) and every byte of every file in
//! the data dir is searched for each push secret, the component secret,
//! the APNS key (PEM body and raw bytes), the FCM service-account key, the
//! OAuth access token and the APNS JWTs. Node ids and device tokens are not
//! secrets, but lines at INFO and WARN carry them shortened only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::harness::*;
use crate::support::{apple, fcm_mock};
use push_appserver::jwt::base64url_decode;

const T: Duration = Duration::from_secs(10);
const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const FCM_TOKEN: &str = "fcm-device-token-3f9a1c77e0b24d6c9a51e8b2d4f60c13";
const ACCESS_TOKEN: &str = "ya29.c.mock-oauth-access-token-7d1e5b9c2a8f4e60";

/// The base64 body of a PEM and the DER bytes it encodes.
fn pem_parts(pem: &str) -> (Vec<String>, Vec<u8>) {
    let lines: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect();
    let b64: String = lines.concat();
    let url = b64.replace('+', "-").replace('/', "_").replace('=', "");
    let der = base64url_decode(&url).expect("PEM body is base64");
    (lines, der)
}

/// The 32-byte private scalar in a PKCS#8 P-256 key (after `04 20` in the
/// ECPrivateKey `02 01 01 04 20`).
fn p256_scalar(der: &[u8]) -> Vec<u8> {
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("an ECPrivateKey in the PKCS#8");
    der[at + 5..at + 37].to_vec()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Bytes as a string of the chars U+0000..U+00FF, one per byte, so the
/// (optimized) std substring search works on binary files. A zero tail
/// (fjall preallocates its journal: 64 MiB, mostly zeros) is cut, keeping
/// 4 KiB more than any needle is long.
fn latin1(bytes: &[u8]) -> String {
    const PAGE: [u8; 4096] = [0; 4096];
    let used = bytes
        .chunks(PAGE.len())
        .rposition(|c| c != &PAGE[..c.len()])
        .map_or(0, |i| (i + 2) * PAGE.len());
    bytes[..used.min(bytes.len())]
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

#[test]
fn no_secret_reaches_a_log_line_or_the_data_dir() {
    // The mocks: Apple checks the ES256 JWT, Google issues ACCESS_TOKEN.
    let ok: apple::Behaviour = Arc::new(|_| Reply::ok());
    let apple = smol::block_on(Apple::token(MockOptions::default(), ok));
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    let token = serde_json::json!({
        "access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer",
    });
    google.tokens.script([(200, token.to_string())]);

    let dir = TempDir::new("secrets");
    let x = FakeXmpp::new();
    let http_port = free_port();
    let cfg = format!(
        "data_dir = \"{data}\"\nrate_limit = 0\nlog_level = \"trace\"\n\
         [http]\nlisten = \"127.0.0.1:{http_port}\"\nrequests_per_second = 1000\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"apns\", \"fcm\"]\n\
         [app.apns]\nprovider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{apns}\"\n\
         capath = {ca:?}\nauth_key = {p8:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n\
         [app.fcm]\nprovider = \"fcm\"\n{fcm}",
        data = dir.path("data").display(),
        xmpp = x.port,
        apns = apple.server.url(),
        ca = apple.pki.ca_pem.display().to_string(),
        p8 = apple.files.path("AuthKey.p8").display().to_string(),
        fcm = google.config(),
    );
    let cfg_path = dir.write("config.toml", cfg);
    let (out_path, err_path) = (dir.path("stdout.log"), dir.path("stderr.log"));
    // AppServer kills the child if the test fails half-way.
    let mut app = AppServer {
        child: Command::new(env!("CARGO_BIN_EXE_push-appserver"))
            .args(["run", "--config"])
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap(),
        dir: dir.0.clone(),
        http_port,
        stderr_path: err_path.clone(),
    };
    let mut c = x.accept(T);
    let ok = || ("result".to_owned(), String::new());

    // XMPP: register, push (alert and background), renew, unregister.
    let mut secrets = Vec::new();
    let mut nodes = Vec::new();
    let a = register(&mut c, "apns", "iphone", APNS_TOKEN);
    let f = register(&mut c, "fcm", "android", FCM_TOKEN);
    for (i, r) in [&a, &f, &a, &f].into_iter().enumerate() {
        let body = (i < 2).then_some("Hello");
        let reply = c.iq(&publish_iq(&format!("p{i}"), &r.node, &r.secret, body));
        assert_eq!(outcome(&reply), ok(), "{reply:?}");
    }
    // A wrong secret is refused (and must not make the right one show).
    let reply = c.iq(&publish_iq("bad", &a.node, &"0".repeat(64), None));
    assert_eq!(outcome(&reply).1, "forbidden");
    assert_eq!(register(&mut c, "apns", "iphone", APNS_TOKEN), a);
    let gone = register(&mut c, "fcm", "tablet", FCM_TOKEN);
    let reply = c.iq(&unregister_iq(
        "u1",
        "user@example.com/res",
        "fcm",
        "tablet",
    ));
    assert_eq!(outcome(&reply), ok());
    for r in [&a, &f, &gone] {
        secrets.push(r.secret.clone());
        nodes.push(r.node.clone());
    }

    // HTTP: register, push, unregister with the secret.
    let http_nodes = [
        ("apns", "0f3c2a9e-http-node-apns-5b1d7c"),
        ("fcm", "7e4b1d2c-http-node-fcm-9a0f3e"),
        ("fcm", "c5a8e1f0-http-node-gone-2d6b4a"),
    ];
    for (ty, node) in http_nodes {
        let tok = if ty == "apns" { APNS_TOKEN } else { FCM_TOKEN };
        let (s, b) = http(
            http_port,
            "POST",
            "/push_appserver/v1/register",
            &format!("type={ty}&node={node}&token={tok}"),
            &[],
        );
        assert_eq!(s, 200, "{b}");
        let secret = b.lines().nth(2).unwrap().to_owned();
        let (s, b) = http(
            http_port,
            "POST",
            "/push_appserver/v1/push",
            &format!("node={node}&secret={secret}"),
            &[],
        );
        assert_eq!(s, 200, "{b}");
        secrets.push(secret);
        nodes.push(node.to_owned());
    }
    let (s, b) = http(
        http_port,
        "POST",
        "/push_appserver/v1/unregister",
        &format!("type=fcm&node={}&secret={}", http_nodes[2].1, secrets[5]),
        &[],
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(apple.server.seen().len(), 3);
    assert_eq!(google.fcm.seen().len(), 4);
    assert_eq!(google.tokens.requests(), 1);
    // The needles below are the credentials really used.
    assert!(google.fcm.seen()[0].authorization.contains(ACCESS_TOKEN));

    // A clean stop (SIGTERM), so shutdown paths log too.
    let _ = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status();
    let deadline = Instant::now() + T;
    while app.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    app.kill();

    // Everything that must never be written anywhere.
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        needles.push((format!("push secret {i}"), s.as_bytes().to_vec()));
        needles.push((format!("push secret {i} (raw)"), hex_decode(s)));
    }
    needles.push(("component secret".into(), SECRET.as_bytes().to_vec()));
    let p8 = std::fs::read_to_string(apple.files.path("AuthKey.p8")).unwrap();
    let (p8_lines, p8_der) = pem_parts(&p8);
    for (i, l) in p8_lines.iter().enumerate() {
        needles.push((format!("APNS .p8 line {i}"), l.as_bytes().to_vec()));
    }
    needles.push(("APNS .p8 (DER)".into(), p8_der.clone()));
    needles.push(("APNS private scalar".into(), p256_scalar(&p8_der)));
    let (fcm_lines, fcm_der) = pem_parts(fcm_mock::KEY);
    for (i, l) in fcm_lines.iter().enumerate() {
        needles.push((format!("FCM key line {i}"), l.as_bytes().to_vec()));
    }
    // The DER, and slices of its second half (private exponent and primes).
    needles.push(("FCM key (DER)".into(), fcm_der.clone()));
    for at in [fcm_der.len() / 2, fcm_der.len() * 2 / 3, fcm_der.len() - 80] {
        needles.push((
            format!("FCM key bytes at {at}"),
            fcm_der[at..at + 48].to_vec(),
        ));
    }
    needles.push((
        "OAuth access token".into(),
        ACCESS_TOKEN.as_bytes().to_vec(),
    ));
    let jwts: Vec<String> = apple.jwts.lock().unwrap().iter().cloned().collect();
    assert_eq!(jwts.len(), 1);
    for j in &jwts {
        needles.push(("APNS JWT".into(), j.as_bytes().to_vec()));
        let sig = j.rsplit('.').next().unwrap();
        needles.push(("APNS JWT signature".into(), sig.as_bytes().to_vec()));
    }

    assert!(needles.iter().all(|(_, n)| n.len() < 4096), "see latin1");
    let out = std::fs::read(&out_path).unwrap();
    let err = std::fs::read(&err_path).unwrap();
    // Lossy only for the per-line level checks; needles are searched for
    // in the raw bytes.
    let log = String::from_utf8_lossy(&err).into_owned() + &String::from_utf8_lossy(&out);
    // The crate has no trace! calls and the logger keeps dependencies at
    // warn, so trace shows what debug shows: the full node ids and tokens.
    assert!(
        log.lines().filter(|l| l.contains(" DEBUG ")).count() > 10,
        "the session logged below info: {log}"
    );
    let mut files = Vec::new();
    files_under(&dir.path("data"), &mut files);
    assert!(files.len() > 5, "{files:?}");
    // Every source as bytes: both log streams and every data file.
    let mut sources: Vec<(String, String)> = vec![
        ("stderr".into(), latin1(&err)),
        ("stdout".into(), latin1(&out)),
    ];
    for f in &files {
        sources.push((f.display().to_string(), latin1(&std::fs::read(f).unwrap())));
    }
    let mut leaks = Vec::new();
    for (what, needle) in &needles {
        let needle = latin1(needle);
        for (name, content) in &sources {
            if let Some(at) = content.find(&needle) {
                let line = content[..at].rsplit('\n').next().unwrap_or_default();
                leaks.push(format!("{what} in {name}: {line}…"));
            }
        }
    }
    // Node ids and device tokens: shortened at INFO and WARN.
    for id in nodes
        .iter()
        .map(String::as_str)
        .chain([APNS_TOKEN, FCM_TOKEN])
    {
        for line in log.lines() {
            if (line.contains(" INFO ") || line.contains(" WARN ")) && line.contains(id) {
                leaks.push(format!("full node id or token at info/warn: {line}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} needles, {} log lines, {} files:\n{}",
        needles.len(),
        log.lines().count(),
        files.len(),
        leaks.join("\n")
    );
    eprintln!(
        "secrets: {} needles ({} push secrets) searched in {} log lines and {} data files: none found",
        needles.len(),
        secrets.len(),
        log.lines().count(),
        files.len()
    );
}
