//! Capped exponential backoff with "equal jitter": the one formula behind
//! reconnecting component links and provider retries.

use std::time::{Duration, Instant};

/// The wait before try `n + 1` (`n` >= 1 failures so far):
/// `min(base * 2^(n-1), cap)`, scaled into `[1/2, 1)` of itself by `unit`
/// (a random number in `[0, 1)`), so retries never bunch up yet never
/// shrink below half.
pub fn equal_jitter(base: Duration, n: u32, cap: Duration, unit: f64) -> Duration {
    let full = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    full.min(cap).mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

/// Retry delays for one kind of failure: doubling from `base` to `cap`
/// with equal jitter, back to the start after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays from `base` (jittered) doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The wait after one more failure; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        equal_jitter(self.base, self.failures, self.cap, unit)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// When a component link tries again, as a pure policy fed with the time.
///
/// The backoff protects an XMPP server that refuses us or is down, not one
/// that was just restarted: every successful handshake starts over from
/// the first delay, and during the first [`Reconnect::FAST_WINDOW`] after
/// a lost session the delays stay at most [`Reconnect::FAST_CAP`], so a
/// restarting server is picked up within about a second. Failed attempts
/// (refused, rejected, timed out) keep doubling the delay up to the cap.
#[derive(Debug, Clone)]
pub struct Reconnect {
    base: Duration,
    cap: Duration,
    /// Failed attempts since the last successful handshake.
    failures: u32,
    /// A session is up (set by [`Reconnect::connected`]).
    up: bool,
    /// When the last session was lost.
    lost_at: Option<Instant>,
}

impl Reconnect {
    /// Longest delay right after a lost session.
    pub const FAST_CAP: Duration = Duration::from_secs(1);
    /// How long after a lost session the delays stay short.
    pub const FAST_WINDOW: Duration = Duration::from_secs(30);

    /// Delays from `base` (jittered) doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Reconnect {
            base,
            cap,
            failures: 0,
            up: false,
            lost_at: None,
        }
    }

    /// A handshake succeeded: the next loss starts from the first delay.
    pub fn connected(&mut self) {
        self.up = true;
        self.failures = 0;
    }

    /// Attempts that failed since the last handshake, this one included
    /// once [`Reconnect::next_delay`] was called.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait before the next attempt, after a lost session or a failed
    /// attempt at `now`; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, now: Instant, unit: f64) -> Duration {
        if std::mem::take(&mut self.up) {
            self.lost_at = Some(now);
        }
        self.failures = self.failures.saturating_add(1);
        let fast = self
            .lost_at
            .is_some_and(|t| now.saturating_duration_since(t) < Self::FAST_WINDOW);
        let cap = if fast {
            self.cap.min(Self::FAST_CAP)
        } else {
            self.cap
        };
        equal_jitter(self.base, self.failures, cap, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_jitter_doubles_caps_and_keeps_at_least_half() {
        let ms = Duration::from_millis;
        assert_eq!(equal_jitter(ms(500), 1, Duration::MAX, 0.0), ms(250));
        assert_eq!(equal_jitter(ms(500), 1, Duration::MAX, 1.0), ms(500));
        assert_eq!(equal_jitter(ms(500), 3, Duration::MAX, 0.0), ms(1000));
        assert_eq!(equal_jitter(ms(500), 3, ms(800), 0.0), ms(400));
        assert_eq!(equal_jitter(ms(500), 40, ms(800), 1.0), ms(800));
    }

    #[test]
    fn a_refusing_server_sees_growing_delays_up_to_the_cap() {
        let mut r = Reconnect::new(Duration::from_millis(500), Duration::from_secs(60));
        let t0 = Instant::now();
        let delays: Vec<u128> = (0..10)
            .map(|i| r.next_delay(t0 + Duration::from_secs(i), 0.0).as_millis())
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(r.failures(), 10);
        assert_eq!(r.next_delay(t0, 0.999_999).as_millis(), 59_999);
    }

    #[test]
    fn every_handshake_starts_over_and_a_lost_session_retries_fast() {
        let mut r = Reconnect::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut t = Instant::now();
        // Twenty restarts in a row: each reconnect waits at most 0.5 s.
        for _ in 0..20 {
            r.connected();
            t += Duration::from_secs(2);
            assert!(r.next_delay(t, 0.999) <= Duration::from_millis(500));
        }
        // A server down for a while after a lost session: delays stay at
        // most 1 s during the first 30 s, then grow again.
        r.connected();
        let lost = t;
        let mut waited = Duration::ZERO;
        while waited < Reconnect::FAST_WINDOW {
            let d = r.next_delay(lost + waited, 0.999);
            assert!(d <= Reconnect::FAST_CAP, "{d:?} after {waited:?}");
            waited += d;
        }
        assert!(r.next_delay(lost + waited, 0.0) >= Duration::from_secs(8));
        assert!(r.next_delay(lost + waited, 0.999) >= Duration::from_secs(59));
    }
}
