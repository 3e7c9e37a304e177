//! Latency figures of the benchmarks: one copy for examples/bench.rs and
//! bench_real.rs (`#[path = "support/latency.rs"] mod latency;`).

/// The `p` quantile (0 to 1) of latencies in ns, sorted ascending, in
/// µs; 0 for none.
pub fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    let last = sorted_ns.len().saturating_sub(1);
    let at = ((sorted_ns.len() as f64 * p) as usize).min(last);
    sorted_ns.get(at).copied().unwrap_or(0) as f64 / 1000.0
}
