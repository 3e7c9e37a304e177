//! Interop test against a real ejabberd (Debian `ejabberd`, 23.01 on
//! bookworm) with mod_push (XEP-0357) and mod_offline.
//!
//! ejabberd runs as a subprocess in the foreground with its own
//! configuration (`tests/interop/ejabberd.yml.in`), Mnesia spool, logs and
//! HOME in a temp dir, on random loopback ports. It is started with `erl`
//! directly (the way `ejabberdctl foreground` does, minus two things that do
//! not suit a test: as root ejabberdctl `su`s to the `ejabberd` user, which
//! cannot write our temp dir, and it always names a distributed node) as a
//! NON-distributed node (`nonode@nohost`, `-start_epmd false`): no epmd is
//! started, no Erlang cookie is read or written, and no node name can clash
//! with a system instance or a parallel run. The accounts alice and bob are
//! created in the same VM right after start (`-eval` calling
//! `ejabberd_auth:try_register/3`), so no ejabberdctl/distribution is needed.
//!
//! The push-appserver binary connects as the XEP-0114 component
//! `push.localhost` (an `ejabberd_service` listener) with the `log`
//! provider. `tests/interop/client.py` (python3-slixmpp) then registers a
//! device with the XEP-0050 command `v1-register-push`, enables XEP-0357
//! push for alice, lets alice go offline and has bob send her a message:
//! mod_offline + mod_push must publish exactly one push, which the app
//! server "sends" by appending one JSON line to `pushes.jsonl`, and
//! mod_push must log that the app server accepted it.
//!
//! Missing ejabberd / python3-slixmpp is a failure, not a skip: `.ci/run`
//! installs them.
//!
//! Set `PUSH_INTEROP_KEEP=1` to keep the temp dir, `PUSH_INTEROP_PYTHON` to
//! use another interpreter, `PUSH_INTEROP_EJABBERDCTL` to take `erl` and
//! `ERL_LIBS` from another ejabberdctl script, `PUSH_INTEROP_APPSERVER` to
//! run another app server program in place of the crate's binary.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::interop::ejabberd;
use crate::support::interop::*;

const INSTALL_HINT: &str = "`.ci/run` installs them (apt-get install ejabberd python3-slixmpp)";

#[test]
fn ejabberd_mod_push_reaches_appserver_once() {
    // Fixture::drop kills the children and, on failure, prints the logs.
    Fixture::new(
        "interop-ejabberd",
        &[
            ("ejabberd.out", 30),
            ("ejabberd-logs/error.log", 40),
            ("ejabberd-logs/ejabberd.log", 150),
        ],
    )
    .run(scenario);
}

fn scenario(fx: &mut Fixture) -> Result<(), String> {
    // ---- prerequisites: fail loudly, never skip -------------------------
    let (ej, app_dir) = find_ejabberd(fx)?;
    let python = find_python_with_slixmpp(fx, INSTALL_HINT)?;
    log(&format!(
        "using erl={} ERL_LIBS={} ejabberd={} python={} appserver={} dir={}",
        ej.erl.display(),
        ej.erl_libs.as_deref().unwrap_or("(unset)"),
        app_dir,
        python,
        appserver_bin().display(),
        fx.dir.display()
    ));

    // ---- configuration and ejabberd ------------------------------------
    let setup = Setup::new(fx)?;
    let started = Instant::now();
    let accounts = [
        ("alice", setup.alice_pw.as_str()),
        ("bob", setup.bob_pw.as_str()),
    ];
    let ejabberd_log = ejabberd::start(fx, &ej, &setup, &accounts)?;
    log(&format!(
        "ejabberd is up, accounts created, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // ---- app server ------------------------------------------------------
    start_appserver(fx, &setup)?;
    let auth_ok = format!("Accepted external component handshake authentication for {PUSH_JID}");
    wait_until(
        fx,
        COMPONENT_LINK,
        "the app server's component to authenticate with ejabberd",
        |_| {
            let text = read_lossy(&ejabberd_log);
            if let Some(l) = text
                .lines()
                .find(|l| l.contains("Failed external component"))
            {
                return Err(format!(
                    "ejabberd rejected the component handshake (secret/jid mismatch?): {l}"
                ));
            }
            Ok(text.contains(&auth_ok))
        },
    )?;
    log("component push.localhost connected to ejabberd");
    note_health(&setup);

    // ---- XMPP client flow + the push -------------------------------------
    let reg = run_client(fx, &python, &setup)?;
    let push = expect_one_push(fx, &setup, &reg)?;
    // ejabberd's summary is a type='submit' form with typed, labelled
    // fields; the app server must have read it (include_sender: true,
    // include_body: "New message" in ejabberd.yml.in).
    let summary = |k: &str| {
        push.get("summary")
            .and_then(|s| s.get(k))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let sender = summary("last-message-sender").unwrap_or_default();
    let body = summary("last-message-body").unwrap_or_default();
    if !sender.starts_with(&format!("bob@{DOMAIN}")) || body != "New message" {
        return Err(format!(
            "push line's summary lacks ejabberd's last-message-sender (bob@{DOMAIN}/...) \
             or last-message-body (\"New message\"): {push:?}"
        ));
    }

    // ---- ejabberd's side of the story -----------------------------------
    // mod_push logs the app server's answer to each publish: a result must
    // come back (an error makes mod_push disable push for the device, a
    // missing answer is logged as a timeout).
    let accepted = format!(
        "{PUSH_JID} accepted notification for alice@{DOMAIN} ({})",
        reg.node
    );
    wait_until(
        fx,
        Duration::from_secs(30),
        "mod_push to log the app server's result for the publish",
        |_| {
            let text = read_lossy(&ejabberd_log);
            if let Some(l) = text.lines().find(|l| {
                l.contains("rejected notification for")
                    || l.contains("Timeout sending notification")
            }) {
                return Err(format!("mod_push did not get a result for the push: {l}"));
            }
            // the publish and the result are logged by different Erlang
            // processes: wait for both lines
            Ok(text.contains(&accepted)
                && text.lines().any(|l| {
                    l.contains("Send XML on stream = ")
                        && l.contains(&format!("<publish node='{}'", reg.node))
                }))
        },
    )?;
    let text = read_lossy(&ejabberd_log);
    let component_stream = component_stream_tag(&text, &auth_ok)
        .ok_or("cannot find the component's stream in ejabberd.log")?;
    // every stanza ejabberd sent on the component stream (one per line)
    let sent: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&component_stream) && l.contains("Send XML on stream = "))
        .map(xml_of)
        .collect();
    let publishes: Vec<&str> = sent
        .iter()
        .copied()
        .filter(|x| {
            x.contains("urn:xmpp:push:0")
                && (x.contains(&format!("<publish node='{}'", reg.node))
                    || x.contains(&format!("<publish node=\"{}\"", reg.node)))
        })
        .collect();
    if publishes.len() != 1 {
        return Err(format!(
            "ejabberd sent {} publishes for node {}, want 1:\n{}",
            publishes.len(),
            reg.node,
            publishes.join("\n")
        ));
    }
    if let Some(l) = text.lines().find(|l| {
        l.contains(&component_stream)
            && l.contains("Received XML on stream = ")
            && l.contains("type='error'")
    }) {
        return Err(format!(
            "the app server answered ejabberd with an error: {l}"
        ));
    }
    let accepted_count = text.lines().filter(|l| l.contains(&accepted)).count();
    if accepted_count != 1 {
        return Err(format!(
            "mod_push logged {accepted_count} accepted notifications for node {}, want 1",
            reg.node
        ));
    }
    // what else ejabberd routed to the component (informational)
    let others: Vec<String> = sent
        .iter()
        .filter(|x| x.starts_with('<') && !x.starts_with("<?xml") && !x.starts_with("<handshake"))
        .filter(|x| !publishes.contains(x) && !x.contains("node='v1-register-push'"))
        .map(|x| x.chars().take(200).collect())
        .collect();
    log(&format!("ejabberd sent the publish: {}", publishes[0]));
    log(&format!(
        "other stanzas ejabberd sent to the component: {}",
        if others.is_empty() {
            "none".to_string()
        } else {
            others.join(" | ")
        }
    ));
    log(&format!(
        "OK: exactly one push: {}",
        read_lossy(&fx.path("pushes.jsonl")).trim()
    ));
    Ok(())
}

/// `(tcp|<0.431.0>)`: how ejabberd.log names the component's stream, taken
/// from the line accepting its handshake.
fn component_stream_tag(text: &str, auth_line: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains(auth_line))?;
    let start = line.find("(tcp|")?;
    let end = start + line[start..].find(')')?;
    Some(line[start..=end].to_string())
}

/// The XML of an ejabberd "Send/Received XML on stream = <<\"...\">>" line.
fn xml_of(line: &str) -> &str {
    let Some(i) = line.find("= <<\"") else {
        return line;
    };
    let x = &line[i + 5..];
    x.strip_suffix("\">>").unwrap_or(x)
}

// ---------------------------------------------------------------------------
// finding ejabberd
// ---------------------------------------------------------------------------

/// Finds ejabberd (see `support/interop/ejabberd.rs`) and checks, in a
/// throw-away non-distributed VM, that ejabberd and mod_push load; returns
/// it with the directory ejabberd.app was found in.
fn find_ejabberd(fx: &Fixture) -> Result<(ejabberd::Ejabberd, String), String> {
    let ej = ejabberd::find(INSTALL_HINT)?;
    let out = fx.path("ejabberd-probe.out");
    let mut cmd = ej.erl_command();
    cmd.current_dir(&fx.dir)
        .env("HOME", &fx.dir)
        .args(["-noinput", "-start_epmd", "false", "-eval"])
        .arg(
            "io:format(\"ejabberd.app=~s~nmod_push=~s~n\", \
             [code:where_is_file(\"ejabberd.app\"), code:which(mod_push)]), halt().",
        );
    let status = run_bounded(&mut cmd, SERVER_STARTUP, &out)?;
    let text = read_lossy(&out);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .filter(|v| *v != "non_existing")
            .map(str::to_string)
    };
    match (status.success(), value("ejabberd.app="), value("mod_push=")) {
        (true, Some(app), Some(_)) => {
            let app_dir = Path::new(&app)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or(app);
            Ok((ej, app_dir))
        }
        _ => Err(format!(
            "ejabberd (with mod_push) is not loadable by {} with ERL_LIBS={:?} ({status}):\n{}\n{INSTALL_HINT}",
            ej.erl.display(),
            ej.erl_libs,
            text.trim()
        )),
    }
}
