//! Interop of the registration dialects with a real Prosody 0.12
//! (mod_cloud_notify) and a real ejabberd (mod_push): a slixmpp client
//! registers in the Conversations
//! dialect (`register-push-fcm`) and another in the Siskin dialect
//! (`register-device`, no secret), both through Prosody, enable push and go
//! offline; a third account writes to both. The pushes reach a mock FCM and
//! a mock APNS (HTTP/2 + TLS, in this process) with each app's payload.
//! Then a transient provider failure must leave push on, and a dead token
//! must make the server disable push for that device: ejabberd at the first
//! non-`wait` error, Prosody after `push_max_errors` of them (1 here, so one
//! error that counts is enough to see it).
//!
//! Missing Prosody / prosody-modules / ejabberd / python3-slixmpp is a
//! failure, not a skip: `.ci/run` installs them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::interop::*;
use crate::support::interop::{ejabberd, prosody};
use crate::support::{apple, fcm_mock};

const DIALECT_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/dialect_client.py"
);
const HINT: &str =
    "`.ci/run` installs them (apt-get install prosody prosody-modules ejabberd python3-slixmpp)";
const DEVICE: &str = "AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12";
const VOIP: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const FCM_TOKEN: &str = "fcm-token-alice";
const ANDROID_ID: &str = "android-1";

/// Mock APNS answers: 0 = ok, 1 = dead token.
const APPLE_OK: u8 = 0;
const APPLE_DEAD: u8 = 1;

/// The user's XMPP server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Xmpp {
    Prosody,
    Ejabberd,
}

impl Xmpp {
    /// Starts the server with the accounts; the path of its log.
    fn start(
        self,
        fx: &mut Fixture,
        setup: &Setup,
        accounts: &[(&str, &str)],
    ) -> Result<PathBuf, String> {
        match self {
            Xmpp::Prosody => start_prosody(fx, setup, accounts),
            Xmpp::Ejabberd => {
                let ej = ejabberd::find(HINT)?;
                ejabberd::start(fx, &ej, setup, accounts)
            }
        }
    }

    fn component_ok(self, log: &str) -> bool {
        log.contains(match self {
            Xmpp::Prosody => "External component successfully authenticated",
            Xmpp::Ejabberd => {
                "Accepted external component handshake authentication for push.localhost"
            }
        })
    }

    /// Whether the server logged a `wait` error for `user`'s `node` and
    /// kept push on.
    fn kept(self, log: &str, user: &str, node: &str) -> bool {
        match self {
            Xmpp::Prosody => log.lines().any(|l| {
                l.contains("NOT increasing error count")
                    && l.contains(&format!("{PUSH_JID}<{node}"))
            }),
            Xmpp::Ejabberd => log.contains(&format!(
                "{PUSH_JID} rejected notification for {user} ({node}) temporarily"
            )),
        }
    }

    /// Whether the server disabled push for `user`'s `node`.
    fn disabled(self, log: &str, user: &str, node: &str) -> bool {
        match self {
            Xmpp::Prosody => log.lines().any(|l| {
                l.contains("Disabling push notifications")
                    && l.contains(&format!("{PUSH_JID}<{node}"))
            }),
            Xmpp::Ejabberd => log.contains(&format!(
                "{PUSH_JID} rejected notification for {user} ({node}), disabling push"
            )),
        }
    }
}

#[test]
fn prosody_conversations_and_siskin_dialects_end_to_end() {
    Fixture::new(
        "interop-dialects-prosody",
        &[("prosody.out", 30), ("prosody.log", 150)],
    )
    .run(|fx| scenario(fx, Xmpp::Prosody));
}

#[test]
fn ejabberd_conversations_and_siskin_dialects_end_to_end() {
    Fixture::new(
        "interop-dialects-ejabberd",
        &[
            ("ejabberd.out", 30),
            ("ejabberd-logs/error.log", 40),
            ("ejabberd-logs/ejabberd.log", 150),
        ],
    )
    .run(|fx| scenario(fx, Xmpp::Ejabberd));
}

/// Prosody with `push_max_errors = 1` and the accounts; its log's path.
fn start_prosody(
    fx: &mut Fixture,
    setup: &Setup,
    accounts: &[(&str, &str)],
) -> Result<PathBuf, String> {
    let px = prosody::find(HINT)?;
    // One error that counts disables push: what we want to see, and when.
    let template = PROSODY_CFG_TEMPLATE.replace(
        "VirtualHost \"localhost\"",
        "push_max_errors = 1\n\nVirtualHost \"localhost\"",
    );
    prosody::start(fx, &px, setup, &template, accounts)
}

fn appserver_config(setup: &Setup, google: &fcm_mock::Google, apple: &Apple) -> String {
    format!(
        "data_dir = \"{dir}/appserver-data\"\nrate_limit = 0\nlog_level = \"debug\"\n\
         [http]\nlisten = \"off\"\n\
         [[component]]\njid = \"{PUSH_JID}\"\nserver = \"127.0.0.1:{port}\"\n\
         secret = \"{secret}\"\ntypes = [\"conv\"]\n\
         conversations = {{ fcm = \"conv\" }}\n\
         siskin = {{ providers = {{ \"tigase:messenger:apns:1\" = \"siskin\" }}, sender = true, body = true }}\n\
         [app.conv]\nprovider = \"fcm\"\n{fcm}push_ttl = 3600\n\
         [app.siskin]\nprovider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{apns}\"\ncapath = {ca:?}\n\
         auth_key = {key:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
        dir = setup.dir,
        port = setup.component_port,
        secret = setup.secret,
        fcm = google.config(),
        apns = apple.server.url(),
        ca = apple.pki.ca_pem.display().to_string(),
        key = apple.files.0.join("AuthKey.p8").display().to_string(),
    )
}

/// Runs dialect_client.py with `args`; its JSON result.
fn client(fx: &mut Fixture, python: &str, setup: &Setup, args: &[&str]) -> Result<Json, String> {
    let tag = format!("{:08x}", random_u64() as u32);
    let out = fx.path(&format!("client-{tag}.stdout"));
    let err = fx.path(&format!("client-{tag}.stderr"));
    let mut cmd = Command::new(python);
    cmd.arg(DIALECT_CLIENT)
        .args([
            "--port",
            &setup.c2s_port.to_string(),
            "--push-jid",
            PUSH_JID,
        ])
        .args(args);
    let status = run_bounded_split(&mut cmd, Duration::from_secs(60), &out, &err)?;
    let stdout = read_lossy(&out);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let result = Json::parse(line)
        .map_err(|e| format!("no JSON from the client ({e}): {}", read_lossy(&err)))?;
    if !status.success() || result.get("ok") != Some(&Json::Bool(true)) {
        return Err(format!(
            "client {args:?} failed ({status}): {line}\n{}",
            tail(&read_lossy(&err), 30)
        ));
    }
    Ok(result)
}

fn scenario(fx: &mut Fixture, xmpp: Xmpp) -> Result<(), String> {
    let python = find_python_with_slixmpp(fx, HINT)?;

    // Mock providers first: the app server's config points at them.
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    let apple_state = Arc::new(AtomicU8::new(APPLE_OK));
    let state = Arc::clone(&apple_state);
    let behaviour: apple::Behaviour = Arc::new(move |_r| match state.load(Ordering::SeqCst) {
        APPLE_DEAD => Reply::status(
            410,
            r#"{"reason":"Unregistered","timestamp":4102444800000}"#,
        ),
        _ => Reply::ok(),
    });
    let apple = smol::block_on(Apple::token(MockOptions::default(), behaviour));

    let setup = Setup::new(fx)?;
    let carol_pw = format!("c-{:x}", random_u64());
    let log_path = xmpp.start(
        fx,
        &setup,
        &[
            ("alice", &setup.alice_pw),
            ("bob", &setup.bob_pw),
            ("carol", &carol_pw),
        ],
    )?;
    let server_log = move || read_lossy(&log_path);

    let cfg = fx.path("appserver.toml");
    std::fs::write(&cfg, appserver_config(&setup, &google, &apple)).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(appserver_bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    fx.spawn_split(
        "push-appserver",
        cmd,
        "appserver.stdout",
        "appserver.stderr",
    )?;
    wait_until(fx, COMPONENT_LINK, "the component to connect", |_| {
        Ok(xmpp.component_ok(&server_log()))
    })?;

    // ---- registration in each dialect, through Prosody ------------------
    let alice = format!("alice@{DOMAIN}");
    let carol = format!("carol@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    let conv = client(
        fx,
        &python,
        &setup,
        &[
            "register",
            "--dialect",
            "conversations",
            "--jid",
            &alice,
            "--password",
            &setup.alice_pw,
            "--token",
            FCM_TOKEN,
            "--device-id",
            ANDROID_ID,
        ],
    )?;
    let conv_node = conv
        .get("node")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let sis = client(
        fx,
        &python,
        &setup,
        &[
            "register",
            "--dialect",
            "siskin",
            "--jid",
            &carol,
            "--password",
            &carol_pw,
            "--token",
            DEVICE,
            "--second-token",
            VOIP,
        ],
    )?;
    let sis_node = sis
        .get("node")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    if sis_node.len() != 32 || sis.get("form_type").and_then(Json::as_str).is_none() {
        return Err(format!(
            "register-device answered node {sis_node:?} in a form without a type"
        ));
    }
    let send = |fx: &mut Fixture| {
        client(
            fx,
            &python,
            &setup,
            &[
                "send",
                "--jid",
                &bob,
                "--password",
                &setup.bob_pw,
                "--to",
                &alice,
                "--to",
                &carol,
            ],
        )
    };

    // ---- a message: each app's payload ------------------------------------
    send(fx)?;
    wait_until(fx, Duration::from_secs(60), "a push at each mock", |_| {
        Ok(!google.fcm.seen().is_empty() && !apple.server.seen().is_empty())
    })?;
    let fcm = &google.fcm.seen()[0].body["message"];
    let account = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{alice}\0{ANDROID_ID}").as_bytes(),
        );
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    if fcm["token"] != FCM_TOKEN
        || fcm["data"] != serde_json::json!({ "account": account })
        || fcm["android"]["priority"] != "HIGH"
    {
        return Err(format!(
            "FCM got {fcm}, want data.account {account} and HIGH"
        ));
    }
    let push = &apple.server.seen()[0];
    let body: serde_json::Value = serde_json::from_slice(&push.body).map_err(|e| e.to_string())?;
    if push.path != format!("/3/device/{}", DEVICE.to_lowercase())
        || push.header("apns-push-type") != Some("alert")
        || body["account"] != carol.as_str()
        || body["aps"]["mutable-content"] != 1
        || !body["sender"].as_str().unwrap_or("").starts_with(&bob)
    {
        return Err(format!("APNS got {} {body}", push.path));
    }
    if xmpp.disabled(&server_log(), &alice, &conv_node)
        || xmpp.disabled(&server_log(), &carol, &sis_node)
    {
        return Err("push disabled after a delivered push".into());
    }

    // ---- the provider fails for a while: push stays on -------------------
    let unavailable = fcm_mock::Answer::error(503, "UNAVAILABLE", None);
    google
        .fcm
        .script([unavailable.clone(), unavailable.clone(), unavailable]);
    send(fx)?;
    wait_until(
        fx,
        Duration::from_secs(60),
        "the server to get the wait error",
        |_| Ok(xmpp.kept(&server_log(), &alice, &conv_node)),
    )?;
    if xmpp.disabled(&server_log(), &alice, &conv_node) {
        return Err("a transient provider failure disabled push".into());
    }

    // ---- the tokens die: Prosody disables push for each device -------------
    google.fcm.script([fcm_mock::Answer::error(
        404,
        "NOT_FOUND",
        Some("UNREGISTERED"),
    )]);
    apple_state.store(APPLE_DEAD, Ordering::SeqCst);
    send(fx)?;
    wait_until(
        fx,
        Duration::from_secs(60),
        "the server to disable push for both",
        |_| {
            let text = server_log();
            Ok(xmpp.disabled(&text, &alice, &conv_node) && xmpp.disabled(&text, &carol, &sis_node))
        },
    )?;
    let (fcm_seen, apple_seen) = (google.fcm.seen().len(), apple.server.seen().len());
    send(fx)?;
    std::thread::sleep(Duration::from_millis(500));
    if google.fcm.seen().len() != fcm_seen || apple.server.seen().len() != apple_seen {
        return Err("Prosody still pushes to disabled devices".into());
    }
    log(&format!(
        "OK ({xmpp:?}): FCM saw {fcm_seen} requests, APNS {apple_seen}; push disabled only after the dead token"
    ));
    Ok(())
}
