//! Starting a private ejabberd for an interop test, with any accounts:
//! a non-distributed `erl` node in a temp dir (see tests/interop/ejabberd.rs
//! for why), config from `tests/interop/ejabberd.yml.in`, accounts made by
//! `-eval` in the VM.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// The ejabberd config of the interop tests.
pub const CFG_TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/ejabberd.yml.in"
));
/// Where distributions put ejabberdctl.
const EJABBERDCTL_LOCATIONS: &[&str] = &["/usr/sbin/ejabberdctl", "/usr/local/sbin/ejabberdctl"];
/// Printed by the `-eval` that creates the accounts.
const ACCOUNTS_MARKER: &str = "interop-accounts:";

/// The `erl` ejabberdctl uses and its code path.
pub struct Ejabberd {
    /// The `erl` launcher ejabberdctl uses.
    pub erl: PathBuf,
    /// The code path root ejabberdctl exports (Debian: /usr/lib/<triplet>).
    pub erl_libs: Option<String>,
}

impl Ejabberd {
    /// `erl` with a clean Erlang environment (nothing from the caller's
    /// ERL_FLAGS may add `-sname` and with it epmd and cookies).
    pub fn erl_command(&self) -> Command {
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

/// Finds ejabberdctl and reads the `erl` and `ERL_LIBS` it uses.
pub fn find(hint: &str) -> Result<Ejabberd, String> {
    let ctl = std::env::var_os("PUSH_INTEROP_EJABBERDCTL")
        .map(PathBuf::from)
        .or_else(|| in_path("ejabberdctl"))
        .or_else(|| {
            EJABBERDCTL_LOCATIONS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            format!(
                "ejabberd is not installed (no ejabberdctl in PATH nor in {EJABBERDCTL_LOCATIONS:?}); {hint}"
            )
        })?;
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
                "no Erlang `erl` found (neither from {} nor in PATH); {hint}",
                ctl.display()
            )
        })?;
    let erl_libs = assigned("ERL_LIBS").filter(|d| Path::new(d).is_dir());
    Ok(Ejabberd { erl, erl_libs })
}

/// Starts ejabberd (child `ejabberd`) with `accounts` `(user, password)`
/// at `localhost`; returns the path of ejabberd.log once it listens for
/// clients and for the component, and the accounts exist.
pub fn start(
    fx: &mut Fixture,
    ej: &Ejabberd,
    setup: &Setup,
    accounts: &[(&str, &str)],
) -> Result<PathBuf, String> {
    let cfg = setup.write_config(fx, "ejabberd.yml", CFG_TEMPLATE)?;
    let spool = fx.path("ejabberd-spool");
    let logs = fx.path("ejabberd-logs");
    let home = fx.path("ejabberd-home");
    for d in [&spool, &logs, &home] {
        fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let inetrc = fx.path("inetrc");
    fs::write(
        &inetrc,
        "{lookup,[\"file\"]}.\n{host,{127,0,0,1},[\"localhost\"]}.\n",
    )
    .map_err(|e| format!("write inetrc: {e}"))?;
    let spool_str = spool.to_str().ok_or("spool path is not UTF-8")?;
    let calls: Vec<String> = accounts
        .iter()
        .map(|(u, p)| format!("R(<<\"{u}\">>, <<\"{p}\">>)"))
        .collect();
    let mut cmd = ej.erl_command();
    cmd.current_dir(&spool)
        .env("HOME", &home)
        .env("EJABBERD_CONFIG_PATH", &cfg)
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
        .args(["-ejabberd", "quiet", "true"])
        .args(["-mnesia", "dir", &format!("\"{spool_str}\"")])
        .args(["-s", "ejabberd"])
        .args([
            "-eval",
            &format!(
                "R = fun(U, P) -> try ejabberd_auth:try_register(U, <<\"{DOMAIN}\">>, P) \
                 catch C:E -> {{C, E}} end end, \
                 io:format(\"{ACCOUNTS_MARKER} ~p~n\", [[{}]]).",
                calls.join(", ")
            ),
        ]);
    fx.spawn("ejabberd", cmd, "ejabberd.out")?;
    let log_path = logs.join("ejabberd.log");
    let out = fx.path("ejabberd.out");
    let c2s_ready = format!(
        "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_c2s",
        setup.c2s_port
    );
    let comp_ready = format!(
        "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_service",
        setup.component_port
    );
    let all_ok = format!(
        "{ACCOUNTS_MARKER} [{}]",
        vec!["ok"; accounts.len()].join(",")
    );
    let what = format!(
        "ejabberd to start, listen on 127.0.0.1:{} (c2s) and 127.0.0.1:{} \
         (component) and create the accounts {:?}",
        setup.c2s_port,
        setup.component_port,
        accounts.iter().map(|(u, _)| u).collect::<Vec<_>>()
    );
    wait_until(fx, SERVER_STARTUP, &what, |_| {
        let text = read_lossy(&log_path);
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("Failed to start ejabberd application"))
        {
            return Err(format!("ejabberd did not start: {l}"));
        }
        let accounts = match read_lossy(&out)
            .lines()
            .find(|l| l.starts_with(ACCOUNTS_MARKER))
        {
            Some(l) if l.trim() == all_ok => true,
            Some(l) => return Err(format!("creating the accounts failed: {l}")),
            None => false,
        };
        Ok(accounts && text.contains(&c2s_ready) && text.contains(&comp_ready))
    })?;
    Ok(log_path)
}
