//! A minimal logger for the `log` facade: one line per record on stderr.
//!
//! Two formats: `plain` (UTC timestamp, level, module) for a terminal or a
//! file, and `journal` for systemd's journal or a syslog reader, which
//! stamp the time themselves: no timestamp, and the level as a syslog
//! priority prefix (`<3>` error ... `<7>` debug) that journald and
//! `logger`-style readers turn into the record's priority.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-02T03:04:05Z INFO  module: message`.
    Plain,
    /// `<6>module: message`, one physical line per record.
    Journal,
}

impl LogFormat {
    /// `Journal` when stderr is the journal (`JOURNAL_STREAM` names the
    /// device and inode of stderr, as systemd sets it), else `Plain`.
    pub fn detect() -> LogFormat {
        let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
            return LogFormat::Plain;
        };
        if stderr_is(&stream).unwrap_or(true) {
            LogFormat::Journal
        } else {
            LogFormat::Plain
        }
    }

    /// The config value naming this format.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Plain => "plain",
            LogFormat::Journal => "journal",
        }
    }
}

/// Whether `JOURNAL_STREAM` (`device:inode`) is what stderr is connected
/// to, so a child that inherited the variable but writes elsewhere keeps
/// timestamps. `None` when it cannot be told (then the variable is
/// trusted).
fn stderr_is(stream: &str) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let (dev, ino) = stream.split_once(':')?;
    let (dev, ino): (u64, u64) = (dev.parse().ok()?, ino.parse().ok()?);
    let m = std::fs::metadata("/proc/self/fd/2").ok()?;
    Some(m.dev() == dev && m.ino() == ino)
}

/// The syslog priority of a level (RFC 5424: 3 error, 4 warning,
/// 6 informational, 7 debug).
pub fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// One log line, with its line feed.
pub fn format_line(
    format: LogFormat,
    now: SystemTime,
    level: log::Level,
    target: &str,
    message: &str,
) -> String {
    match format {
        LogFormat::Plain => format!(
            "{} {level:<5} {target}: {message}\n",
            crate::clock::rfc3339(now)
        ),
        // The journal makes one record per line: a line feed inside a
        // message would start a record with the default priority.
        LogFormat::Journal => format!(
            "<{}>{target}: {}\n",
            syslog_priority(level),
            message.replace('\n', "\\n")
        ),
    }
}

/// The level filter, changeable by a reload.
static LEVEL: AtomicUsize = AtomicUsize::new(log::LevelFilter::Info as usize);

fn level() -> log::LevelFilter {
    match LEVEL.load(Ordering::Relaxed) {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

struct StderrLogger {
    format: LogFormat,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= level() && metadata.target().starts_with("push_appserver")
            || metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(
            self.format,
            SystemTime::now(),
            record.level(),
            record.target(),
            &record.args().to_string(),
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` in the format found by
/// [`LogFormat::detect`] (warnings of dependencies always show). A second
/// call is ignored.
pub fn init(level: log::LevelFilter) {
    init_with(level, LogFormat::detect());
}

/// Installs the logger at `level` in `format`. A second call is ignored.
pub fn init_with(level: log::LevelFilter, format: LogFormat) {
    if log::set_boxed_logger(Box::new(StderrLogger { format })).is_ok() {
        set_level(level);
    }
}

/// Changes the level of the installed logger (SIGHUP reload).
pub fn set_level(level: log::LevelFilter) {
    LEVEL.store(level as usize, Ordering::Relaxed);
    log::set_max_level(level.max(log::LevelFilter::Warn));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    #[test]
    fn plain_lines_have_a_timestamp_and_the_level() {
        let l = format_line(
            LogFormat::Plain,
            at(),
            log::Level::Warn,
            "push_appserver::link",
            "down",
        );
        assert_eq!(l, "2025-06-15T15:06:40Z WARN  push_appserver::link: down\n");
    }

    #[test]
    fn journal_lines_have_a_priority_and_no_timestamp() {
        let line = |level| format_line(LogFormat::Journal, at(), level, "push_appserver", "m");
        assert_eq!(line(log::Level::Error), "<3>push_appserver: m\n");
        assert_eq!(line(log::Level::Warn), "<4>push_appserver: m\n");
        assert_eq!(line(log::Level::Info), "<6>push_appserver: m\n");
        assert_eq!(line(log::Level::Debug), "<7>push_appserver: m\n");
        assert_eq!(line(log::Level::Trace), "<7>push_appserver: m\n");
        let two = format_line(LogFormat::Journal, at(), log::Level::Info, "t", "a\nb");
        assert_eq!(two, "<6>t: a\\nb\n", "one record, one line");
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert_eq!(stderr_is("not a pair"), None);
        // Device 0, inode 0 is never a real stderr.
        assert_eq!(stderr_is("0:0"), Some(false));
    }
}
