//! Process RSS, CPU time and open files from `/proc/self`: the parsing is
//! pure, the reads are one call each.

/// What the process uses, as read from `/proc/self`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
}

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn rss_from_status(status: &str) -> Option<u64> {
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// `utime + stime` of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn ticks_from_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as f64)
}

/// Reads the current figures; any that cannot be read are `None`.
pub fn read() -> ProcessStats {
    let rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| rss_from_status(&s));
    let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks_from_stat(&s))
        .zip(clock_ticks())
        .map(|(t, hz)| t as f64 / hz);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    ProcessStats {
        rss_bytes,
        cpu_seconds,
        open_fds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tpush-appserver\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(rss_from_status(status), Some(5120 * 1024));
        assert_eq!(rss_from_status("Name: x\n"), None);
        let stat = "1234 (push) (app) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(ticks_from_stat(stat), Some(300));
        assert_eq!(ticks_from_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = read();
        assert!(s.rss_bytes.unwrap_or(0) > 0);
        assert!(s.cpu_seconds.is_some());
        assert!(s.open_fds.unwrap_or(0) >= 3);
    }
}
