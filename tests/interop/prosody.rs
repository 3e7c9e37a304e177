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

use std::path::Path;
use std::time::Duration;

use crate::support::interop::prosody;
use crate::support::interop::*;

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
    let px = prosody::find(INSTALL_HINT)?;
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
        px.prosody.display(),
        px.prosodyctl.display(),
        python,
        appserver_bin().display(),
        fx.dir.display()
    ));

    // ---- configuration, accounts, Prosody ---------------------------------
    let setup = Setup::new(fx)?;
    let accounts = [
        ("alice", setup.alice_pw.as_str()),
        ("bob", setup.bob_pw.as_str()),
    ];
    let prosody_log = prosody::start(fx, &px, &setup, PROSODY_CFG_TEMPLATE, &accounts)?;
    log("prosody is up");

    // ---- app server ------------------------------------------------------
    start_appserver(fx, &setup)?;
    wait_until(
        fx,
        COMPONENT_LINK,
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
        Duration::from_secs(30),
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
