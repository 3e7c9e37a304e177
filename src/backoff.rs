//! Capped exponential backoff with "equal jitter": the one formula behind
//! reconnecting component links and provider retries.

use std::time::Duration;

/// The wait before try `n + 1` (`n` >= 1 failures so far):
/// `min(base * 2^(n-1), cap)`, scaled into `[1/2, 1)` of itself by `unit`
/// (a random number in `[0, 1)`), so retries never bunch up yet never
/// shrink below half.
pub fn equal_jitter(base: Duration, n: u32, cap: Duration, unit: f64) -> Duration {
    let full = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    full.min(cap).mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

/// Reconnect delays: base * 2^attempt, capped, then scaled by a random
/// factor in [0.5, 1.0) so many app servers do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff from `base` up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        equal_jitter(self.base, self.attempt, self.cap, unit)
    }

    /// Back to the first delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
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
    fn grows_caps_jitters_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(b.next_delay(0.999_999).as_millis(), 99);
        assert_eq!(b.next_delay(0.0), Duration::from_millis(100));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(200));
        for _ in 0..30 {
            assert!(b.next_delay(0.999) <= Duration::from_secs(2));
        }
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
    }
}
