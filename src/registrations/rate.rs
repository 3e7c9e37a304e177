//! Rate of registration commands per requester JID and per requester
//! registrable domain (subdomains share one): token buckets in memory, bounded in the number of keys.

use std::time::Instant;

use super::owner::domain_of;
use crate::domains::registrable_domain;
use crate::ratelimit::RateLimiter;

/// Requester JIDs and domains tracked at most (each); when every tracked
/// key is busy, new ones wait (see [`RateLimiter::allow`]).
const MAX_TRACKED: usize = 10_000;

/// Command rates per JID and per domain.
#[derive(Debug)]
pub struct CommandRate {
    per_jid: RateLimiter<String>,
    per_domain: RateLimiter<String>,
}

impl CommandRate {
    /// `per_jid` and `per_domain` commands per minute.
    pub fn new(per_jid: u32, per_domain: u32) -> Self {
        CommandRate {
            per_jid: RateLimiter::per_minute(per_jid, MAX_TRACKED),
            per_domain: RateLimiter::per_minute(per_domain, MAX_TRACKED),
        }
    }

    /// Whether `owner` (a bare JID) may run a command at `now`. The JID is
    /// checked first, so one requester over its own rate does not use up
    /// its domain's; a command its domain refuses costs the JID nothing.
    pub fn allow(&mut self, owner: &str, now: Instant) -> bool {
        if !self.per_jid.allow(owner.to_owned(), now) {
            return false;
        }
        if !self
            .per_domain
            .allow(registrable_domain(domain_of(owner)).to_owned(), now)
        {
            self.per_jid.refund(&owner.to_owned());
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jid_and_domain_rates() {
        let t0 = Instant::now();
        let mut r = CommandRate::new(2, 3);
        assert!(r.allow("a@x.example", t0));
        assert!(r.allow("a@x.example", t0));
        assert!(!r.allow("a@x.example", t0), "JID rate");
        assert!(r.allow("b@x.example", t0));
        assert!(!r.allow("c@x.example", t0), "domain rate");
        assert!(!r.allow("c@sub.x.example", t0), "subdomains share it");
        assert!(r.allow("c@y.example", t0), "other domains unaffected");
        assert!(r.allow("a@x.example", t0 + Duration::from_secs(31)));
    }

    #[test]
    fn a_command_the_domain_refuses_costs_the_jid_nothing() {
        let t0 = Instant::now();
        let mut r = CommandRate::new(2, 60);
        for i in 0..60 {
            assert!(r.allow(&format!("j{i}@x.example"), t0));
        }
        for _ in 0..5 {
            assert!(!r.allow("b@x.example", t0), "domain rate");
        }
        // Two seconds later the domain has two commands again, and b, whose
        // refused attempts cost it nothing, may use both.
        let later = t0 + Duration::from_secs(2);
        assert!(r.allow("b@x.example", later));
        assert!(r.allow("b@x.example", later));
        assert!(
            !r.allow("b@x.example", later),
            "the JID's own rate still holds"
        );
    }
}
