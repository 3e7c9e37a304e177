//! Which POSTs are relayed: the rates per endpoint, per user and per
//! registrable domain, and the relays that may wait for answers at once.
//! A relay waits holding an HTTP connection, so waiting is what an
//! attacker would hoard: each user has a few places, and a user whose
//! client let a relay time out gets one place for a while (its first
//! answer in time lifts that), so users who never answer cannot take the
//! places everyone else needs. A refusal costs no budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::UnifiedPushSettings;
use crate::domains::registrable_domain;
use crate::ratelimit::{RateLimiter, MAX_CLIENTS};
use crate::registrations::owner::domain_of;

/// How long a user whose client let a relay time out keeps one place.
pub const SLOW_FOR: Duration = Duration::from_secs(60);

/// Users remembered as slow at most; the oldest marks go first.
const MAX_SLOW: usize = 10_000;

/// Why a POST is not relayed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over a rate.
    Rate,
    /// Too many relays of the user, or in all, wait for answers.
    Busy,
}

#[derive(Debug, Default)]
struct Places {
    per_user: HashMap<String, usize>,
    all: usize,
    slow: HashMap<String, Instant>,
}

/// The admission state of one component.
#[derive(Debug)]
pub struct Admission {
    per_user_places: usize,
    all_places: usize,
    endpoint: Mutex<RateLimiter<String>>,
    user: Mutex<RateLimiter<String>>,
    domain: Mutex<RateLimiter<String>>,
    places: Mutex<Places>,
}

/// A relay's place; given back when dropped.
#[derive(Debug)]
pub struct Place<'a> {
    admission: &'a Admission,
    user: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Admission {
    /// The admission of a component with these settings.
    pub fn new(s: &UnifiedPushSettings) -> Admission {
        let per_minute = |n: u32| Mutex::new(RateLimiter::per_minute(n, MAX_CLIENTS));
        Admission {
            per_user_places: s.max_in_flight_per_jid,
            all_places: s.max_in_flight,
            endpoint: per_minute(s.posts_per_minute_per_endpoint),
            user: per_minute(s.posts_per_minute_per_jid),
            domain: per_minute(s.posts_per_minute_per_domain),
            places: Mutex::new(Places::default()),
        }
    }

    /// Admits a POST to `endpoint` (any key naming it) of the user `bare`
    /// (a bare JID) at `now`: its place among the relays waiting.
    pub fn admit(&self, endpoint: String, bare: &str, now: Instant) -> Result<Place<'_>, Refused> {
        let domain = registrable_domain(domain_of(bare)).to_owned();
        if !lock(&self.endpoint).allow(endpoint.clone(), now) {
            return Err(Refused::Rate);
        }
        let refund_endpoint = || lock(&self.endpoint).refund(&endpoint);
        if !lock(&self.user).allow(bare.to_owned(), now) {
            refund_endpoint();
            return Err(Refused::Rate);
        }
        let refund_user = || lock(&self.user).refund(&bare.to_owned());
        if !lock(&self.domain).allow(domain.clone(), now) {
            refund_user();
            refund_endpoint();
            return Err(Refused::Rate);
        }
        match self.take_place(bare, now) {
            Some(place) => Ok(place),
            None => {
                lock(&self.domain).refund(&domain);
                refund_user();
                refund_endpoint();
                Err(Refused::Busy)
            }
        }
    }

    fn take_place(&self, bare: &str, now: Instant) -> Option<Place<'_>> {
        let mut p = lock(&self.places);
        if p.all >= self.all_places {
            return None;
        }
        let slow = p.slow.get(bare).is_some_and(|&until| until > now);
        let cap = if slow { 1 } else { self.per_user_places };
        let n = p.per_user.entry(bare.to_owned()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        p.all += 1;
        Some(Place {
            admission: self,
            user: bare.to_owned(),
        })
    }
}

impl Place<'_> {
    /// The user's client did not answer in time: one place for a while.
    pub fn timed_out(&self, now: Instant) {
        let mut p = lock(&self.admission.places);
        if p.slow.len() >= MAX_SLOW && !p.slow.contains_key(&self.user) {
            p.slow.retain(|_, until| *until > now);
            if p.slow.len() >= MAX_SLOW {
                // Keep the newest marks: drop one that ends first.
                if let Some(k) = p
                    .slow
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| k.clone())
                {
                    p.slow.remove(&k);
                }
            }
        }
        p.slow.insert(self.user.clone(), now + SLOW_FOR);
    }

    /// The user's client answered: it is not slow.
    pub fn answered(&self) {
        lock(&self.admission.places).slow.remove(&self.user);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut p = lock(&self.admission.places);
        p.all = p.all.saturating_sub(1);
        if let Some(n) = p.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                p.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> UnifiedPushSettings {
        UnifiedPushSettings {
            endpoint_base: "https://p.example".into(),
            registration_ttl: Duration::from_secs(60),
            relay_timeout: Duration::from_secs(10),
            allow_from: vec!["example.org".into()],
            open_relay: false,
            posts_per_minute_per_endpoint: 3,
            posts_per_minute_per_jid: 5,
            posts_per_minute_per_domain: 8,
            max_in_flight_per_jid: 2,
            max_in_flight: 4,
        }
    }

    #[test]
    fn users_who_never_answer_keep_one_place_each() {
        let a = Admission::new(&UnifiedPushSettings {
            posts_per_minute_per_endpoint: 100,
            posts_per_minute_per_jid: 100,
            posts_per_minute_per_domain: 100,
            ..settings()
        });
        let t = Instant::now();
        let m1 = a.admit("e1".into(), "m1@x.example", t).unwrap();
        let m2 = a.admit("e1".into(), "m1@x.example", t).unwrap();
        assert_eq!(
            a.admit("e1".into(), "m1@x.example", t).unwrap_err(),
            Refused::Busy,
            "two places per user"
        );
        m1.timed_out(t);
        drop((m1, m2));
        let again = a.admit("e1".into(), "m1@x.example", t).unwrap();
        assert_eq!(
            a.admit("e1".into(), "m1@x.example", t).unwrap_err(),
            Refused::Busy,
            "a slow user: one place"
        );
        // The others still find places.
        let _o1 = a.admit("e2".into(), "alice@x.example", t).unwrap();
        let _o2 = a.admit("e2".into(), "alice@x.example", t).unwrap();
        again.answered();
        drop(again);
        let _b1 = a.admit("e1".into(), "m1@x.example", t).unwrap();
        let _b2 = a.admit("e1".into(), "m1@x.example", t).unwrap();
        assert_eq!(
            a.admit("e3".into(), "bob@x.example", t).unwrap_err(),
            Refused::Busy,
            "four places in all"
        );
    }

    #[test]
    fn rates_hold_per_endpoint_user_and_domain_and_refusals_cost_nothing() {
        let a = Admission::new(&UnifiedPushSettings {
            max_in_flight_per_jid: 100,
            max_in_flight: 100,
            ..settings()
        });
        let t = Instant::now();
        for _ in 0..3 {
            drop(a.admit("e1".into(), "u@x.example", t).unwrap());
        }
        assert_eq!(
            a.admit("e1".into(), "u@x.example", t).unwrap_err(),
            Refused::Rate
        );
        for _ in 0..2 {
            drop(a.admit("e2".into(), "u@x.example", t).unwrap());
        }
        assert_eq!(
            a.admit("e3".into(), "u@x.example", t).unwrap_err(),
            Refused::Rate,
            "the user's five"
        );
        for i in 0..3 {
            drop(a.admit(format!("v{i}"), "v@y.x.example", t).unwrap());
        }
        assert_eq!(
            a.admit("w1".into(), "w@x.example", t).unwrap_err(),
            Refused::Rate,
            "the registrable domain's eight"
        );
        // Refused above: w's own rate was given back, and another domain
        // is not affected.
        drop(a.admit("z1".into(), "w@other.example", t).unwrap());
    }
}
