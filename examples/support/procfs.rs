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

/// The parent pid in a `/proc/PID/stat` line (field 4, counted from the
/// last `)` as the command name may hold spaces and parentheses).
fn ppid_from_stat(stat: &str) -> Option<u32> {
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `root` and every live process below it (children, grandchildren...),
/// from one scan of `/proc`.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, ppid_from_stat(&s)?))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    tree
}

/// CPU seconds of `root` and its live descendants: a BEAM VM
/// (beam.smp) runs helpers such as erl_child_setup as child processes.
pub fn tree_cpu_secs(root: u32) -> f64 {
    process_tree(root).into_iter().map(cpu_secs).sum()
}

/// The command name of `pid` (`/proc/PID/comm`), empty if unreadable.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}
