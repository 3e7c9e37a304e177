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

mod interop_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use interop_support::*;

const EJABBERD_CFG_TEMPLATE: &str = include_str!("interop/ejabberd.yml.in");
const INSTALL_HINT: &str = "`.ci/run` installs them (apt-get install ejabberd python3-slixmpp)";

/// Where distributions put the ejabberdctl script (/usr/sbin is not in a
/// non-root PATH on Debian).
const EJABBERDCTL_LOCATIONS: &[&str] = &["/usr/sbin/ejabberdctl", "/usr/local/sbin/ejabberdctl"];

/// Printed on stdout by the `-eval` that creates the accounts.
const ACCOUNTS_MARKER: &str = "interop-accounts:";

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
    let ej = find_ejabberd(fx)?;
    let python = find_python_with_slixmpp(fx, INSTALL_HINT)?;
    log(&format!(
        "using erl={} ERL_LIBS={} ejabberd={} python={} appserver={} dir={}",
        ej.erl.display(),
        ej.erl_libs.as_deref().unwrap_or("(unset)"),
        ej.app_dir,
        python,
        appserver_bin().display(),
        fx.dir.display()
    ));

    // ---- configuration ---------------------------------------------------
    let setup = Setup::new(fx)?;
    let ejabberd_cfg = setup.write_config(fx, "ejabberd.yml", EJABBERD_CFG_TEMPLATE)?;
    let (c2s_port, component_port) = (setup.c2s_port, setup.component_port);
    let spool = fx.path("ejabberd-spool");
    let logs = fx.path("ejabberd-logs");
    let home = fx.path("ejabberd-home");
    for d in [&spool, &logs, &home] {
        fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    // Like Debian's /etc/ejabberd/inetrc, minus "native": names come from
    // this file only, so no inet_gethost helper process is spawned.
    let inetrc = fx.path("inetrc");
    fs::write(
        &inetrc,
        "{lookup,[\"file\"]}.\n{host,{127,0,0,1},[\"localhost\"]}.\n",
    )
    .map_err(|e| format!("write inetrc: {e}"))?;

    // ---- ejabberd --------------------------------------------------------
    let spool_str = spool.to_str().ok_or("spool path is not UTF-8")?;
    let mut cmd = ej.erl_command();
    cmd.current_dir(&spool)
        .env("HOME", &home)
        .env("EJABBERD_CONFIG_PATH", &ejabberd_cfg)
        .env("EJABBERD_LOG_PATH", logs.join("ejabberd.log"))
        .env("ERL_CRASH_DUMP", logs.join("erl_crash.dump"))
        .env("ERL_INETRC", &inetrc)
        .env("CONTRIB_MODULES_PATH", home.join("ejabberd-modules"))
        .env(
            "CONTRIB_MODULES_CONF_DIR",
            home.join("ejabberd-modules-conf"),
        )
        .env_remove("EJABBERD_PID_PATH")
        .args(["-noinput", "-start_epmd", "false"])
        // log only to the files, not also to stdout (ejabberdctl foreground-quiet)
        .args(["-ejabberd", "quiet", "true"])
        .args(["-mnesia", "dir", &format!("\"{spool_str}\"")])
        .args(["-s", "ejabberd"])
        // runs after `ejabberd:start/0` returned, i.e. the application is up
        .args([
            "-eval",
            &format!(
                "R = fun(U, P) -> try ejabberd_auth:try_register(U, <<\"{DOMAIN}\">>, P) \
                 catch C:E -> {{C, E}} end end, \
                 io:format(\"{ACCOUNTS_MARKER} ~p ~p~n\", \
                 [R(<<\"alice\">>, <<\"{}\">>), R(<<\"bob\">>, <<\"{}\">>)]).",
                setup.alice_pw, setup.bob_pw
            ),
        ]);
    let started = Instant::now();
    fx.spawn("ejabberd", cmd, "ejabberd.out")?;
    let ejabberd_log = logs.join("ejabberd.log");
    let ejabberd_out = fx.path("ejabberd.out");
    let c2s_ready =
        format!("Start accepting TCP connections at 127.0.0.1:{c2s_port} for ejabberd_c2s");
    let comp_ready = format!(
        "Start accepting TCP connections at 127.0.0.1:{component_port} for ejabberd_service"
    );
    wait_until(
        fx,
        Duration::from_secs(30),
        "ejabberd to listen on c2s and component ports and create the accounts",
        |_| {
            let text = read_lossy(&ejabberd_log);
            if let Some(l) = text
                .lines()
                .find(|l| l.contains("Failed to start ejabberd application"))
            {
                return Err(format!("ejabberd did not start: {l}"));
            }
            let out = read_lossy(&ejabberd_out);
            let accounts = match out.lines().find(|l| l.starts_with(ACCOUNTS_MARKER)) {
                Some(l) if l.trim() == format!("{ACCOUNTS_MARKER} ok ok") => true,
                Some(l) => return Err(format!("creating the accounts failed: {l}")),
                None => false,
            };
            Ok(accounts && text.contains(&c2s_ready) && text.contains(&comp_ready))
        },
    )?;
    log(&format!(
        "ejabberd is up, accounts created, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // ---- app server ------------------------------------------------------
    start_appserver(fx, &setup)?;
    let auth_ok = format!("Accepted external component handshake authentication for {PUSH_JID}");
    wait_until(
        fx,
        Duration::from_secs(20),
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
        Duration::from_secs(5),
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

struct Ejabberd {
    /// The `erl` launcher ejabberdctl uses.
    erl: PathBuf,
    /// The code path root ejabberdctl exports (Debian: /usr/lib/<triplet>).
    erl_libs: Option<String>,
    /// Where ejabberd.app was found, e.g. .../ejabberd-23.01-1/ebin.
    app_dir: String,
}

impl Ejabberd {
    /// `erl` with a clean Erlang environment (nothing from the caller's
    /// ERL_FLAGS may add `-sname` and with it epmd and cookies).
    fn erl_command(&self) -> Command {
        let mut cmd = Command::new(&self.erl);
        for var in ["ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS"] {
            cmd.env_remove(var);
        }
        if let Some(libs) = &self.erl_libs {
            cmd.env("ERL_LIBS", libs);
        }
        cmd
    }
}

/// Finds ejabberdctl, reads the `erl` and `ERL_LIBS` it uses, and checks
/// (in a throw-away non-distributed VM) that ejabberd and mod_push load.
fn find_ejabberd(fx: &Fixture) -> Result<Ejabberd, String> {
    let ctl = match std::env::var_os("PUSH_INTEROP_EJABBERDCTL") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Err(format!(
                    "PUSH_INTEROP_EJABBERDCTL={} is not a file; {INSTALL_HINT}",
                    p.display()
                ));
            }
            p
        }
        None => in_path("ejabberdctl")
            .or_else(|| {
                EJABBERDCTL_LOCATIONS
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| {
                format!(
                    "ejabberd is not installed (no ejabberdctl in PATH nor in {EJABBERDCTL_LOCATIONS:?}); {INSTALL_HINT}"
                )
            })?,
    };
    let script = fs::read(&ctl)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("read {}: {e}", ctl.display()))?;
    let assigned = |var: &str| {
        script.lines().find_map(|l| {
            let v = l.trim().strip_prefix(var)?.strip_prefix('=')?;
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            (!v.is_empty() && !v.contains('$')).then(|| v.to_string())
        })
    };
    let erl = assigned("ERL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| in_path("erl"))
        .ok_or_else(|| {
            format!(
                "no Erlang `erl` found (neither from {} nor in PATH); {INSTALL_HINT}",
                ctl.display()
            )
        })?;
    let erl_libs = assigned("ERL_LIBS").filter(|d| Path::new(d).is_dir());
    let mut ej = Ejabberd {
        erl,
        erl_libs,
        app_dir: String::new(),
    };

    let out = fx.path("ejabberd-probe.out");
    let mut cmd = ej.erl_command();
    cmd.current_dir(&fx.dir)
        .env("HOME", &fx.dir)
        .args(["-noinput", "-start_epmd", "false", "-eval"])
        .arg(
            "io:format(\"ejabberd.app=~s~nmod_push=~s~n\", \
             [code:where_is_file(\"ejabberd.app\"), code:which(mod_push)]), halt().",
        );
    let status = run_bounded(&mut cmd, Duration::from_secs(30), &out)?;
    let text = read_lossy(&out);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .filter(|v| *v != "non_existing")
            .map(str::to_string)
    };
    match (status.success(), value("ejabberd.app="), value("mod_push=")) {
        (true, Some(app), Some(_)) => {
            ej.app_dir = Path::new(&app)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or(app);
            Ok(ej)
        }
        _ => Err(format!(
            "ejabberd (with mod_push) is not loadable by {} with ERL_LIBS={:?} ({status}):\n{}\n{INSTALL_HINT}",
            ej.erl.display(),
            ej.erl_libs,
            text.trim()
        )),
    }
}
