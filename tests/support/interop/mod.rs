//! Shared harness of the tests against real XMPP servers (`tests/interop/`,
//! `tests/reliability/restarts.rs`): a temp dir
//! with child processes killed on every path, bounded waits, the
//! push-appserver binary with `tests/interop/appserver.toml.in`, the XMPP
//! client flow of `tests/interop/client.py` (python3-slixmpp) and the check
//! that exactly one push reached `pushes.jsonl`. Std only. Starting the
//! servers themselves: [`prosody`], [`ejabberd`].

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod ejabberd;
pub mod prosody;

pub const APPSERVER_CFG_TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/appserver.toml.in"
));
/// The Prosody config of the interop tests (`prosody::start`'s template).
pub const PROSODY_CFG_TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/prosody.cfg.lua.in"
));
pub const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/client.py");
pub const APPSERVER_BIN: &str = env!("CARGO_BIN_EXE_push-appserver");

/// Longest wait for a real XMPP server to start (or for prosodyctl): a
/// deadline for a hang, sized for a machine busy with other builds (an
/// ejabberd start took over 30 s on two busy cores).
pub const SERVER_STARTUP: Duration = Duration::from_secs(120);
/// Longest wait for the app server's component to authenticate with a
/// server that is up.
pub const COMPONENT_LINK: Duration = Duration::from_secs(60);

pub const PUSH_JID: &str = "push.localhost";
pub const DOMAIN: &str = "localhost";
pub const PUSH_TYPE: &str = "fcm";

// ---------------------------------------------------------------------------
// the scenario's shared steps
// ---------------------------------------------------------------------------

/// Ports, secrets and account passwords of one run, all random.
pub struct Setup {
    pub c2s_port: u16,
    pub component_port: u16,
    pub http_port: u16,
    pub secret: String,
    pub device_node: String,
    pub device_token: String,
    pub alice_pw: String,
    pub bob_pw: String,
    pub dir: String,
}

impl Setup {
    pub fn new(fx: &Fixture) -> Result<Setup, String> {
        let ports = free_ports(3)?;
        let setup = Setup {
            c2s_port: ports[0],
            component_port: ports[1],
            http_port: ports[2],
            secret: format!("interop-secret-{:016x}", random_u64()),
            device_node: format!("interop-device-{:016x}", random_u64()),
            device_token: format!("interop-token-{:016x}", random_u64()),
            alice_pw: format!("a-{:x}", random_u64()),
            bob_pw: format!("b-{:x}", random_u64()),
            dir: fx
                .dir
                .to_str()
                .ok_or("temp dir path is not UTF-8")?
                .to_string(),
        };
        log(&format!(
            "ports: c2s={} component={} http={}",
            setup.c2s_port, setup.component_port, setup.http_port
        ));
        Ok(setup)
    }

    /// Fills the `@NAME@` placeholders shared by all config templates.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("@TMPDIR@", &self.dir)
            .replace("@C2S_PORT@", &self.c2s_port.to_string())
            .replace("@COMPONENT_PORT@", &self.component_port.to_string())
            .replace("@HTTP_PORT@", &self.http_port.to_string())
            .replace("@COMPONENT_SECRET@", &self.secret)
    }

    /// Writes `template`, filled, to `name` in the temp dir.
    pub fn write_config(
        &self,
        fx: &Fixture,
        name: &str,
        template: &str,
    ) -> Result<PathBuf, String> {
        let p = fx.path(name);
        fs::write(&p, self.fill(template)).map_err(|e| format!("write {}: {e}", p.display()))?;
        Ok(p)
    }
}

/// Starts the app server (`run --config appserver.toml`, written from
/// `appserver.toml.in`); output in appserver.stdout / appserver.stderr.
pub fn start_appserver(fx: &mut Fixture, setup: &Setup) -> Result<(), String> {
    start_appserver_with(fx, setup, APPSERVER_CFG_TEMPLATE)
}

/// [`start_appserver`] with the config written from `template` (its
/// `@NAME@` placeholders filled in).
pub fn start_appserver_with(fx: &mut Fixture, setup: &Setup, template: &str) -> Result<(), String> {
    let cfg = setup.write_config(fx, "appserver.toml", template)?;
    let mut cmd = Command::new(appserver_bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    fx.spawn_split(
        "push-appserver",
        cmd,
        "appserver.stdout",
        "appserver.stderr",
    )
}

/// Logs the first line of the health page (informational only).
pub fn note_health(setup: &Setup) {
    match http_get(setup.http_port, "/push_appserver/v1/health") {
        Ok(resp) => log(&format!(
            "health endpoint answered: {}",
            resp.lines().next().unwrap_or("<empty>")
        )),
        Err(e) => log(&format!(
            "note: health endpoint did not answer ({e}); not part of this test"
        )),
    }
}

/// What client.py reports about the registration.
pub struct Registration {
    pub jid: String,
    pub node: String,
}

/// Runs client.py: alice registers a device with `v1-register-push`,
/// enables push with the answer and goes offline; bob sends her a message.
pub fn run_client(fx: &mut Fixture, python: &str, setup: &Setup) -> Result<Registration, String> {
    let client_out = fx.path("client.stdout");
    let client_err = fx.path("client.stderr");
    let mut cmd = Command::new(python);
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
        .args([
            "--type",
            PUSH_TYPE,
            "--node",
            &setup.device_node,
            "--token",
            &setup.device_token,
        ])
        .args(["--timeout", "10"]);
    let status = run_bounded_split(&mut cmd, Duration::from_secs(90), &client_out, &client_err)?;
    let stdout = read_lossy(&client_out);
    log(&format!("client.py ({status}): {}", stdout.trim()));
    let result_line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let result = Json::parse(result_line).map_err(|e| {
        format!(
            "client.py printed no JSON result ({e}); stderr:\n{}",
            read_lossy(&client_err)
        )
    })?;
    if !status.success() || result.get("ok") != Some(&Json::Bool(true)) {
        return Err(format!(
            "client.py failed ({status}): {result_line}\nclient.py stderr:\n{}",
            tail(&read_lossy(&client_err), 40)
        ));
    }
    let reg = result
        .get("register")
        .ok_or("client.py result lacks 'register'")?;
    let jid = reg
        .get("jid")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let node = reg
        .get("node")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if jid != PUSH_JID {
        return Err(format!(
            "v1-register-push answered jid={jid:?}, want {PUSH_JID:?}"
        ));
    }
    if node.is_empty() {
        return Err("v1-register-push answered an empty node".into());
    }
    Ok(Registration { jid, node })
}

/// Waits (bounded) for a push line of the device in pushes.jsonl, then 2 s
/// more, and checks there is exactly one, with the registration's type,
/// token and component. Returns that line.
pub fn expect_one_push(
    fx: &mut Fixture,
    setup: &Setup,
    reg: &Registration,
) -> Result<Json, String> {
    let pushes_file = fx.path("pushes.jsonl");
    let is_ours = |j: &Json| {
        let n = j.get("node").and_then(Json::as_str);
        n == Some(setup.device_node.as_str()) || n == Some(reg.node.as_str())
    };
    wait_until(
        fx,
        Duration::from_secs(30),
        "a push line in pushes.jsonl",
        |_| Ok(read_pushes(&pushes_file)?.iter().any(&is_ours)),
    )?;
    // make sure no second push trickles in
    sleep(Duration::from_secs(2));
    fx.check_alive()?;
    let pushes = read_pushes(&pushes_file)?;
    let ours: Vec<&Json> = pushes.iter().filter(|j| is_ours(j)).collect();
    if ours.len() != 1 {
        return Err(format!(
            "expected exactly one push for node {:?}, got {}:\n{}",
            setup.device_node,
            ours.len(),
            read_lossy(&pushes_file)
        ));
    }
    let push = ours[0].clone();
    let field = |k: &str| push.get(k).and_then(Json::as_str).map(str::to_string);
    for (key, want) in [
        ("type", PUSH_TYPE),
        ("token", setup.device_token.as_str()),
        ("component", PUSH_JID),
    ] {
        if field(key).as_deref() != Some(want) {
            return Err(format!(
                "push line has {key} {:?}, want {want:?}: {push:?}",
                field(key)
            ));
        }
    }
    if push.get("priority").is_none() {
        return Err(format!("push line lacks 'priority': {push:?}"));
    }
    Ok(push)
}

// ---------------------------------------------------------------------------
// fixture: temp dir + child processes, cleaned up on every path
// ---------------------------------------------------------------------------

pub struct Fixture {
    pub dir: PathBuf,
    children: Vec<(&'static str, Child)>,
    pub passed: bool,
    pub failure: Option<String>,
    /// Files (relative to `dir`) whose tails are printed on failure, with
    /// the number of lines; the app server's and client's files come after.
    pub diagnostics: Vec<(String, usize)>,
}

impl Fixture {
    /// A fresh temp dir named after `tag`; `diagnostics` lists the
    /// server-specific files to print on failure.
    pub fn new(tag: &str, diagnostics: &[(&str, usize)]) -> Fixture {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "push-appserver-{tag}-{}-{nanos}-{:08x}",
            std::process::id(),
            random_u64() as u32
        ));
        fs::create_dir_all(&dir).expect("create temp dir");
        let mut diag: Vec<(String, usize)> = diagnostics
            .iter()
            .map(|(f, n)| (f.to_string(), *n))
            .collect();
        for (f, n) in [
            ("appserver.stdout", 30),
            ("appserver.stderr", 120),
            ("client.stdout", 20),
            ("client.stderr", 60),
            ("pushes.jsonl", 20),
        ] {
            diag.push((f.to_string(), n));
        }
        Fixture {
            dir,
            children: Vec::new(),
            passed: false,
            failure: None,
            diagnostics: diag,
        }
    }

    /// Runs `scenario`; on error, records it and panics (Drop prints the logs).
    pub fn run(mut self, scenario: impl FnOnce(&mut Fixture) -> Result<(), String>) {
        let started = Instant::now();
        if let Err(msg) = scenario(&mut self) {
            self.failure = Some(msg.clone());
            panic!("interop test failed: {msg}");
        }
        log(&format!(
            "passed in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        self.passed = true;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn spawn(&mut self, name: &'static str, cmd: Command, out: &str) -> Result<(), String> {
        self.spawn_split(name, cmd, out, out)
    }

    pub fn spawn_split(
        &mut self,
        name: &'static str,
        mut cmd: Command,
        out: &str,
        err: &str,
    ) -> Result<(), String> {
        let (o, e) = open_outputs(&self.path(out), &self.path(err))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// Stops the child `name` with SIGTERM (as a service manager would),
    /// waiting at most `timeout` before a SIGKILL; it is forgotten after.
    pub fn stop(&mut self, name: &str, timeout: Duration) -> Result<(), String> {
        let i = self
            .children
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| format!("no child named {name}"))?;
        let (_, mut child) = self.children.remove(i);
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Fails if one of the long-running children has already exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for (name, child) in self.children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited unexpectedly ({status})"));
            }
        }
        Ok(())
    }

    fn dump_logs(&self) {
        eprintln!(
            "\n===== interop failure diagnostics ({}) =====",
            self.dir.display()
        );
        for (file, lines) in &self.diagnostics {
            let p = self.path(file);
            if p.exists() {
                eprintln!(
                    "----- tail of {file} -----\n{}",
                    tail(&read_lossy(&p), *lines)
                );
            } else {
                eprintln!("----- {file}: (not created) -----");
            }
        }
        if let Some(msg) = &self.failure {
            eprintln!("----- failure -----\n{msg}");
        }
        eprintln!("===== end of diagnostics =====");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // the app server first (started last), then the XMPP server
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.passed {
            self.dump_logs();
        }
        if std::env::var_os("PUSH_INTEROP_KEEP").is_some() {
            eprintln!("PUSH_INTEROP_KEEP set: keeping {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn log(msg: &str) {
    eprintln!("[interop] {msg}");
}

pub fn open_outputs(out: &Path, err: &Path) -> Result<(fs::File, fs::File), String> {
    let o = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| format!("open {}: {e}", out.display()))?;
    let e = if out == err {
        o.try_clone()
            .map_err(|e| format!("dup {}: {e}", out.display()))?
    } else {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(err)
            .map_err(|e| format!("open {}: {e}", err.display()))?
    };
    Ok((o, e))
}

pub fn run_bounded(cmd: &mut Command, timeout: Duration, out: &Path) -> Result<ExitStatus, String> {
    run_bounded_split(cmd, timeout, out, out)
}

/// Runs a short-lived command with its output in files, killing it after `timeout`.
pub fn run_bounded_split(
    cmd: &mut Command,
    timeout: Duration,
    out: &Path,
    err: &Path,
) -> Result<ExitStatus, String> {
    let (o, e) = open_outputs(out, err)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(o)
        .stderr(e)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() < timeout => sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmd:?} did not finish within {timeout:?}; output:\n{}",
                    tail(&read_lossy(out), 40)
                ));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for {cmd:?}: {e}"));
            }
        }
    }
}

/// Polls `cond` every 100 ms for at most `timeout`, failing early when a child died.
pub fn wait_until(
    fx: &mut Fixture,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&mut Fixture) -> Result<bool, String>,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if cond(fx)? {
            return Ok(());
        }
        fx.check_alive()
            .map_err(|e| format!("while waiting for {what}: {e}"))?;
        if start.elapsed() >= timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        sleep(Duration::from_millis(100));
    }
}

pub fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn read_pushes(p: &Path) -> Result<Vec<Json>, String> {
    let text = read_lossy(p);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Json::parse(line) {
            Ok(v) => out.push(v),
            // the last line may still be being written: look again next round
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(format!("{} line {}: {e}: {line}", p.display(), i + 1)),
        }
    }
    Ok(out)
}

pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Distinct free loopback ports, below the kernel's ephemeral range (see
/// `harness::free_port`): servers restarted on them (Prosody, ejabberd)
/// find them free again, never taken by an outgoing connection meanwhile.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    Ok((0..n)
        .map(|_| crate::support::harness::free_port())
        .collect())
}

pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The binary under test; `PUSH_INTEROP_APPSERVER` substitutes another
/// program taking the same `run --config FILE` arguments (a development aid).
pub fn appserver_bin() -> PathBuf {
    std::env::var_os("PUSH_INTEROP_APPSERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(APPSERVER_BIN))
}

pub fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn sibling_or_path(of: &Path, name: &str) -> Option<PathBuf> {
    of.parent()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .or_else(|| in_path(name))
}

/// The Debian python3-slixmpp lives in /usr/bin/python3's dist-packages, which
/// a pyenv/venv `python3` earlier in PATH does not see: try that one first
/// (or only `PUSH_INTEROP_PYTHON` when set).
pub fn find_python_with_slixmpp(fx: &Fixture, install_hint: &str) -> Result<String, String> {
    let candidates: Vec<String> = match std::env::var("PUSH_INTEROP_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    let mut tried = Vec::new();
    for py in candidates {
        let out = fx.path("python-probe.out");
        let _ = fs::remove_file(&out);
        let mut cmd = Command::new(&py);
        cmd.args(["-c", "import slixmpp; print(slixmpp.__version__)"]);
        match run_bounded(&mut cmd, Duration::from_secs(30), &out) {
            Ok(s) if s.success() => return Ok(py),
            Ok(s) => tried.push(format!("{py}: {s}: {}", read_lossy(&out).trim())),
            Err(e) => tried.push(format!("{py}: {e}")),
        }
    }
    Err(format!(
        "no python3 with slixmpp found (tried: {}); the Debian package python3-slixmpp is missing; {install_hint}",
        tried.join(" | ")
    ))
}

// ---------------------------------------------------------------------------
// a minimal JSON reader (the tests use std only)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at byte {}", p.i));
        }
        Ok(v)
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err("unexpected end of input".into()),
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    kv.push((k, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(kv));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad value at byte {start}"))
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let t = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(t).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected string at byte {}", self.i));
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}
