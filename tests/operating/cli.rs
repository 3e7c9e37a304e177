//! The command line from the outside: exit codes and messages.

use std::process::Command;

use crate::support::harness::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_push-appserver"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help_explain_themselves() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("push-appserver {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("run") && out.contains("check-config"), "{out}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("--help"), "{err}");
    // Issue 18: the short forms people type, usage on a bare call, and a
    // usage error exits 2 as the man page says (argh exits 1 by itself).
    let (code, out, _) = run(&["-V"]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            format!("push-appserver {}", env!("CARGO_PKG_VERSION")).as_str()
        )
    );
    let (code, out, _) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: push-appserver"), "{out}");
    assert!(
        err.contains("Usage: push-appserver") && err.contains("check-config"),
        "{err}"
    );
    let (code, _, err) = run(&["run", "--no-such-option"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--no-such-option"), "{err}");
    let (code, out, _) = run(&["check-config", "-h"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("/etc/push-appserver/push-appserver.toml"),
        "{out}"
    );
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_masked() {
    let dir = TempDir::new("cli-ok");
    let cfg = dir.path("ok.toml");
    std::fs::write(&cfg, config(&dir.0, 5347, 5280, "", "")).unwrap();
    let (code, out, err) = run(&["check-config", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("jid = \"push.example.org\""), "{out}");
    assert!(out.contains("rate_limit = 5"), "{out}");
    assert!(
        !out.contains(SECRET),
        "the component secret is masked: {out}"
    );
    assert!(out.contains("configuration is valid"));
}

#[test]
fn bad_configs_are_refused_with_file_key_and_reason() {
    let dir = TempDir::new("cli-bad");
    let good = config(&dir.0, 5347, 5280, "", "");
    let cases = [
        (
            "unknown.toml",
            format!("colour = \"blue\"\n{good}"),
            "colour",
        ),
        (
            "type.toml",
            good.replace("debugging = true", "debugging = \"yes\""),
            "debugging",
        ),
        (
            "port.toml",
            good.replace(":5347", ":99999"),
            "component[0].server",
        ),
        (
            "fcmkey.toml",
            good.replace(
                "[app.fcm]\nprovider = \"log\"",
                "[app.fcm]\nprovider = \"fcm\"\nkey = \"AAAA\"",
            ),
            "service_account",
        ),
        ("syntax.toml", good.replace("[http]", "[http"), "line"),
        // Issue 18: a misspelt key is named as unknown, with the key meant
        // (`provder` was reported as `provider: missing`).
        (
            "provder.toml",
            good.replace("[app.fcm]\nprovider = ", "[app.fcm]\nprovder = "),
            "key `app.fcm.provder`: unknown key (did you mean `provider`?)",
        ),
        (
            "lisen.toml",
            good.replace("listen = ", "lisen = "),
            "(did you mean `listen`?)",
        ),
    ];
    for (name, text, needle) in cases {
        let path = dir.path(name);
        std::fs::write(&path, text).unwrap();
        for cmd in ["check-config", "run"] {
            let (code, _, err) = run(&[cmd, "--config", path.to_str().unwrap()]);
            assert_eq!(code, 1, "{cmd} {name}: {err}");
            assert!(err.contains(name), "{cmd} {name} names the file: {err}");
            assert!(err.contains(needle), "{cmd} {name} names {needle}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let (code, _, err) = run(&[
        "run",
        "--config",
        dir.path("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "{err}"
    );
}

/// Issue 18: the old default port was Prosody's; a taken port now names
/// who holds it, and the start stops before the store or `server.key`
/// exists.
#[test]
fn a_taken_port_names_its_holder_and_nothing_is_written() {
    let dir = TempDir::new("cli-port");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let cfg = dir.path("taken.toml");
    std::fs::write(&cfg, config(&dir.0, 5347, port, "", "")).unwrap();
    let (code, _, err) = run(&["run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("Address already in use"),
        "{err}"
    );
    assert!(
        err.contains("held by") && err.contains(&format!("(pid {})", std::process::id())),
        "the holder is named: {err}"
    );
    assert!(
        !dir.path("data").exists(),
        "nothing is created before the listeners are bound"
    );
    // The metrics listener's port is named as its own.
    let extra = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"");
    std::fs::write(&cfg, config(&dir.0, 5347, free_port(), &extra, "")).unwrap();
    let (code, _, err) = run(&["run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/metrics: Address already in use") && err.contains("[metrics] listen"),
        "{err}"
    );
    assert!(!dir.path("data").exists());
    drop(held);
}

/// Issue 18: the whole configuration can come from `PUSH_APPSERVER_*`
/// variables (as a container is configured); a variable that names no
/// setting is refused by name.
#[test]
fn the_environment_configures_a_server_without_a_file() {
    let dir = TempDir::new("cli-env");
    let xmpp = FakeXmpp::new();
    let port = free_port();
    let data = dir.path("envdata");
    let vars = [
        ("PUSH_APPSERVER_DATA_DIR", data.to_str().unwrap().to_owned()),
        ("PUSH_APPSERVER_HTTP_LISTEN", format!("127.0.0.1:{port}")),
        (
            "PUSH_APPSERVER_COMPONENT_JID",
            "push.example.org".to_owned(),
        ),
        (
            "PUSH_APPSERVER_COMPONENT_SERVER",
            format!("127.0.0.1:{}", xmpp.port),
        ),
        ("PUSH_APPSERVER_COMPONENT_SECRET", SECRET.to_owned()),
        ("PUSH_APPSERVER_COMPONENT_TYPES", "fcm".to_owned()),
        ("PUSH_APPSERVER_RATE_LIMIT", "9".to_owned()),
        // What Kubernetes sets for a Service named push-appserver: not
        // settings, and no reason to refuse the start.
        ("PUSH_APPSERVER_SERVICE_HOST", "10.0.0.1".to_owned()),
        ("PUSH_APPSERVER_PORT", "tcp://10.0.0.1:7874".to_owned()),
    ];
    // check-config shows the effective values and where they came from.
    let cfg = dir.path("base.toml");
    std::fs::write(&cfg, config(&dir.0, 5347, 5280, "", "")).unwrap();
    let out = bin()
        .args(["check-config", "-c", cfg.to_str().unwrap()])
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rate_limit = 9"), "{text}");
    assert!(
        text.contains(&format!("listen = \"127.0.0.1:{port}\"")),
        "{text}"
    );
    assert!(
        text.contains("# set by the environment: PUSH_APPSERVER_COMPONENT_JID"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");

    // check-config without a file checks the defaults and the variables,
    // as `run` would use them (unless this machine has the packaged file).
    if !std::path::Path::new("/etc/push-appserver/push-appserver.toml").exists() {
        let out = bin()
            .arg("check-config")
            .current_dir(&dir.0)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("the embedded defaults and the environment"),
            "{text}"
        );
    }

    // No file at all: the embedded defaults with the variables over them.
    let mut child = bin()
        .arg("run")
        .current_dir(&dir.0)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Completes the handshake with SECRET: the secret from the environment.
    let _link = xmpp.accept(std::time::Duration::from_secs(10));
    let (status, body) = http(port, "GET", HEALTH, "", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(data.join("server.key").exists());
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("settings from the environment: PUSH_APPSERVER_COMPONENT_JID"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    let out = bin()
        .args(["check-config", "-c", cfg.to_str().unwrap()])
        .env("PUSH_APPSERVER_HTTP_LISTN", "127.0.0.1:1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("http.listn") && err.contains("did you mean `listen`"),
        "{err}"
    );
}

/// Issue 18: check-config said "configuration is valid" on the packaged
/// example the service refuses to start with; it now warns about what a
/// valid file may still get wrong, and reports every error.
#[test]
fn check_config_warns_about_placeholders_log_apps_the_sandbox_and_unreadable_files() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = TempDir::new("cli-warn");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key_file = dir.path("AuthKey.p8");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = config(&dir.0, 5347, 5280, "", "")
        .replace(SECRET, "CHANGE-ME")
        .replace(
            "types = [\"fcm\", \"apns\"]",
            "types = [\"fcm\", \"apns\", \"ios\"]",
        )
        + &format!(
            "[app.ios]\nprovider = \"apns\"\ntopic = \"org.example.chat\"\nauth_key = {:?}\n\
             key_id = \"ABC123DEFG\"\nteam_id = \"TEAM123456\"\n",
            key_file.display().to_string()
        );
    let cfg = dir.path("warn.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = bin()
        .args([
            "check-config",
            "-c",
            cfg.to_str().unwrap(),
            "--user",
            "nobody",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: component push.example.org: the secret is a placeholder"),
        "{err}"
    );
    assert!(err.contains("\"fcm\" uses the log provider"), "{err}");
    assert!(err.contains("[app.ios] sandbox = true"), "{err}");
    // Unless the tests run as nobody, nobody cannot read a 0600 file.
    if std::fs::metadata(&key_file).unwrap().uid() != 65534 {
        assert!(
            err.contains("app.ios.auth_key: user nobody (the service's) cannot read"),
            "{err}"
        );
    }
    // The summary line does not contradict the warning (it said
    // "readable" after warning that a file was not).
    if std::fs::metadata(&key_file).unwrap().uid() != 65534 {
        assert!(
            stdout.contains("but 1 credential file(s) NOT readable by user nobody"),
            "{stdout}"
        );
    }

    // Every error, not only the first.
    let bad = text
        .replace("listen = \"127.0.0.1:5280\"", "listen = \"nowhere\"")
        .replace("topic = ", "topik = ");
    let cfg = dir.path("bad.toml");
    std::fs::write(&cfg, format!("rate_limit = 5000\n{bad}")).unwrap();
    let (code, _, err) = run(&["check-config", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    for needle in ["`rate_limit`", "`http.listen`", "`app.ios.topik`"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(err.contains("3 errors:"), "{err}");
}
