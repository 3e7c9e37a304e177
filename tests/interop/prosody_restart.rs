//! A real Prosody 0.12 restarted again and again: the component link must
//! be back soon after Prosody listens again, every time, its delay never
//! growing. (Before the backoff was reset on every handshake, each short
//! session let the reconnect delay grow: 1 s, 2 s, 4 s ... up to 60 s; the
//! bound of 6 s catches that by the fourth restart and leaves a busy
//! machine room above the 0.5 s first retry.)
//!
//! Same harness and prerequisites as `tests/interop/prosody.rs`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::interop::*;

const RESTARTS: usize = 8;
const BOUND: Duration = Duration::from_secs(6);

#[test]
fn the_link_reconnect_delay_does_not_grow_over_prosody_restarts() {
    Fixture::new(
        "interop-restart",
        &[("prosody.out", 30), ("prosody.log", 60)],
    )
    .run(scenario);
}

fn count(fx: &Fixture, needle: &str) -> usize {
    read_lossy(&fx.path("prosody.log")).matches(needle).count()
}

/// Polls every 10 ms until `needle` occurs `n` times in prosody.log.
fn wait_for_count(
    fx: &mut Fixture,
    needle: &str,
    n: usize,
    limit: Duration,
) -> Result<Instant, String> {
    let start = Instant::now();
    loop {
        if count(fx, needle) >= n {
            return Ok(Instant::now());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "{needle:?} seen {} times, want {n}, after {limit:?}",
                count(fx, needle)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn start_prosody(fx: &mut Fixture, cfg: &std::path::Path) -> Result<(), String> {
    let prosody = in_path("prosody").ok_or("prosody is not installed; .ci/run installs it")?;
    let mut cmd = Command::new(prosody);
    cmd.arg("--config").arg(cfg).arg("-F");
    fx.spawn("prosody", cmd, "prosody.out")
}

fn scenario(fx: &mut Fixture) -> Result<(), String> {
    let setup = Setup::new(fx)?;
    let cfg = setup.write_config(fx, "prosody.cfg.lua", PROSODY_CFG_TEMPLATE)?;
    let listening = format!(
        "Activated service 'component' on [127.0.0.1]:{}",
        setup.component_port
    );
    let authenticated = "External component successfully authenticated";

    start_prosody(fx, &cfg)?;
    wait_for_count(fx, &listening, 1, SERVER_STARTUP)?;
    start_appserver(fx, &setup)?;
    wait_for_count(fx, authenticated, 1, COMPONENT_LINK)?;

    let mut gaps = Vec::new();
    for i in 1..=RESTARTS {
        fx.stop("prosody", Duration::from_secs(10))?;
        // Down for a moment, as during a package upgrade.
        std::thread::sleep(Duration::from_millis(300));
        start_prosody(fx, &cfg)?;
        let up = wait_for_count(fx, &listening, i + 1, SERVER_STARTUP)?;
        let linked = wait_for_count(fx, authenticated, i + 1, Duration::from_secs(70))?;
        let gap = linked.saturating_duration_since(up);
        log(&format!(
            "restart {i}: link back {:.0} ms after Prosody listened",
            gap.as_secs_f64() * 1000.0
        ));
        gaps.push(gap);
    }
    let worst = gaps.iter().max().copied().unwrap_or_default();
    if worst > BOUND {
        return Err(format!("link came back too late after a restart: {gaps:?}"));
    }
    fx.check_alive()?;
    Ok(())
}
