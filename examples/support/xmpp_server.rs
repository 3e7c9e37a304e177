//! The XMPP server under test in the real-path benchmark: a private
//! Prosody or ejabberd on loopback with the bench's components and c2s
//! accounts. The bench only sees this: start, pid, ports, CPU, stop.
//! (`#[path = "support/xmpp_server.rs"] mod xmpp_server;`, needs
//! `mod kids;`, `mod procfs;` and `mod ejabberd;`)
#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ejabberd;
use crate::kids::Kids;
use crate::procfs::{comm, process_tree, tree_cpu_secs};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Prosody (Lua), one process.
    Prosody,
    /// ejabberd (Erlang): a beam.smp VM and its helper processes.
    Ejabberd,
}

impl Kind {
    /// Parses a comma list such as `prosody,ejabberd`.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
        s.split(',')
            .map(|k| match k.trim() {
                "prosody" => Ok(Kind::Prosody),
                "ejabberd" => Ok(Kind::Ejabberd),
                other => Err(format!("unknown server {other:?} (prosody, ejabberd)")),
            })
            .collect()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Prosody => "Prosody",
            Kind::Ejabberd => "ejabberd",
        })
    }
}

/// Where the servers' programs are.
pub struct Programs {
    /// `prosody` (prosodyctl is taken from the same directory).
    pub prosody: PathBuf,
    /// `ejabberdctl` (read for `erl` and `ERL_LIBS`, never run).
    pub ejabberdctl: PathBuf,
}

/// A running private server; its process is a child in the caller's `Kids`.
pub struct XmppServer {
    /// Which server.
    pub kind: Kind,
    /// The server's process (for ejabberd, beam.smp of this private node).
    pub pid: u32,
    /// c2s port on 127.0.0.1.
    pub c2s: u16,
    /// Each component JID and its XEP-0114 port on 127.0.0.1 (Prosody:
    /// one port for all; ejabberd: one listener each).
    pub components: Vec<(String, u16)>,
}

/// `n` distinct ports free on 127.0.0.1 at this moment (all held until
/// the last is found, so none comes twice).
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no free port: {e}"))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no free port: {e}"))
}

impl XmppServer {
    /// Starts `kind` in `dir` with the `components` (all with `secret`) and
    /// the `accounts` `(user, password)` at `localhost`, on free loopback
    /// ports; returns once it accepts c2s and component connections.
    pub fn start(
        kind: Kind,
        programs: &Programs,
        dir: &Path,
        kids: &mut Kids,
        components: &[&str],
        secret: &str,
        accounts: &[(&str, &str)],
    ) -> Result<XmppServer, String> {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // Prosody serves every component on one port, ejabberd needs one each.
        let n = match kind {
            Kind::Prosody => 1,
            Kind::Ejabberd => components.len().max(1),
        };
        let mut ports = free_ports(1 + n)?;
        let c2s = ports.remove(0);
        let by_jid: Vec<(&str, u16)> = components
            .iter()
            .enumerate()
            .map(|(i, &jid)| (jid, ports[i.min(ports.len() - 1)]))
            .collect();
        let pid = match kind {
            Kind::Prosody => start_prosody(
                &programs.prosody,
                dir,
                kids,
                (c2s, ports.first().copied().unwrap_or(0)),
                components,
                secret,
                accounts,
            )?,
            Kind::Ejabberd => ejabberd::start(
                &ejabberd::Spec {
                    ejabberdctl: &programs.ejabberdctl,
                    dir,
                    c2s,
                    components: &by_jid,
                    secret,
                    accounts,
                },
                kids,
            )?,
        };
        Ok(XmppServer {
            kind,
            pid,
            c2s,
            components: by_jid
                .into_iter()
                .map(|(jid, port)| (jid.to_owned(), port))
                .collect(),
        })
    }

    /// The port the component `jid` connects to.
    pub fn component_port(&self, jid: &str) -> Option<u16> {
        self.components
            .iter()
            .find(|(j, _)| j == jid)
            .map(|&(_, port)| port)
    }

    /// CPU seconds used so far by the server's process and its live
    /// children (beam.smp runs erl_child_setup beside it; only the
    /// processes below this node's pid count, never a system instance).
    pub fn cpu_secs(&self) -> f64 {
        tree_cpu_secs(self.pid)
    }

    /// One line naming the server's processes, for the report.
    pub fn describe(&self) -> String {
        let procs: Vec<String> = process_tree(self.pid)
            .into_iter()
            .map(|p| format!("{} {p}", comm(p)))
            .collect();
        format!("{} (processes: {})", self.kind, procs.join(", "))
    }

    /// Stops the server: SIGTERM, so that beam.smp closes its ports and
    /// their helper processes exit with it; SIGKILL after a few seconds.
    pub fn stop(self, kids: &mut Kids) {
        kids.terminate(self.pid, Duration::from_secs(5));
    }
}

fn prosody_config(dir: &Path, c2s: u16, comp: u16, components: &[&str], secret: &str) -> String {
    let mut cfg = format!(
        "run_as_root = true\ndata_path = \"{d}/prosody-data\"\npidfile = \"{d}/prosody.pid\"\n\
         log = {{ {{ levels = {{ min = \"warn\" }}, to = \"file\", filename = \"{d}/prosody.log\" }} }}\n\
         interfaces = {{ \"127.0.0.1\" }}\nc2s_ports = {{ {c2s} }}\nc2s_direct_tls_ports = {{ }}\n\
         legacy_ssl_ports = {{ }}\ncomponent_ports = {{ {comp} }}\ncomponent_interface = \"127.0.0.1\"\n\
         s2s_ports = {{ }}\nhttp_ports = {{ }}\nhttps_ports = {{ }}\n\
         c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n\
         authentication = \"internal_plain\"\nstorage = \"internal\"\ncertificates = \"{d}\"\n\
         modules_enabled = {{ \"disco\"; \"saslauth\"; \"posix\" }}\n\
         modules_disabled = {{ \"s2s\"; \"s2s_auth_certs\"; \"smacks\"; \"tls\"; \"limits\" }}\n\
         VirtualHost \"localhost\"\n",
        d = dir.display()
    );
    for c in components {
        cfg.push_str(&format!(
            "Component \"{c}\"\n\tcomponent_secret = \"{secret}\"\n"
        ));
    }
    cfg
}

/// Prosody in the foreground; the accounts are written by prosodyctl
/// before it starts. Ready when the component port accepts.
fn start_prosody(
    prosody: &Path,
    dir: &Path,
    kids: &mut Kids,
    (c2s, comp): (u16, u16),
    components: &[&str],
    secret: &str,
    accounts: &[(&str, &str)],
) -> Result<u32, String> {
    let cfg = dir.join("prosody.cfg.lua");
    fs::write(&cfg, prosody_config(dir, c2s, comp, components, secret))
        .map_err(|e| format!("write {}: {e}", cfg.display()))?;
    let prosodyctl = prosody.with_file_name("prosodyctl");
    for (user, pw) in accounts {
        let ok = Command::new(&prosodyctl)
            .arg("--config")
            .arg(&cfg)
            .args(["register", user, "localhost", pw])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| {
                format!(
                    "{}: {e} (Debian `prosody`; --prosody PATH)",
                    prosodyctl.display()
                )
            })?;
        if !ok.success() {
            return Err(format!("prosodyctl register {user} failed ({ok})"));
        }
    }
    let err = fs::File::create(dir.join("prosody.err")).map_err(|e| format!("prosody.err: {e}"))?;
    let pid = kids.push(
        Command::new(prosody)
            .arg("--config")
            .arg(&cfg)
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {}: {e}", prosody.display()))?,
    );
    let limit = Duration::from_secs(20);
    let up = Instant::now();
    while TcpStream::connect(("127.0.0.1", comp)).is_err() {
        if !kids.alive(pid) || up.elapsed() > limit {
            return Err(format!(
                "prosody did not listen within {limit:?}; see {}",
                dir.join("prosody.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(pid)
}
