//! Starting a private Prosody for an interop test: find `prosody` and
//! `prosodyctl`, write the config from a template, register the accounts
//! (before Prosody starts: prosodyctl writes the store), run Prosody in the
//! foreground and wait until it listens for clients and for the component.

use std::path::PathBuf;
use std::process::Command;

use super::*;

/// The Prosody programs a test runs.
pub struct Prosody {
    /// The server (`PUSH_INTEROP_PROSODY`, else PATH, else /usr/bin).
    pub prosody: PathBuf,
    /// `prosodyctl` next to it or in PATH.
    pub prosodyctl: PathBuf,
}

/// Finds `prosody` and `prosodyctl`; `hint` says how to install them.
pub fn find(hint: &str) -> Result<Prosody, String> {
    // Deliberately not executed here: `prosody --version` is not an option in
    // 0.12 and would start a server with the system configuration.
    let prosody = match std::env::var_os("PUSH_INTEROP_PROSODY") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Err(format!(
                    "PUSH_INTEROP_PROSODY={} is not a file; {hint}",
                    p.display()
                ));
            }
            p
        }
        None => in_path("prosody")
            .or_else(|| Some(PathBuf::from("/usr/bin/prosody")).filter(|p| p.is_file()))
            .ok_or_else(|| format!("Prosody is not installed (no `prosody` in PATH); {hint}"))?,
    };
    let prosodyctl = sibling_or_path(&prosody, "prosodyctl").ok_or_else(|| {
        format!(
            "prosodyctl not found next to {} nor in PATH; {hint}",
            prosody.display()
        )
    })?;
    Ok(Prosody {
        prosody,
        prosodyctl,
    })
}

/// Starts Prosody (child `prosody`) with the config `template` and the
/// `accounts` `(user, password)` at `localhost`; returns the path of
/// prosody.log once it listens on the c2s and component ports.
pub fn start(
    fx: &mut Fixture,
    p: &Prosody,
    setup: &Setup,
    template: &str,
    accounts: &[(&str, &str)],
) -> Result<PathBuf, String> {
    let cfg = setup.write_config(fx, "prosody.cfg.lua", template)?;
    for (user, pw) in accounts {
        let mut cmd = Command::new(&p.prosodyctl);
        cmd.arg("--config")
            .arg(&cfg)
            .args(["register", user, DOMAIN, pw]);
        let out = fx.path(&format!("prosodyctl-{user}.out"));
        let status = run_bounded(&mut cmd, SERVER_STARTUP, &out)?;
        if !status.success() {
            return Err(format!(
                "prosodyctl register {user} failed ({status}):\n{}",
                read_lossy(&out)
            ));
        }
    }
    let mut cmd = Command::new(&p.prosody);
    cmd.arg("--config").arg(&cfg).arg("-F");
    fx.spawn("prosody", cmd, "prosody.out")?;
    let log = fx.path("prosody.log");
    let c2s_ready = format!("Activated service 'c2s' on [127.0.0.1]:{}", setup.c2s_port);
    let comp_ready = format!(
        "Activated service 'component' on [127.0.0.1]:{}",
        setup.component_port
    );
    let what = format!(
        "Prosody to start and listen on 127.0.0.1:{} (c2s) and 127.0.0.1:{} (component)",
        setup.c2s_port, setup.component_port
    );
    wait_until(fx, SERVER_STARTUP, &what, |_| {
        let text = read_lossy(&log);
        Ok(text.contains(&c2s_ready) && text.contains(&comp_ready))
    })?;
    Ok(log)
}
