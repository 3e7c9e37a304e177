//! Rate of registration commands per requester JID and per requester
//! domain: token buckets in memory, bounded in the number of keys.

use std::time::Instant;

use super::owner::domain_of;
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
    /// its domain's.
    pub fn allow(&mut self, owner: &str, now: Instant) -> bool {
        self.per_jid.allow(owner.to_owned(), now)
            && self.per_domain.allow(domain_of(owner).to_owned(), now)
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
        assert!(r.allow("c@y.example", t0), "other domains unaffected");
        assert!(r.allow("a@x.example", t0 + Duration::from_secs(31)));
    }
}
