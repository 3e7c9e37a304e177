//! Concurrency per endpoint host. Web Push endpoints are chosen by whoever
//! registers them, so one party's slow hosts must not hold the sender's
//! shared slots that every other user's pushes need: a host (counted by
//! its registrable domain, so subdomains made at will share one) may have
//! at most half the sender's requests in flight, and after one of its
//! requests timed out, one at a time for a while. Requests over that are
//! refused at once rather than queued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domains::registrable_domain;

/// How long a host that let a request time out keeps one slot only.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

/// Hosts tracked at most: those with requests in flight or marked slow.
const MAX_HOSTS: usize = 4096;

#[derive(Debug, Default)]
struct Host {
    in_flight: usize,
    slow_until: Option<Instant>,
}

/// The requests in flight per host, and the hosts marked slow.
#[derive(Debug)]
pub struct Hosts {
    per_host: usize,
    hosts: Mutex<HashMap<String, Host>>,
}

/// A request's place at its host; given back when dropped.
#[derive(Debug)]
pub struct HostSlot<'a> {
    hosts: &'a Hosts,
    key: String,
}

fn key_of(host: &str) -> String {
    registrable_domain(&host.to_ascii_lowercase()).to_owned()
}

impl Hosts {
    /// Hosts of a sender with `max_concurrent` slots in all.
    pub fn new(max_concurrent: usize) -> Hosts {
        Hosts {
            per_host: (max_concurrent / 2).max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one request to `host` at `now`, or `None` when the
    /// host has all it may have in flight.
    pub fn enter(&self, host: &str, now: Instant) -> Option<HostSlot<'_>> {
        let key = key_of(host);
        let mut map = self.map();
        if map.len() >= MAX_HOSTS && !map.contains_key(&key) {
            map.retain(|_, h| h.in_flight > 0 || h.slow_until.is_some_and(|t| t > now));
            if map.len() >= MAX_HOSTS {
                // Only marks are lost: hosts in flight stay counted.
                map.retain(|_, h| h.in_flight > 0);
            }
        }
        let h = map.entry(key.clone()).or_default();
        let cap = match h.slow_until {
            Some(t) if t > now => 1,
            _ => self.per_host,
        };
        if h.in_flight >= cap {
            return None;
        }
        h.in_flight += 1;
        Some(HostSlot { hosts: self, key })
    }

    /// A request to `host` timed out at `now`: one at a time for a while.
    pub fn timed_out(&self, host: &str, now: Instant) {
        if let Some(h) = self.map().get_mut(&key_of(host)) {
            h.slow_until = Some(now + SLOW_FOR);
        }
    }

    /// Hosts tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.map().len()
    }
}

impl Drop for HostSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.hosts.map();
        if let Some(h) = map.get_mut(&self.key) {
            h.in_flight = h.in_flight.saturating_sub(1);
            if h.in_flight == 0 && h.slow_until.is_none() {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_gets_half_the_slots_and_one_after_a_timeout() {
        let hosts = Hosts::new(8);
        let now = Instant::now();
        let held: Vec<_> = (0..4)
            .map(|i| hosts.enter(&format!("h{i}.evil.example"), now))
            .collect();
        assert!(held.iter().all(Option::is_some));
        assert!(
            hosts.enter("EVIL.example", now).is_none(),
            "subdomains share"
        );
        assert!(
            hosts.enter("push.example.net", now).is_some(),
            "others go on"
        );
        hosts.timed_out("evil.example", now);
        drop(held);
        let one = hosts.enter("evil.example", now).unwrap();
        assert!(
            hosts.enter("evil.example", now).is_none(),
            "slow: one at a time"
        );
        drop(one);
        let later = now + SLOW_FOR + Duration::from_secs(1);
        let again: Vec<_> = (0..4).map(|_| hosts.enter("evil.example", later)).collect();
        assert!(again.iter().all(Option::is_some), "the mark expires");
    }

    #[test]
    fn hosts_are_forgotten_when_idle_and_bounded() {
        let hosts = Hosts::new(16);
        let now = Instant::now();
        drop(hosts.enter("a.example", now));
        assert_eq!(hosts.tracked(), 0);
        for i in 0..(MAX_HOSTS + 100) {
            let host = format!("h{i}.example");
            drop(hosts.enter(&host, now));
            hosts.timed_out(&host, now);
            let _ = hosts.enter(&host, now);
            assert!(hosts.tracked() <= MAX_HOSTS);
        }
    }
}
