//! Interop test against a real Prosody 0.12 with mod_cloud_notify.
//!
//! Prosody (Debian `prosody` + `prosody-modules`) runs as a subprocess with
//! its own configuration in a temp dir, on random loopback ports; the
//! push-appserver binary connects to it as the XEP-0114 component
//! `push.localhost` with the `log` provider. `tests/interop/client.py`
//! (python3-slixmpp) then registers a device with the XEP-0050 command
//! `v1-register-push`, enables XEP-0357 push for alice, lets alice go
//! offline and has bob send her a message: mod_offline + mod_cloud_notify
//! must publish exactly one push, which the app server "sends" by appending
//! one JSON line to `pushes.jsonl`.
//!
//! Missing Prosody / prosody-modules / python3-slixmpp is a failure, not a
//! skip: `.ci/run` installs them.
//!
//! Set `PUSH_INTEROP_KEEP=1` to keep the temp dir, `PUSH_INTEROP_PYTHON` /
//! `PUSH_INTEROP_PROSODY` to use another interpreter / Prosody binary,
//! `PUSH_INTEROP_APPSERVER` to run another app server program in place of
//! the crate's binary (same `run --config FILE` arguments).

mod interop_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use interop_support::*;

const PROSODY_CFG_TEMPLATE: &str = include_str!("interop/prosody.cfg.lua.in");
const INSTALL_HINT: &str =
    "`.ci/run` installs them (apt-get install prosody prosody-modules python3-slixmpp)";

const CLOUD_NOTIFY_LOCATIONS: &[&str] = &[
    "/usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua",
    "/usr/lib/prosody/modules/mod_cloud_notify.lua",
    "/usr/local/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua",
    "/usr/share/prosody-modules/mod_cloud_notify/mod_cloud_notify.lua",
];

#[test]
fn prosody_cloud_notify_push_reaches_appserver_once() {
    // Fixture::drop kills the children and, on failure, prints the logs.
    Fixture::new(
        "interop-prosody",
        &[("prosody.out", 30), ("prosody.log", 120)],
    )
    .run(scenario);
}

fn scenario(fx: &mut Fixture) -> Result<(), String> {
    // ---- prerequisites: fail loudly, never skip -------------------------
    let prosody = find_prosody()?;
    let prosodyctl = sibling_or_path(&prosody, "prosodyctl").ok_or_else(|| {
        format!(
            "prosodyctl not found next to {} nor in PATH; {INSTALL_HINT}",
            prosody.display()
        )
    })?;
    if !CLOUD_NOTIFY_LOCATIONS
        .iter()
        .any(|p| Path::new(p).is_file())
    {
        return Err(format!(
            "mod_cloud_notify not found (looked in {CLOUD_NOTIFY_LOCATIONS:?}): the Debian package prosody-modules is missing; {INSTALL_HINT}"
        ));
    }
    let python = find_python_with_slixmpp(fx, INSTALL_HINT)?;
    log(&format!(
        "using prosody={} prosodyctl={} python={} appserver={} dir={}",
        prosody.display(),
        prosodyctl.display(),
        python,
        appserver_bin().display(),
        fx.dir.display()
    ));

    // ---- configuration ---------------------------------------------------
    let setup = Setup::new(fx)?;
    let prosody_cfg = setup.write_config(fx, "prosody.cfg.lua", PROSODY_CFG_TEMPLATE)?;
    let (c2s_port, component_port) = (setup.c2s_port, setup.component_port);

    // ---- accounts (before Prosody starts: prosodyctl writes the store) ---
    for (user, pw) in [("alice", &setup.alice_pw), ("bob", &setup.bob_pw)] {
        let mut cmd = Command::new(&prosodyctl);
        cmd.arg("--config")
            .arg(&prosody_cfg)
            .args(["register", user, DOMAIN, pw.as_str()]);
        let out = fx.path(&format!("prosodyctl-{user}.out"));
        let status = run_bounded(&mut cmd, Duration::from_secs(30), &out)?;
        if !status.success() {
            return Err(format!(
                "prosodyctl register {user} failed ({status}):\n{}",
                read_lossy(&out)
            ));
        }
    }

    // ---- Prosody ---------------------------------------------------------
    let prosody_log = fx.path("prosody.log");
    let mut cmd = Command::new(&prosody);
    cmd.arg("--config").arg(&prosody_cfg).arg("-F");
    fx.spawn("prosody", cmd, "prosody.out")?;
    let c2s_ready = format!("Activated service 'c2s' on [127.0.0.1]:{c2s_port}");
    let comp_ready = format!("Activated service 'component' on [127.0.0.1]:{component_port}");
    wait_until(
        fx,
        Duration::from_secs(20),
        "Prosody to listen on c2s and component ports",
        |_| {
            let text = read_lossy(&prosody_log);
            Ok(text.contains(&c2s_ready) && text.contains(&comp_ready))
        },
    )?;
    log("prosody is up");

    // ---- app server ------------------------------------------------------
    start_appserver(fx, &setup)?;
    wait_until(
        fx,
        Duration::from_secs(20),
        "the app server's component to authenticate with Prosody",
        |_| {
            let text = read_lossy(&prosody_log);
            if let Some(l) = text
                .lines()
                .find(|l| l.contains("Component authentication failed"))
            {
                return Err(format!(
                    "Prosody rejected the component handshake (secret/jid mismatch?): {l}"
                ));
            }
            Ok(text.contains("External component successfully authenticated"))
        },
    )?;
    log("component push.localhost connected to prosody");
    note_health(&setup);

    // ---- XMPP client flow + the push -------------------------------------
    let reg = run_client(fx, &python, &setup)?;
    let reg_node = reg.node.clone();
    let pushes_file = fx.path("pushes.jsonl");
    expect_one_push(fx, &setup, &reg)?;

    // ---- Prosody's side of the story ------------------------------------
    // mod_cloud_notify logs each publish it sends; the app server must have
    // answered it with a result (not an error, which counts towards
    // disabling push for the device).
    let identifier = format!("push.localhost<{reg_node}");
    wait_until(
        fx,
        Duration::from_secs(5),
        "the app server's result for the publish",
        |_| {
            Ok(read_lossy(&prosody_log).lines().any(|l| {
                l.contains("Received[component]: <iq")
                    && l.contains("type='result'")
                    && l.contains(&format!("to='{DOMAIN}'"))
            }))
        },
    )?;
    let text = read_lossy(&prosody_log);
    let sent = text
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "push notification for alice@{DOMAIN} to {PUSH_JID} ({reg_node})"
            ))
        })
        .count();
    if sent != 1 {
        return Err(format!(
            "Prosody logged {sent} publishes for node {reg_node}, want 1"
        ));
    }
    if let Some(l) = text.lines().find(|l| {
        (l.contains("Got error") && l.contains(&identifier))
            || (l.contains("Received[component]: <iq")
                && l.contains("type='error'")
                && l.contains(&format!("to='{DOMAIN}'")))
    }) {
        return Err(format!("Prosody got an error reply for the push: {l}"));
    }
    log(&format!(
        "OK: exactly one push: {}",
        read_lossy(&pushes_file).trim()
    ));
    Ok(())
}

// ---------------------------------------------------------------------------
// finding Prosody
// ---------------------------------------------------------------------------

fn find_prosody() -> Result<PathBuf, String> {
    // Deliberately not executed here: `prosody --version` is not an option in
    // 0.12 and would start a server with the system configuration.
    if let Some(p) = std::env::var_os("PUSH_INTEROP_PROSODY") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!(
                "PUSH_INTEROP_PROSODY={} is not a file; {INSTALL_HINT}",
                p.display()
            ));
        }
        return Ok(p);
    }
    in_path("prosody")
        .or_else(|| Some(PathBuf::from("/usr/bin/prosody")).filter(|p| p.is_file()))
        .ok_or_else(|| format!("Prosody is not installed (no `prosody` in PATH); {INSTALL_HINT}"))
}
