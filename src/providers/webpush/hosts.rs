//! Concurrency per endpoint host. Web Push endpoints are chosen by whoever
//! registers them, so one party's slow hosts must not hold the sender's
//! shared slots that every other user's pushes need. A host may have at
//! most half the sender's requests in flight; more wait for a place
//! (within their own timeout) without holding a shared slot. A host that
//! let a request time out while it was being served (not while it waited)
//! gets one request at a time for a while; its first answer in time lifts
//! that.
//!
//! Hosts are told apart by what an attacker cannot multiply for free: a
//! name by its registrable domain (subdomains share one), an IPv4 address
//! as itself, an IPv6 address by its /64 (an IPv4-mapped one as IPv4),
//! however it is spelt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::lock::{Semaphore, SemaphoreGuardArc};

use crate::domains::registrable_domain;
use crate::ratelimit::address_key;

/// How long a host that let a request time out keeps one place only.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

/// Hosts tracked at most: those with requests in flight or waiting, or
/// marked slow. Past it, requests to new hosts are refused at once.
const MAX_HOSTS: usize = 4096;

#[derive(Debug)]
struct Host {
    /// Half the sender's slots.
    places: Arc<Semaphore>,
    /// The one place of a host marked slow.
    slow_gate: Arc<Semaphore>,
    slow_until: Mutex<Option<Instant>>,
}

impl Host {
    fn slow(&self, now: Instant) -> bool {
        self.slow_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t > now)
    }
}

/// The hosts of one sender.
#[derive(Debug)]
pub struct Hosts {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// A request's place at its host; given back when dropped.
#[derive(Debug)]
pub struct HostPlace {
    key: String,
    host: Arc<Host>,
    _place: SemaphoreGuardArc,
    _gate: Option<SemaphoreGuardArc>,
}

/// The key a host is counted under.
pub fn key_of(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => address_key(ip).to_string(),
        Err(_) => registrable_domain(&host.to_ascii_lowercase()).to_owned(),
    }
}

impl Hosts {
    /// Hosts of a sender with `max_concurrent` slots in all.
    pub fn new(max_concurrent: usize) -> Hosts {
        Hosts {
            per_host: (max_concurrent / 2).max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Host>>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `host`, tracked from now on; `None` when too many
    /// hosts are tracked.
    fn host(&self, key: &str, now: Instant) -> Option<Arc<Host>> {
        let mut map = self.map();
        if !map.contains_key(key) && map.len() >= MAX_HOSTS {
            // Only the map holds an idle host's state.
            map.retain(|_, h| Arc::strong_count(h) > 1 || h.slow(now));
            if map.len() >= MAX_HOSTS {
                return None;
            }
        }
        let per_host = self.per_host;
        let h = map.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(Host {
                places: Arc::new(Semaphore::new(per_host)),
                slow_gate: Arc::new(Semaphore::new(1)),
                slow_until: Mutex::new(None),
            })
        });
        Some(Arc::clone(h))
    }

    /// Waits for a place at `host` (the caller bounds the wait); `None` at
    /// once when too many hosts are tracked.
    pub async fn enter(&self, host: &str) -> Option<HostPlace> {
        let key = key_of(host);
        let h = self.host(&key, Instant::now())?;
        let place = h.places.acquire_arc().await;
        let gate = if h.slow(Instant::now()) {
            Some(h.slow_gate.acquire_arc().await)
        } else {
            None
        };
        Some(HostPlace {
            key,
            host: h,
            _place: place,
            _gate: gate,
        })
    }
}

impl HostPlace {
    /// The request timed out while being served: one at a time for a while.
    pub fn timed_out(&self, now: Instant) {
        *self
            .host
            .slow_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(now + SLOW_FOR);
    }

    /// The host answered in time: it is not slow.
    pub fn answered(&self) {
        *self
            .host
            .slow_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Hosts {
    /// Gives a place back, and forgets its host if nobody else uses it
    /// and it is not marked slow.
    pub fn leave(&self, place: HostPlace) {
        let key = place.key.clone();
        drop(place);
        let mut map = self.map();
        let idle = map
            .get(&key)
            .is_some_and(|h| Arc::strong_count(h) == 1 && !h.slow(Instant::now()));
        if idle {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::FutureExt;

    /// `f`'s output if it is ready within 50 ms (a wait means blocked).
    fn soon<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
        smol::block_on(async {
            async { Some(f.await) }
                .or(async {
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    None
                })
                .await
        })
    }

    #[test]
    fn a_host_has_half_the_places_and_more_wait() {
        let hosts = Hosts::new(8);
        let held: Vec<_> = (0..4)
            .map(|i| {
                soon(hosts.enter(&format!("h{i}.evil.example")))
                    .flatten()
                    .unwrap()
            })
            .collect();
        assert!(
            soon(hosts.enter("EVIL.example")).is_none(),
            "subdomains share; it waits"
        );
        assert!(
            soon(hosts.enter("push.example.net")).flatten().is_some(),
            "others go on"
        );
        drop(held);
        assert!(
            soon(hosts.enter("evil.example")).flatten().is_some(),
            "a place came free"
        );
    }

    #[test]
    fn a_slow_host_gets_one_place_until_it_answers() {
        let hosts = Hosts::new(8);
        let first = soon(hosts.enter("slow.example")).flatten().unwrap();
        first.timed_out(Instant::now());
        let one = soon(hosts.enter("slow.example")).flatten().unwrap();
        assert!(
            soon(hosts.enter("slow.example")).is_none(),
            "slow: one at a time"
        );
        one.answered();
        drop((first, one));
        let again: Vec<_> = (0..4)
            .map(|_| soon(hosts.enter("slow.example")).flatten())
            .collect();
        assert!(again.iter().all(Option::is_some), "lifted by an answer");
    }

    #[test]
    fn one_address_is_one_host_however_it_is_spelt() {
        for (a, b) in [
            ("::ffff:7f00:2", "::ffff:127.0.0.2"),
            ("[::ffff:7f00:0002]", "127.0.0.2"),
            ("2001:db8::1", "2001:0db8:0:0::ffff"),
            ("[2001:db8::1]", "2001:db8:0:0:1::"),
        ] {
            assert_eq!(key_of(a), key_of(b), "{a} {b}");
        }
        assert_ne!(key_of("::ffff:10.0.0.1"), key_of("::ffff:11.0.0.1"));
        assert_ne!(key_of("2001:db8::1"), key_of("2001:db8:0:1::1"));
        assert_eq!(key_of("a.Push.Example"), "push.example");
    }

    #[test]
    fn idle_hosts_are_forgotten_and_the_map_is_bounded() {
        let hosts = Hosts::new(16);
        let p = soon(hosts.enter("a.example")).flatten().unwrap();
        hosts.leave(p);
        assert_eq!(hosts.map().len(), 0);
        for i in 0..(MAX_HOSTS + 10) {
            let p = soon(hosts.enter(&format!("h{i}.example"))).flatten();
            if let Some(p) = p {
                p.timed_out(Instant::now());
                hosts.leave(p);
            }
            assert!(hosts.map().len() <= MAX_HOSTS);
        }
        assert!(
            soon(hosts.enter("new.example")).flatten().is_none(),
            "full of slow hosts"
        );
    }
}
