//! Per-client request rate limiting: a token bucket per IP address, with a
//! bounded number of tracked clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Clients tracked at most; idle ones are forgotten first.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by client address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    clients: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of twice that.
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(rate) * 2.0,
            clients: HashMap::new(),
        }
    }

    /// Whether a request from `ip` at `now` is allowed.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&ip) {
            let (rate, burst) = (self.rate, self.burst);
            self.clients.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
            if self.clients.len() >= MAX_CLIENTS {
                return false;
            }
        }
        let b = self.clients.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!((0..20).filter(|_| r.allow(a, t0)).count(), 10);
        assert!(r.allow(b, t0), "other clients are not affected");
        assert!(!r.allow(a, t0 + Duration::from_millis(100)));
        assert!(r.allow(a, t0 + Duration::from_millis(250)));
    }
}
