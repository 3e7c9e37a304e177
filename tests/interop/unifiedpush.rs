//! UnifiedPush through a real Prosody and a real ejabberd: a slixmpp
//! client (the role Conversations plays as a distributor) logs in,
//! registers two applications at the push component through its server and
//! stays online; an application server's HTTP POST to an endpoint must
//! arrive at the client as the relay iq with the payload, and the POST
//! gets the client's answer: 201 for the application it keeps, 404 for the
//! one it removed. An altered token gets 404 and nothing reaches the
//! client.
//!
//! Missing Prosody / ejabberd / python3-slixmpp is a failure, not a skip.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::harness::http;
use crate::support::interop::*;
use crate::support::interop::{ejabberd, prosody};

const DIALECT_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/dialect_client.py"
);
const HINT: &str =
    "`.ci/run` installs them (apt-get install prosody prosody-modules ejabberd python3-slixmpp)";

#[derive(Debug, Clone, Copy)]
enum Xmpp {
    Prosody,
    Ejabberd,
}

#[test]
fn prosody_relays_unifiedpush_to_the_client() {
    Fixture::new(
        "interop-unifiedpush-prosody",
        &[("prosody.out", 30), ("prosody.log", 150)],
    )
    .run(|fx| scenario(fx, Xmpp::Prosody));
}

#[test]
fn ejabberd_relays_unifiedpush_to_the_client() {
    Fixture::new(
        "interop-unifiedpush-ejabberd",
        &[
            ("ejabberd.out", 30),
            ("ejabberd-logs/error.log", 40),
            ("ejabberd-logs/ejabberd.log", 150),
        ],
    )
    .run(|fx| scenario(fx, Xmpp::Ejabberd));
}

/// The interop config with the component as UnifiedPush provider.
fn appserver_template() -> String {
    APPSERVER_CFG_TEMPLATE.replace(
        "[app.fcm]",
        "[component.unifiedpush]\nendpoint_base = \"http://127.0.0.1:@HTTP_PORT@\"\n\
         allow_from = [\"localhost\"]\nrelay_timeout_secs = 20\n\n[app.fcm]",
    )
}

/// The path part of an endpoint URL on our HTTP API.
fn path_of(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .ok_or_else(|| format!("endpoint {url} is not on the API"))?;
    Ok(rest[rest.find('/').unwrap_or(0)..].to_owned())
}

fn scenario(fx: &mut Fixture, xmpp: Xmpp) -> Result<(), String> {
    let python = find_python_with_slixmpp(fx, HINT)?;
    let setup = Setup::new(fx)?;
    let accounts = [("alice", setup.alice_pw.as_str())];
    let log_path: PathBuf = match xmpp {
        Xmpp::Prosody => {
            let px = prosody::find(HINT)?;
            prosody::start(fx, &px, &setup, PROSODY_CFG_TEMPLATE, &accounts)?
        }
        Xmpp::Ejabberd => {
            let ej = ejabberd::find(HINT)?;
            ejabberd::start(fx, &ej, &setup, &accounts)?
        }
    };
    start_appserver_with(fx, &setup, &appserver_template())?;
    wait_until(fx, COMPONENT_LINK, "the component to connect", |_| {
        let log = read_lossy(&log_path);
        Ok(
            log.contains("External component successfully authenticated")
                || log.contains("Accepted external component handshake authentication"),
        )
    })?;

    // The distributor registers and stays online.
    let pushes = fx.path("unifiedpush.jsonl");
    let mut cmd = Command::new(&python);
    cmd.arg(DIALECT_CLIENT)
        .args(["unifiedpush", "--port", &setup.c2s_port.to_string()])
        .args(["--push-jid", PUSH_JID, "--password", &setup.alice_pw])
        .args([
            "--jid",
            &format!("alice@{DOMAIN}/distributor"),
            "--stay",
            "120",
        ])
        .arg("--log")
        .arg(&pushes);
    fx.spawn_split("client", cmd, "client.stdout", "client.stderr")?;
    let out = fx.path("client.stdout");
    wait_until(
        fx,
        Duration::from_secs(60),
        "the client's endpoints",
        |_| Ok(read_lossy(&out).contains("\"registered\"")),
    )?;
    let line = read_lossy(&out);
    let reg = Json::parse(line.lines().next().unwrap_or(""))?;
    let endpoint = |name: &str| -> Result<String, String> {
        reg.get("endpoints")
            .and_then(|e| e.get(name))
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} endpoint in {line}"))
    };
    let (keep, gone) = (path_of(&endpoint("keep")?)?, path_of(&endpoint("gone")?)?);

    // A message for the application it keeps: relayed, 201.
    let message = "{\"notification\":\"new toot\"}";
    let (status, body) = http(setup.http_port, "POST", &keep, message, &[]);
    if status != 201 {
        return Err(format!("POST to the kept endpoint: {status} {body}"));
    }
    let seen = read_lossy(&pushes);
    let first = Json::parse(seen.lines().next().unwrap_or(""))?;
    let payload = push_appserver::jwt::base64(message.as_bytes());
    if first.get("app").and_then(Json::as_str) != Some("keep")
        || first.get("instance") != Some(&Json::Bool(true))
        || first.get("payload").and_then(Json::as_str) != Some(payload.as_str())
        || first.get("from").and_then(Json::as_str) != Some(PUSH_JID)
    {
        return Err(format!(
            "the client got {seen}, want payload {payload} from {PUSH_JID}"
        ));
    }

    // The application it removed: 404, as mod_unified_push answers.
    let (status, body) = http(setup.http_port, "POST", &gone, "hello", &[]);
    if status != 404 {
        return Err(format!(
            "POST to the removed application's endpoint: {status} {body}"
        ));
    }

    // An altered token: 404 and nothing sent.
    let mut altered = keep.clone().into_bytes();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).map_err(|e| e.to_string())?;
    let (status, _) = http(setup.http_port, "POST", &altered, "hello", &[]);
    std::thread::sleep(Duration::from_millis(500));
    let lines = read_lossy(&pushes).lines().count();
    if status != 404 || lines != 2 {
        return Err(format!(
            "altered token: {status}, and the client got {lines} pushes (want 404 and 2)"
        ));
    }
    log(&format!(
        "OK ({xmpp:?}): relayed with 201, removed app 404, altered token 404"
    ));
    Ok(())
}
