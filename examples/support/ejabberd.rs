//! A private ejabberd for the real-path benchmark, started the way
//! tests/support/interop/ejabberd.rs does: `erl` (taken from ejabberdctl)
//! as a non-distributed node (`-start_epmd false`: no epmd, no cookie, no
//! node name to clash with a system ejabberd), spool, logs and HOME in the
//! bench's temp dir, loopback only, accounts created by `-eval` in the VM.
//! The limits that could throttle the load are raised in the config.
//! (`#[path = "support/ejabberd.rs"] mod ejabberd;`, needs `mod kids;`)
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kids::Kids;

/// Printed by the `-eval` that creates the accounts.
const ACCOUNTS_MARKER: &str = "bench-accounts:";
/// ejabberd takes a few seconds to start (Mnesia, then the listeners).
const START_LIMIT: Duration = Duration::from_secs(60);

/// What a private ejabberd listens on and serves.
pub struct Spec<'a> {
    /// `ejabberdctl`, read for the `erl` and `ERL_LIBS` it uses.
    pub ejabberdctl: &'a Path,
    /// The node's directory (config, spool, logs, HOME).
    pub dir: &'a Path,
    /// c2s port on 127.0.0.1.
    pub c2s: u16,
    /// Component JIDs, each with its own XEP-0114 port on 127.0.0.1 (an
    /// `ejabberd_service` listener routes every host it lists to every
    /// connection that authenticates on it, so one listener per component).
    pub components: &'a [(&'a str, u16)],
    /// The components' shared secret.
    pub secret: &'a str,
    /// `(user, password)` accounts at `localhost`.
    pub accounts: &'a [(&'a str, &'a str)],
}

/// The config: no TLS, no s2s, no modules but disco, `info` logs (the
/// listeners' start lines are what `start` waits for; nothing is logged
/// per stanza at that level), and every limit that could throttle the
/// bench raised: `shaper: none` (c2s), `shaper_rule: none` (components)
/// and `max_stanza_size: infinity` are 23.01's listener defaults, said
/// explicitly; `max_fsm_queue` (global and per listener) is raised from
/// 10,000 to 1,000,000.
pub fn config(s: &Spec) -> String {
    let mut services = String::new();
    for (jid, port) in s.components {
        services.push_str(&format!(
            "  -\n    port: {port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_service\n\
             \x20   shaper_rule: none\n    max_stanza_size: infinity\n    max_fsm_queue: 1000000\n\
             \x20   hosts:\n      {jid}:\n        password: \"{}\"\n",
            s.secret
        ));
    }
    format!(
        "hosts:\n  - localhost\nloglevel: info\nlog_rotate_count: 0\n\
         hide_sensitive_log_data: true\ncertfiles: []\nacme:\n  auto: false\n\
         s2s_access: none\nauth_method: internal\ndefault_db: mnesia\n\
         max_fsm_queue: 1000000\n\
         listen:\n  -\n    port: {c2s}\n    ip: \"127.0.0.1\"\n    module: ejabberd_c2s\n\
         \x20   starttls: false\n    starttls_required: false\n    shaper: none\n\
         \x20   max_stanza_size: infinity\n    max_fsm_queue: 1000000\n\
         {services}\
         modules:\n  mod_disco: {{}}\n",
        c2s = s.c2s,
    )
}

/// `erl` and `ERL_LIBS` as assigned in the ejabberdctl script.
fn erl_of(ejabberdctl: &Path) -> Result<(PathBuf, Option<String>), String> {
    let script = fs::read_to_string(ejabberdctl).map_err(|e| {
        format!(
            "read {}: {e} (Debian `ejabberd`; --ejabberdctl PATH)",
            ejabberdctl.display()
        )
    })?;
    let assigned = |var: &str| {
        script.lines().find_map(|l| {
            let v = l.trim().strip_prefix(var)?.strip_prefix('=')?;
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            (!v.is_empty() && !v.contains('$')).then(|| v.to_owned())
        })
    };
    let erl = assigned("ERL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/erl")).filter(|p| p.is_file()))
        .ok_or_else(|| format!("no `erl` in {}", ejabberdctl.display()))?;
    Ok((erl, assigned("ERL_LIBS").filter(|d| Path::new(d).is_dir())))
}

/// Starts the node as a child in `kids`; returns its pid once the
/// accounts exist and every listener accepts.
pub fn start(s: &Spec, kids: &mut Kids) -> Result<u32, String> {
    let (erl, erl_libs) = erl_of(s.ejabberdctl)?;
    let d = |name: &str| s.dir.join(name);
    for sub in ["spool", "logs", "home"] {
        fs::create_dir_all(d(sub)).map_err(|e| format!("create {sub}: {e}"))?;
    }
    let cfg = d("ejabberd.yml");
    fs::write(&cfg, config(s)).map_err(|e| format!("write ejabberd.yml: {e}"))?;
    // Resolve localhost from this file only: no DNS on a private node.
    fs::write(
        d("inetrc"),
        "{lookup,[\"file\"]}.\n{host,{127,0,0,1},[\"localhost\"]}.\n",
    )
    .map_err(|e| format!("write inetrc: {e}"))?;
    let spool = d("spool");
    let spool = spool.to_str().ok_or("temp dir path is not UTF-8")?;
    let calls: Vec<String> = s
        .accounts
        .iter()
        .map(|(u, p)| format!("R(<<\"{u}\">>, <<\"{p}\">>)"))
        .collect();
    let mut cmd = Command::new(&erl);
    // Nothing from the caller's Erlang environment (ERL_FLAGS could name
    // the node and with it start epmd).
    for var in ["ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS"] {
        cmd.env_remove(var);
    }
    if let Some(libs) = erl_libs {
        cmd.env("ERL_LIBS", libs);
    }
    let out = d("ejabberd.out");
    let stdout = fs::File::create(&out).map_err(|e| format!("create ejabberd.out: {e}"))?;
    cmd.current_dir(d("spool"))
        .env("HOME", d("home"))
        .env("EJABBERD_CONFIG_PATH", &cfg)
        .env("EJABBERD_LOG_PATH", d("logs").join("ejabberd.log"))
        .env("ERL_CRASH_DUMP", d("logs").join("erl_crash.dump"))
        .env("ERL_INETRC", d("inetrc"))
        .env("CONTRIB_MODULES_PATH", d("home").join("modules"))
        .env("CONTRIB_MODULES_CONF_DIR", d("home").join("modules-conf"))
        .env_remove("EJABBERD_PID_PATH")
        // The VM flags ejabberdctl passes (kernel poll, process limit).
        .args(["+K", "true", "+P", "250000"])
        .args(["-noinput", "-start_epmd", "false"])
        .args(["-ejabberd", "quiet", "true"])
        .args(["-mnesia", "dir", &format!("\"{spool}\"")])
        .args(["-s", "ejabberd"])
        .args([
            "-eval",
            &format!(
                "R = fun(U, P) -> try ejabberd_auth:try_register(U, <<\"localhost\">>, P) \
                 catch C:E -> {{C, E}} end end, \
                 io:format(\"{ACCOUNTS_MARKER} ~p~n\", [[{}]]).",
                calls.join(", ")
            ),
        ])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null());
    let pid = kids.push(
        cmd.spawn()
            .map_err(|e| format!("start {}: {e}", erl.display()))?,
    );
    let log = d("logs").join("ejabberd.log");
    let ready = |module: &str, port: u16| {
        format!("Start accepting TCP connections at 127.0.0.1:{port} for {module}")
    };
    let mut listeners = vec![ready("ejabberd_c2s", s.c2s)];
    listeners.extend(
        s.components
            .iter()
            .map(|&(_, port)| ready("ejabberd_service", port)),
    );
    let all_ok = format!(
        "{ACCOUNTS_MARKER} [{}]",
        vec!["ok"; s.accounts.len()].join(",")
    );
    let t0 = Instant::now();
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let said = fs::read_to_string(&out).unwrap_or_default();
        match said.lines().find(|l| l.starts_with(ACCOUNTS_MARKER)) {
            Some(l) if l.trim() != all_ok => {
                return Err(format!("creating the accounts failed: {l}"))
            }
            Some(_) if listeners.iter().all(|l| text.contains(l)) => return Ok(pid),
            _ => {}
        }
        if !kids.alive(pid) || t0.elapsed() > START_LIMIT {
            return Err(format!(
                "ejabberd did not come up within {START_LIMIT:?}; see {} and {}",
                out.display(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
