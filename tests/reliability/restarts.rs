//! Reliability: a real XMPP server restarted again and again during a push
//! flood. A second external component (`flood.localhost`, this test)
//! registers devices at the app server (`push.localhost`) through the XMPP
//! server and publishes XEP-0357 notifications to them as fast as a window
//! of unanswered iqs allows; the XMPP server routes them between the two
//! components. Each restart is SIGTERM, 300 ms down, start again.
//!
//! Asserted: the app server's link is back within 5 s of the XMPP server
//! listening again, every time the server was away for less than the
//! link's fast window (it then tries again every second at most; the 5 s
//! leave room for a busy XMPP server to answer the handshake), within the
//! backoff's cap otherwise (p50 and max printed); every publish is
//! answered at most once (ids matched; a publish lost with a connection is
//! answered never, which XEP-0357 servers cope with); pushes flow again
//! after every restart; the app server's RSS after the run is within
//! 12 MiB of its RSS before the first restart (see RSS_GROWTH_BOUND_KIB).
//!
//! Reduced form (default): 5 Prosody restarts, 2 ejabberd restarts. Long
//! form with `PUSH_RELIABILITY_FULL=1`: 100 and 20. Needs Prosody 0.12 and
//! ejabberd 23.01 as the interop tests (`tests/interop/`) do.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::interop::ejabberd::CFG_TEMPLATE as EJABBERD_CFG_TEMPLATE;
use crate::support::interop::*;
use crate::support::reliability::*;

const FLOOD_JID: &str = "flood.localhost";
const DEVICES: usize = 20;
const WINDOW: u64 = 64;
/// How soon after the XMPP server listens again the link must be back.
const RECONNECT_BOUND: Duration = Duration::from_secs(5);
/// While the server is away for less than this, the link tries again at
/// least every second (the link's fast window is 30 s from the lost
/// session, `backoff::Reconnect::FAST_WINDOW`; 5 s of margin).
const FAST_WINDOW: Duration = Duration::from_secs(25);
/// The link's longest backoff, which applies after the fast window.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Longest wait for the XMPP server to start (a hang on a busy machine).
const STARTUP: Duration = Duration::from_secs(120);
/// RSS growth allowed over the run. Restarts themselves must cost nothing
/// lasting; what grows is the store's memtables (4 MiB each, filled by the
/// per-push statistics; they grow with pushes, not with restarts: 100
/// Prosody restarts with 20k pushes grew 5.8 MiB, 20 ejabberd restarts
/// with 38k pushes 9.4 MiB) and the allocator's high-water mark.
const RSS_GROWTH_BOUND_KIB: u64 = 12 * 1024;

#[test]
fn prosody_restarts_during_a_push_flood() {
    let restarts = if full() { 100 } else { 5 };
    Fixture::new(
        "reliability-prosody",
        &[("prosody.out", 30), ("prosody.log", 60)],
    )
    .run(|fx| scenario(fx, Server::Prosody, restarts));
}

#[test]
fn ejabberd_restarts_during_a_push_flood() {
    let restarts = if full() { 20 } else { 2 };
    Fixture::new(
        "reliability-ejabberd",
        &[("ejabberd.out", 30), ("ejabberd-logs/ejabberd.log", 60)],
    )
    .run(|fx| scenario(fx, Server::Ejabberd, restarts));
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Prosody,
    Ejabberd,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Prosody => "prosody",
            Server::Ejabberd => "ejabberd",
        }
    }

    fn log(self, fx: &Fixture) -> String {
        match self {
            Server::Prosody => read_lossy(&fx.path("prosody.log")),
            Server::Ejabberd => read_lossy(&fx.path("ejabberd-logs/ejabberd.log")),
        }
    }

    /// Times the component port has been opened.
    fn listened(self, fx: &Fixture, setup: &Setup) -> usize {
        let needle = match self {
            Server::Prosody => format!(
                "Activated service 'component' on [127.0.0.1]:{}",
                setup.component_port
            ),
            Server::Ejabberd => format!(
                "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_service",
                setup.component_port
            ),
        };
        self.log(fx).matches(&needle).count()
    }

    /// Times the app server's component has authenticated.
    fn linked(self, fx: &Fixture) -> usize {
        let log = self.log(fx);
        match self {
            Server::Prosody => log
                .lines()
                .filter(|l| {
                    l.contains(&format!(" {PUSH_JID}:component"))
                        && l.contains("successfully authenticated")
                })
                .count(),
            Server::Ejabberd => log
                .matches(&format!(
                    "Accepted external component handshake authentication for {PUSH_JID}"
                ))
                .count(),
        }
    }

    fn configure(self, fx: &Fixture, setup: &Setup, flood_port: u16) -> Result<(), String> {
        match self {
            Server::Prosody => {
                let cfg = setup
                    .fill(PROSODY_CFG_TEMPLATE)
                    .replace("min = \"debug\"", "min = \"info\"")
                    + &format!(
                        "\nComponent \"{FLOOD_JID}\"\n\tcomponent_secret = \"{}\"\n",
                        setup.secret
                    );
                fs::write(fx.path("prosody.cfg.lua"), cfg).map_err(|e| e.to_string())
            }
            Server::Ejabberd => {
                let link = "      push.localhost:\n        password: \"@COMPONENT_SECRET@\"\n";
                if !EJABBERD_CFG_TEMPLATE.contains(link) {
                    return Err("ejabberd.yml.in changed: no push.localhost listener".into());
                }
                let second = format!(
                    "{link}  -\n    port: {flood_port}\n    ip: \"127.0.0.1\"\n    \
                     module: ejabberd_service\n    hosts:\n      {FLOOD_JID}:\n        \
                     password: \"@COMPONENT_SECRET@\"\n"
                );
                let cfg = setup.fill(
                    &EJABBERD_CFG_TEMPLATE
                        .replace(link, &second)
                        .replace("loglevel: debug", "loglevel: info"),
                );
                for d in ["ejabberd-spool", "ejabberd-logs", "ejabberd-home"] {
                    fs::create_dir_all(fx.path(d)).map_err(|e| e.to_string())?;
                }
                fs::write(
                    fx.path("inetrc"),
                    "{lookup,[\"file\"]}.\n{host,{127,0,0,1},[\"localhost\"]}.\n",
                )
                .map_err(|e| e.to_string())?;
                fs::write(fx.path("ejabberd.yml"), cfg).map_err(|e| e.to_string())
            }
        }
    }

    fn start(self, fx: &mut Fixture) -> Result<(), String> {
        match self {
            Server::Prosody => {
                let prosody = in_path("prosody").ok_or("prosody is not installed")?;
                let mut cmd = Command::new(prosody);
                cmd.arg("--config")
                    .arg(fx.path("prosody.cfg.lua"))
                    .arg("-F");
                fx.spawn("prosody", cmd, "prosody.out")
            }
            Server::Ejabberd => {
                let mut cmd = erl_command()?;
                let spool = fx.path("ejabberd-spool");
                let spool_str = spool.to_str().ok_or("spool path is not UTF-8")?.to_owned();
                cmd.current_dir(&spool)
                    .env("HOME", fx.path("ejabberd-home"))
                    .env("EJABBERD_CONFIG_PATH", fx.path("ejabberd.yml"))
                    .env(
                        "EJABBERD_LOG_PATH",
                        fx.path("ejabberd-logs").join("ejabberd.log"),
                    )
                    .env("ERL_CRASH_DUMP", fx.path("ejabberd-logs/erl_crash.dump"))
                    .env("ERL_INETRC", fx.path("inetrc"))
                    .env_remove("EJABBERD_PID_PATH")
                    .args(["-noinput", "-start_epmd", "false"])
                    .args(["-ejabberd", "quiet", "true"])
                    .args(["-mnesia", "dir", &format!("\"{spool_str}\"")])
                    .args(["-s", "ejabberd"]);
                fx.spawn("ejabberd", cmd, "ejabberd.out")
            }
        }
    }
}

/// `erl` with the code path ejabberdctl uses (as tests/interop/ejabberd.rs).
fn erl_command() -> Result<Command, String> {
    let ctl = in_path("ejabberdctl")
        .or_else(|| {
            ["/usr/sbin/ejabberdctl", "/usr/local/sbin/ejabberdctl"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .ok_or("ejabberd is not installed (no ejabberdctl)")?;
    let script = read_lossy(&ctl);
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
        .ok_or("no Erlang `erl` found")?;
    let mut cmd = Command::new(erl);
    for var in ["ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS"] {
        cmd.env_remove(var);
    }
    if let Some(libs) = assigned("ERL_LIBS").filter(|d| std::path::Path::new(d).is_dir()) {
        cmd.env("ERL_LIBS", libs);
    }
    Ok(cmd)
}

const APPSERVER_CFG: &str = "data_dir = \"@TMPDIR@/appserver-data\"\nrate_limit = 0\n\
    log_level = \"warn\"\n[http]\nlisten = \"127.0.0.1:@HTTP_PORT@\"\n\
    [[component]]\njid = \"push.localhost\"\nserver = \"127.0.0.1:@COMPONENT_PORT@\"\n\
    secret = \"@COMPONENT_SECRET@\"\ntypes = [\"fcm\"]\n[app.fcm]\nprovider = \"log\"\nfile = \"/dev/null\"\n";

/// Waits (polling every 10 ms) until `f` reaches `n`; the moment it did.
fn wait_count(
    fx: &mut Fixture,
    what: &str,
    n: usize,
    limit: Duration,
    f: impl Fn(&Fixture) -> usize,
) -> Result<Instant, String> {
    let start = Instant::now();
    loop {
        if f(fx) >= n {
            return Ok(Instant::now());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "{what}: seen {} times, want {n}, after {limit:?}",
                f(fx)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect_flooder(port: u16, secret: &str) -> Result<Component, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Component::connect(port, FLOOD_JID, secret) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(format!("flooder: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn scenario(fx: &mut Fixture, server: Server, restarts: usize) -> Result<(), String> {
    let started = Instant::now();
    let setup = Setup::new(fx)?;
    // Prosody serves every component on one port; ejabberd gets a second
    // listener for the flooder.
    let flood_port = match server {
        Server::Prosody => setup.component_port,
        // Released ports can be handed out again: not one of the setup's.
        Server::Ejabberd => {
            let taken = [setup.c2s_port, setup.component_port, setup.http_port];
            free_ports(8)?
                .into_iter()
                .find(|p| !taken.contains(p))
                .ok_or("no free port for the flooder")?
        }
    };
    server.configure(fx, &setup, flood_port)?;
    let (up, link) = (
        |fx: &Fixture| server.listened(fx, &setup),
        |fx: &Fixture| server.linked(fx),
    );
    server.start(fx)?;
    wait_count(fx, "server listening", 1, STARTUP, up)?;
    let cfg = setup.write_config(fx, "appserver.toml", APPSERVER_CFG)?;
    let mut cmd = Command::new(appserver_bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    fx.spawn_split(
        "push-appserver",
        cmd,
        "appserver.stdout",
        "appserver.stderr",
    )?;
    wait_count(fx, "app server linked", 1, Duration::from_secs(60), link)?;
    let pid = pid_with_arg(cfg.to_str().ok_or("path")?).ok_or("no app server pid")?;

    // Registrations through the XMPP server, owned by flood.localhost.
    let mut c = connect_flooder(flood_port, &setup.secret)?;
    let owner = format!("flooder@{FLOOD_JID}/r");
    let regs = (0..DEVICES)
        .map(|i| register(&mut c, &owner, PUSH_JID, &format!("dev{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let target = FloodTarget {
        port: flood_port,
        jid: FLOOD_JID.into(),
        secret: setup.secret.clone(),
        push_jid: PUSH_JID.into(),
        regs,
        window: WINDOW,
    };
    let flood = Flood::start(target, c);
    // Warm up: RSS "before" is taken with the flood running.
    std::thread::sleep(Duration::from_secs(2));
    let warm = flood.snapshot();
    if warm.results == 0 {
        return Err(format!("no push answered during warm-up: {warm:?}"));
    }
    let rss_before = proc_kib(pid, "VmRSS").ok_or("no RSS")?;

    let mut gaps = Vec::new();
    // (restart, time the server was away, link back after it listened)
    let mut late = Vec::new();
    for i in 1..=restarts {
        let stopping = Instant::now();
        fx.stop(server.name(), Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_millis(300));
        server.start(fx)?;
        let listening = wait_count(fx, "server listening", i + 1, STARTUP, up)?;
        let linked = wait_count(fx, "app server linked", i + 1, BACKOFF_CAP + STARTUP, link)?;
        let gap = linked.saturating_duration_since(listening);
        let away = listening.saturating_duration_since(stopping);
        let bound = if away < FAST_WINDOW {
            RECONNECT_BOUND
        } else {
            BACKOFF_CAP + RECONNECT_BOUND
        };
        if gap > bound {
            late.push((i, away, gap));
        }
        gaps.push(gap);
        // The flood goes through again before the next restart.
        let r0 = flood.snapshot().results;
        wait_until(
            fx,
            Duration::from_secs(60),
            "pushes after a restart",
            |_| Ok(flood.snapshot().results >= r0 + 50),
        )?;
        if full() && i % 10 != 0 {
            continue;
        }
        log(&format!(
            "{} restart {i}: link back {} after it listened; {} pushes answered so far",
            server.name(),
            ms(gap),
            flood.snapshot().results
        ));
    }
    let tally = flood.finish(Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = proc_kib(pid, "VmRSS").ok_or("no RSS")?;
    let rss_peak = proc_kib(pid, "VmHWM").unwrap_or(0);
    fx.check_alive()?;

    let (p50, max) = (percentile(&mut gaps, 50), percentile(&mut gaps, 100));
    log(&format!(
        "FIGURES {}: restarts={restarts} reconnect p50={} max={}; publishes sent={} \
         answered={} (results={} bounced by the server={} errors={:?}) duplicates={} \
         unknown ids={}; flooder connections={}; RSS before={} after={} peak={}; {:.0} s",
        server.name(),
        ms(p50),
        ms(max),
        tally.sent,
        tally.answered(),
        tally.results,
        tally.bounced,
        tally.errors,
        tally.duplicates(),
        tally.unknown,
        tally.connects,
        mib(rss_before),
        mib(rss_after),
        mib(rss_peak),
        started.elapsed().as_secs_f64()
    ));
    if !late.is_empty() {
        return Err(format!(
            "link came back too late after a restart (restart, server away, link back \
             after it listened): {late:?}; all: {gaps:?}"
        ));
    }
    if tally.duplicates() > 0 || tally.unknown > 0 {
        return Err(format!(
            "{} publishes answered twice, {} answers to unknown ids",
            tally.duplicates(),
            tally.unknown
        ));
    }
    if let Some(e) = tally.errors.keys().find(|e| !e.starts_with("wait/")) {
        return Err(format!(
            "an error that disables push: {e} ({:?})",
            tally.errors
        ));
    }
    if rss_after > rss_before + RSS_GROWTH_BOUND_KIB {
        return Err(format!(
            "RSS grew from {} to {} over the restarts",
            mib(rss_before),
            mib(rss_after)
        ));
    }
    Ok(())
}
