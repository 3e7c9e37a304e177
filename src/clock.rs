//! Time: a clock trait so throttles, token caches and expiry are testable
//! without sleeping (a [`ManualClock`] that tests move by hand), and
//! RFC 3339 timestamps as in mod_push_appserver's records.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock time.
    fn now(&self) -> SystemTime;
    /// Monotonic time.
    fn instant(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests: wall-clock and
/// monotonic time stand still until [`ManualClock::advance`] moves both.
#[derive(Debug)]
pub struct ManualClock(Mutex<(SystemTime, Instant)>);

impl ManualClock {
    /// A clock standing at the present moment.
    pub fn new() -> Self {
        Self::at(SystemTime::now())
    }

    /// A clock whose wall-clock time reads `wall` (its monotonic time
    /// starts at the present instant).
    pub fn at(wall: SystemTime) -> Self {
        ManualClock(Mutex::new((wall, Instant::now())))
    }

    /// Moves wall-clock and monotonic time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += d;
        t.1 += d;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0
    }
    fn instant(&self) -> Instant {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// Seconds since the UNIX epoch (0 for times before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the UNIX epoch (0 for times before it).
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2017-03-18T04:07:44Z` for a time (whole seconds, UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = unix_secs(t);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// [`rfc3339`] of a time given in milliseconds since the Unix epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Parses the form written by [`rfc3339`], as Prosody's `util.datetime`
/// and X.509 dates give it: `YYYY-MM-DDThh:mm:ss`, an optional fraction of
/// 1 to 9 digits (kept to the millisecond), and `Z` or a zero offset.
/// `None` when malformed, not a calendar date, or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d == 0
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let mut millis = 0;
    let tail = &s[19..];
    let tail = match tail.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            millis = format!("{:0<3}", &frac[..digits.min(3)])
                .parse::<u64>()
                .ok()?;
            &frac[digits..]
        }
        None => tail,
    };
    if !matches!(tail, "Z" | "+00:00" | "-00:00") {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    if days < 0 {
        return None;
    }
    let secs = days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(se);
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_module_timestamps() {
        let t = parse_rfc3339("2017-03-18T04:07:44Z").unwrap();
        assert_eq!(unix_secs(t), 1_489_810_064);
        assert_eq!(rfc3339(t), "2017-03-18T04:07:44Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.123Z")
                .map(rfc3339)
                .as_deref(),
            Some("2024-02-29T23:59:59Z")
        );
        assert!(parse_rfc3339("2017-13-18T04:07:44Z").is_none());
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn manual_clock_stands_still_until_advanced_then_moves_both_times() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = ManualClock::at(start);
        let (wall, mono) = (clock.now(), clock.instant());
        assert_eq!(wall, start);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!((clock.now(), clock.instant()), (wall, mono));
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + Duration::from_secs(90));
        assert_eq!(clock.instant(), mono + Duration::from_secs(90));
    }
}
