//! Token-bucket rate limiting by key (a client address, a requester JID, a
//! domain), with a bounded number of tracked keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Keys tracked at most by [`RateLimiter::new`]; idle ones are forgotten
/// first.
pub const MAX_CLIENTS: usize = 10_000;

/// The key one host's traffic is counted under: its IPv4 address (also
/// when written as an IPv4-mapped IPv6 one), or the /64 of its IPv6
/// address (one host usually holds a whole /64, so counting single IPv6
/// addresses would let it take billions of keys).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Tracked keys looked at to choose one to evict from a full map.
const EVICTION_SAMPLE: usize = 8;

/// How often a full map may be swept for refilled buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key (client addresses unless said otherwise).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    rate: f64,
    burst: f64,
    capacity: usize,
    clients: HashMap<K, Bucket>,
    /// When the full map was last swept for refilled buckets: a sweep
    /// reads every bucket, so it runs at most once a second, not once per
    /// new key.
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` requests per second with bursts of twice that, for at most
    /// 10,000 keys.
    pub fn new(rate: u32) -> Self {
        Self::with(f64::from(rate), f64::from(rate) * 2.0, MAX_CLIENTS)
    }

    /// `count` requests per minute per key, a minute's worth at once, for
    /// at most `capacity` keys.
    pub fn per_minute(count: u32, capacity: usize) -> Self {
        Self::with(f64::from(count) / 60.0, f64::from(count), capacity)
    }

    /// `rate` per second, bursts of `burst`, at most `capacity` keys.
    pub fn with(rate: f64, burst: f64, capacity: usize) -> Self {
        RateLimiter {
            rate,
            burst,
            capacity,
            clients: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Whether a request for `key` at `now` is allowed. Memory stays
    /// bounded whatever the number of keys: when the map is full, refilled
    /// buckets are forgotten (a sweep, at most once a second), and if none
    /// is, one of a few tracked keys is evicted, the one with the most
    /// tokens left, to make room. A new key is never refused for want of
    /// room: keys made at will cannot lock out everyone else, and a key
    /// near its limit (a flooder's) is the last to be forgotten.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.clients.len() >= self.capacity && !self.clients.contains_key(&key) {
            let due = !matches!(self.last_sweep, Some(t) if now.saturating_duration_since(t) < SWEEP_EVERY);
            if due {
                self.last_sweep = Some(now);
                let (rate, burst) = (self.rate, self.burst);
                // A bucket that has refilled is the same as a forgotten one.
                self.clients.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
                });
            }
            if self.clients.len() >= self.capacity {
                self.evict_one(now);
            }
        }
        let b = self.clients.entry(key).or_insert(Bucket {
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

    /// Forgets the key with the most tokens among the first few the map
    /// yields (cheap, and no key is safe from it for long).
    fn evict_one(&mut self, now: Instant) {
        let rate = self.rate;
        let victim = self
            .clients
            .iter()
            .take(EVICTION_SAMPLE)
            .map(|(k, b)| {
                let tokens =
                    b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate;
                (k, tokens)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.clients.remove(&k);
        }
    }

    /// Gives back the token a request of `key` took, when a later check
    /// refused that request after all: a refusal costs no budget.
    pub fn refund(&mut self, key: &K) {
        if let Some(b) = self.clients.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }

    /// Number of keys tracked now.
    pub fn tracked(&self) -> usize {
        self.clients.len()
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

    #[test]
    fn per_minute_by_string_key() {
        let t0 = Instant::now();
        let mut r = RateLimiter::<String>::per_minute(3, 100);
        let a = || "a@example.com".to_owned();
        assert_eq!((0..10).filter(|_| r.allow(a(), t0)).count(), 3);
        assert!(r.allow("b@example.com".into(), t0));
        // One more every 20 s.
        assert!(!r.allow(a(), t0 + Duration::from_secs(19)));
        assert!(r.allow(a(), t0 + Duration::from_secs(21)));
    }

    #[test]
    fn the_map_is_bounded_and_forgets_idle_keys_first() {
        let t0 = Instant::now();
        let mut r = RateLimiter::<u32>::per_minute(2, 3);
        for k in 0..3 {
            assert!(r.allow(k, t0));
        }
        // Full of busy keys: a new key is still served, by evicting one;
        // memory stays bounded.
        assert!(r.allow(99, t0));
        assert_eq!(r.tracked(), 3);
        // After a minute every bucket has refilled: they are forgotten.
        assert!(r.allow(98, t0 + Duration::from_secs(61)));
        assert_eq!(r.tracked(), 1);
    }

    #[test]
    fn a_flood_of_new_keys_locks_nobody_out_and_keeps_the_flooders_debt() {
        // Found by the attacker review of issue 17: a full map refused
        // every new key, so 10,000 keys made at will locked out every
        // other requester.
        let t0 = Instant::now();
        let mut r = RateLimiter::<u32>::per_minute(2, 100);
        assert!(r.allow(7, t0) && r.allow(7, t0));
        assert!(!r.allow(7, t0), "7 spent its budget");
        for k in 1_000..101_000 {
            assert!(r.allow(k, t0), "new key {k} served");
            assert!(r.tracked() <= 100);
        }
        assert!(r.allow(5, t0), "a newcomer is served");
        assert!(!r.allow(7, t0), "the spent key was never evicted");
    }

    #[test]
    fn a_full_map_is_swept_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut r = RateLimiter::<u32>::per_minute(2, 3);
        for k in 0..3 {
            assert!(r.allow(k, t0));
        }
        assert!(r.allow(99, t0), "swept, then one evicted");
        assert_eq!(r.last_sweep, Some(t0));
        // More new keys within the second evict without a sweep.
        for k in 100..1000 {
            assert!(r.allow(k, t0 + Duration::from_millis(500)));
        }
        assert_eq!(r.last_sweep, Some(t0), "no sweep per key");
        assert_eq!(r.tracked(), 3);
        assert!(r.allow(5, t0 + Duration::from_secs(2)));
        assert_eq!(r.last_sweep, Some(t0 + Duration::from_secs(2)));
    }
}
