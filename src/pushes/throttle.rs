//! Per-device throttle driven by `rate_limit`, with the meaning of
//! mod_push_appserver's `zthrottle`: `rate_limit` is the minimum distance
//! in seconds between two pushes to one device (and priority). The first
//! push goes out at once, one more is held and sent at the end of the
//! distance (carrying the newest content: coalescing), the rest are
//! accepted and dropped. Pure: the caller passes the time in and schedules
//! the held push.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with a push.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<T> {
    /// Send it (handed back) now.
    Now(T),
    /// It is held; call [`Throttle::take_due`] at this instant to get the
    /// newest held push for the device.
    Later(Instant),
    /// A push is already held for this window: it was replaced by this one
    /// (newest content wins) and nothing more needs scheduling.
    Coalesced,
}

#[derive(Debug)]
struct Slot<T> {
    window_start: Instant,
    held: Option<T>,
}

/// Throttle state for all devices, bounded to `capacity` entries.
#[derive(Debug)]
pub struct Throttle<K, T> {
    window: Duration,
    capacity: usize,
    slots: HashMap<K, Slot<T>>,
    /// When the map was last swept for devices to forget: a sweep reads
    /// every slot, so a full map of busy devices is swept at most once per
    /// eighth of a window, not once per new device.
    last_sweep: Option<Instant>,
    /// Sweeps so far (for the tests).
    sweeps: u64,
}

impl<K: Hash + Eq + Clone, T> Throttle<K, T> {
    /// A throttle allowing one push per `window` (plus one held), tracking
    /// at most `capacity` devices.
    pub fn new(window: Duration, capacity: usize) -> Self {
        Throttle {
            window,
            capacity,
            slots: HashMap::new(),
            last_sweep: None,
            sweeps: 0,
        }
    }

    /// The window for `rate_limit`: that many seconds between two pushes
    /// to one device, as the module's `zthrottle` (not pushes per second,
    /// which its README claimed); `None` (no throttling) for 0.
    pub fn window_for(rate_limit: u32) -> Option<Duration> {
        (rate_limit > 0).then(|| Duration::from_secs(u64::from(rate_limit)))
    }

    /// Decides about a push for `key` arriving at `now`.
    pub fn decide(&mut self, key: &K, push: T, now: Instant) -> Decision<T> {
        if let Some(slot) = self.slots.get_mut(key) {
            let window_end = slot.window_start + self.window;
            if now < window_end {
                return if slot.held.replace(push).is_some() {
                    Decision::Coalesced
                } else {
                    Decision::Later(window_end)
                };
            }
            if slot.held.is_none() {
                slot.window_start = now;
                return Decision::Now(push);
            }
            // A held push is overdue (its timer has not fired yet): let the
            // newest content ride on it.
            slot.held = Some(push);
            return Decision::Coalesced;
        }
        let sweep_due = !matches!(
            self.last_sweep,
            Some(t) if now.saturating_duration_since(t) < self.window / 8
        );
        if self.slots.len() >= self.capacity && sweep_due {
            self.evict(now);
        }
        if self.slots.len() < self.capacity {
            self.slots.insert(
                key.clone(),
                Slot {
                    window_start: now,
                    held: None,
                },
            );
        }
        // At capacity with every device busy: fail open rather than drop.
        Decision::Now(push)
    }

    /// Takes the held push of `key` when its window has ended; the send
    /// starts a new window.
    pub fn take_due(&mut self, key: &K, now: Instant) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if now < slot.window_start + self.window {
            return None;
        }
        let held = slot.held.take()?;
        slot.window_start = now;
        Some(held)
    }

    /// Forgets devices whose window has passed with nothing held.
    fn evict(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        self.sweeps += 1;
        let window = self.window;
        self.slots
            .retain(|_, s| s.held.is_some() || now < s.window_start + window);
    }

    /// Devices tracked.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_of_busy_devices_is_swept_once_per_eighth_of_a_window() {
        let t0 = Instant::now();
        let window = Duration::from_secs(8);
        let mut t = Throttle::new(window, 100);
        for k in 0..100u32 {
            assert_eq!(t.decide(&k, k, t0), Decision::Now(k));
        }
        // Every device busy: a flood of new ones fails open, and costs one
        // sweep, not one per device.
        for k in 100..10_000u32 {
            assert_eq!(t.decide(&k, k, t0), Decision::Now(k));
        }
        assert_eq!(t.sweeps, 1);
        assert_eq!(t.len(), 100);
        // A window later the old devices are forgotten at the next sweep.
        let later = t0 + window;
        assert_eq!(t.decide(&20_000, 0, later), Decision::Now(0));
        assert_eq!(t.sweeps, 2);
        assert_eq!(t.len(), 1);
    }

    const W: Duration = Duration::from_millis(200);

    #[test]
    fn first_goes_now_second_is_held_rest_coalesce() {
        let t0 = Instant::now();
        let mut t = Throttle::new(W, 100);
        assert_eq!(t.decide(&"d", 1, t0), Decision::Now(1));
        assert_eq!(t.decide(&"d", 2, t0 + W / 4), Decision::Later(t0 + W));
        assert_eq!(t.decide(&"d", 3, t0 + W / 2), Decision::Coalesced);
        assert_eq!(t.decide(&"other", 9, t0 + W / 2), Decision::Now(9));
        assert_eq!(
            t.take_due(&"d", t0 + W / 2),
            None,
            "not before the window ends"
        );
        assert_eq!(t.take_due(&"d", t0 + W), Some(3), "newest content wins");
        assert_eq!(t.take_due(&"d", t0 + W), None, "sent once");
        // The held send opened a new window.
        assert_eq!(
            t.decide(&"d", 4, t0 + W + W / 2),
            Decision::Later(t0 + 2 * W)
        );
        assert_eq!(t.take_due(&"d", t0 + 2 * W), Some(4));
        assert_eq!(t.decide(&"d", 5, t0 + 4 * W), Decision::Now(5));
    }

    #[test]
    fn bounded_and_fails_open() {
        let t0 = Instant::now();
        let mut t = Throttle::new(W, 2);
        assert_eq!(t.decide(&1, (), t0), Decision::Now(()));
        assert_eq!(t.decide(&2, (), t0), Decision::Now(()));
        assert_eq!(t.decide(&3, (), t0), Decision::Now(()));
        assert_eq!(t.len(), 2);
        // After the windows pass, old devices are evicted to make room.
        assert_eq!(t.decide(&3, (), t0 + W), Decision::Now(()));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn rate_limit_is_seconds_between_pushes_as_zthrottle() {
        assert_eq!(
            Throttle::<u8, ()>::window_for(5),
            Some(Duration::from_secs(5)),
            "the module's default: 5 s between two pushes, not 5 per second"
        );
        assert_eq!(
            Throttle::<u8, ()>::window_for(1),
            Some(Duration::from_secs(1))
        );
        assert_eq!(Throttle::<u8, ()>::window_for(0), None, "0 = off");
        // zthrottle with distance 5: a burst of 10 pushes in 4 s gives one
        // now and one at t0 + 5 s; the other 8 are dropped (here: coalesced
        // into the held one, newest content wins).
        let w = Throttle::<&str, u32>::window_for(5).unwrap();
        let t0 = Instant::now();
        let mut t = Throttle::new(w, 100);
        let mut now_sent = Vec::new();
        let mut later = Vec::new();
        for i in 0..10u32 {
            match t.decide(&"dev", i, t0 + Duration::from_millis(400) * i) {
                Decision::Now(p) => now_sent.push(p),
                Decision::Later(at) => later.push(at),
                Decision::Coalesced => {}
            }
        }
        assert_eq!(now_sent, [0]);
        assert_eq!(later, [t0 + Duration::from_secs(5)]);
        assert_eq!(t.take_due(&"dev", t0 + Duration::from_secs(4)), None);
        assert_eq!(t.take_due(&"dev", t0 + Duration::from_secs(5)), Some(9));
        // The held send opened a new distance: 4.9 s later is still inside.
        assert_eq!(
            t.decide(&"dev", 10, t0 + Duration::from_millis(9900)),
            Decision::Later(t0 + Duration::from_secs(10))
        );
        // Well after: straight through again.
        assert_eq!(t.take_due(&"dev", t0 + Duration::from_secs(10)), Some(10));
        assert_eq!(
            t.decide(&"dev", 11, t0 + Duration::from_secs(16)),
            Decision::Now(11)
        );
    }

    #[test]
    fn priorities_of_one_device_are_throttled_apart() {
        // The module keyed zthrottle by "priority@node": a silent push does
        // not hold back a visible one.
        let w = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut t = Throttle::new(w, 100);
        assert_eq!(t.decide(&("n", "silent"), 1, t0), Decision::Now(1));
        assert_eq!(t.decide(&("n", "high"), 2, t0), Decision::Now(2));
        assert_eq!(
            t.decide(&("n", "high"), 3, t0 + Duration::from_secs(1)),
            Decision::Later(t0 + w)
        );
    }
}
