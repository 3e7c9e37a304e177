//! What the benchmarks read of a child process from `/proc`: one copy for
//! examples/bench.rs, bench_real.rs and footprint.rs
//! (`#[path = "support/procfs.rs"] mod procfs;`).
#![allow(dead_code)]

use push_appserver::metrics::process::ticks_from_stat;

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`); 0 if unreadable.
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process in seconds (100 ticks a second); 0 if
/// unreadable.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    ticks_from_stat(&s).unwrap_or(0) as f64 / 100.0
}
