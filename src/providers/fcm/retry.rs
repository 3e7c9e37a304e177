//! When to try again: bounded attempts, exponential backoff with jitter,
//! and `Retry-After` honoured. Pure; the caller supplies the jitter.

use std::time::Duration;

/// How hard one push is tried before it is answered with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per push, the first one included.
    pub attempts: u32,
    /// Backoff before the first retry; doubles for each further one.
    pub base_delay: Duration,
    /// Longest single wait. A `Retry-After` beyond it ends the push at once
    /// rather than holding it.
    pub max_delay: Duration,
    /// Time allowed for one request to FCM.
    pub request_timeout: Duration,
    /// Time allowed for the whole push, retries included; no retry starts
    /// that could not finish within it.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            budget: Duration::from_secs(25),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `done` attempts failed
    /// temporarily, `elapsed` into the push; `None` when the push must give
    /// up. `jitter` in `[0, 1)` spreads the backoff over its upper half.
    pub fn next_delay(
        &self,
        done: u32,
        retry_after: Option<Duration>,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if done >= self.attempts {
            return None;
        }
        let wait = backoff(self.base_delay, done, jitter).max(retry_after.unwrap_or_default());
        if wait > self.max_delay {
            return None;
        }
        let finish = elapsed + wait + self.request_timeout.min(self.budget / 2);
        (finish <= self.budget).then_some(wait)
    }
}

/// `base * 2^(n-1)` with equal jitter, uncapped: callers cap the result.
pub fn backoff(base: Duration, n: u32, jitter: f64) -> Duration {
    crate::backoff::equal_jitter(base, n, Duration::MAX, jitter)
}

/// Wait after `consecutive` failed token refreshes before another is tried:
/// 1 s doubling up to one minute, with jitter.
pub fn refresh_backoff(consecutive: u32, jitter: f64) -> Duration {
    backoff(Duration::from_secs(1), consecutive, jitter).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_within_equal_jitter() {
        assert_eq!(backoff(MS(500), 1, 0.0), MS(250));
        assert_eq!(backoff(MS(500), 1, 1.0), MS(500));
        assert_eq!(backoff(MS(500), 3, 0.0), MS(1000));
        assert_eq!(refresh_backoff(20, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy::default();
        assert!(p.next_delay(1, None, Duration::ZERO, 0.5).is_some());
        assert!(p.next_delay(2, None, Duration::ZERO, 0.5).is_some());
        assert_eq!(p.next_delay(3, None, Duration::ZERO, 0.5), None);
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_wait_gives_up() {
        let p = RetryPolicy::default();
        let secs = Duration::from_secs;
        assert_eq!(p.next_delay(1, Some(secs(3)), secs(0), 0.0), Some(secs(3)));
        assert_eq!(p.next_delay(1, Some(secs(0)), secs(0), 0.0), Some(MS(250)));
        assert_eq!(p.next_delay(1, Some(secs(60)), secs(0), 0.0), None);
    }

    #[test]
    fn no_retry_that_would_overrun_the_budget() {
        let p = RetryPolicy::default();
        let secs = Duration::from_secs;
        assert!(p.next_delay(1, Some(secs(5)), secs(5), 0.0).is_some());
        assert_eq!(p.next_delay(1, Some(secs(5)), secs(12), 0.0), None);
    }
}
