//! Monal's dialect through a real Prosody 0.12 with mod_cloud_notify: the
//! client enables push with node = its APNS token and a publish-options
//! form carrying `pushModule` (no ad-hoc command, no secret), goes offline,
//! gets a message, and the app server sends Monal's payload through the
//! `log` provider (one JSON line in `pushes.jsonl`); Prosody gets a result,
//! not an error.
//!
//! Needs prosody, prosody-modules and python3-slixmpp (`.ci/run` installs
//! them); missing ones are a failure, not a skip.

use std::process::Command;
use std::time::Duration;

use crate::support::interop::prosody;
use crate::support::interop::*;

const INSTALL_HINT: &str =
    "`.ci/run` installs them (apt-get install prosody prosody-modules python3-slixmpp)";

#[test]
fn prosody_monal_push_reaches_appserver_without_registration() {
    Fixture::new(
        "interop-monal",
        &[("prosody.out", 30), ("prosody.log", 120)],
    )
    .run(scenario);
}

fn scenario(fx: &mut Fixture) -> Result<(), String> {
    let px = prosody::find(INSTALL_HINT)?;
    let python = find_python_with_slixmpp(fx, INSTALL_HINT)?;
    let setup = Setup::new(fx)?;
    let accounts = [
        ("alice", setup.alice_pw.as_str()),
        ("bob", setup.bob_pw.as_str()),
    ];
    let prosody_log = prosody::start(fx, &px, &setup, PROSODY_CFG_TEMPLATE, &accounts)?;

    // The app server with Monal's dialect on a `log` profile.
    let cfg = setup.write_config(
        fx,
        "appserver.toml",
        "data_dir = \"@TMPDIR@/appserver-data\"\nlog_level = \"debug\"\n\
         [http]\nlisten = \"127.0.0.1:@HTTP_PORT@\"\n\
         [[component]]\njid = \"push.localhost\"\nserver = \"127.0.0.1:@COMPONENT_PORT@\"\n\
         secret = \"@COMPONENT_SECRET@\"\ntypes = [\"monal\"]\n\
         [component.monal]\nmodules = { monalProdiOS = \"monal\" }\nallow_from = [\"localhost\"]\n\
         [app.monal]\nprovider = \"log\"\nfile = \"@TMPDIR@/pushes.jsonl\"\n",
    )?;
    let mut cmd = Command::new(appserver_bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    fx.spawn_split(
        "push-appserver",
        cmd,
        "appserver.stdout",
        "appserver.stderr",
    )?;
    wait_until(fx, COMPONENT_LINK, "the component to connect", |_| {
        Ok(read_lossy(&prosody_log).contains("External component successfully authenticated"))
    })?;

    // The client: enable with node = token and pushModule, go offline, get a message.
    let token = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        random_u64(),
        random_u64(),
        random_u64(),
        random_u64()
    );
    let (out, err) = (fx.path("client.stdout"), fx.path("client.stderr"));
    let mut cmd = Command::new(&python);
    cmd.arg(CLIENT_PY)
        .args(["--host", "127.0.0.1", "--port", &setup.c2s_port.to_string()])
        .args(["--push-jid", PUSH_JID])
        .args([
            "--alice",
            &format!("alice@{DOMAIN}"),
            "--alice-password",
            &setup.alice_pw,
        ])
        .args([
            "--bob",
            &format!("bob@{DOMAIN}"),
            "--bob-password",
            &setup.bob_pw,
        ])
        .args(["--node", &token, "--token", &token])
        .args(["--monal-module", "monalProdiOS", "--timeout", "10"]);
    let status = run_bounded_split(&mut cmd, Duration::from_secs(90), &out, &err)?;
    if !status.success() {
        return Err(format!(
            "client.py failed: {}\n{}",
            read_lossy(&out),
            tail(&read_lossy(&err), 40)
        ));
    }

    let pushes = fx.path("pushes.jsonl");
    wait_until(
        fx,
        Duration::from_secs(30),
        "Monal's push in pushes.jsonl",
        |_| Ok(!read_pushes(&pushes)?.is_empty()),
    )?;
    let lines = read_pushes(&pushes)?;
    if lines.len() != 1 {
        return Err(format!(
            "want one push, got {}: {}",
            lines.len(),
            read_lossy(&pushes)
        ));
    }
    let push = &lines[0];
    let s = |j: Option<&Json>| j.and_then(Json::as_str).map(str::to_owned);
    if s(push.get("token")).as_deref() != Some(token.as_str())
        || s(push.get("type")).as_deref() != Some("monal")
    {
        return Err(format!("push for the wrong token or profile: {push:?}"));
    }
    let aps = push
        .get("payload")
        .and_then(|p| p.get("aps"))
        .ok_or(format!("push without aps: {push:?}"))?;
    let title = s(aps.get("alert").and_then(|a| a.get("title")));
    if title.as_deref() != Some("New Message") || aps.get("mutable-content").is_none() {
        return Err(format!("not Monal's payload: {push:?}"));
    }
    wait_until(
        fx,
        Duration::from_secs(30),
        "Prosody to get the result",
        |_| {
            let text = read_lossy(&prosody_log);
            if let Some(l) = text
                .lines()
                .find(|l| l.contains("Received[component]: <iq") && l.contains("type='error'"))
            {
                return Err(format!("Prosody got an error for the push: {l}"));
            }
            Ok(text.lines().any(|l| {
                l.contains("Received[component]: <iq")
                    && l.contains("type='result'")
                    && l.contains(&format!("to='{DOMAIN}'"))
            }))
        },
    )?;
    log(&format!("OK: Monal push: {}", read_lossy(&pushes).trim()));
    Ok(())
}
