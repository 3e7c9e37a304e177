//! Push outcomes (`last_successful_push`, `last_push_error`) kept in
//! memory and written to the store in batches, so a push never writes to
//! the store's journal: a write per push cost about 200 journal bytes (SD
//! cards and small flash wear), memtable memory that grew with traffic,
//! and CPU on a busy host (BENCHMARKS.md, "Real path").
//!
//! Repeats for one device coalesce into one entry. The map is bounded:
//! when it is full, [`flush_every`] is woken to write it at once, and
//! outcomes of devices not yet in the map are dropped until then (they are
//! debugging information: nothing acknowledged depends on them). A crash
//! loses at most one flush interval of outcomes; a clean shutdown writes
//! them (see [`super::Registrations::sync`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::FutureExt;

use super::record::PushStats;
use super::Registrations;
use crate::store_thread::StoreThread;

/// Devices with unwritten outcomes at most (about 150 bytes each, up to
/// about 450 with a long error reason).
pub const CAPACITY: usize = 16_384;

/// Longest error reason kept, in characters.
const MAX_REASON_CHARS: usize = 300;

/// Outcomes waiting to be written, by stats key (`component \0 node`).
#[derive(Debug)]
pub(super) struct Outcomes {
    pending: Mutex<HashMap<Box<[u8]>, PushStats>>,
    capacity: usize,
    /// Wakes the flusher early when the map is full.
    wake: smol::channel::Sender<()>,
    woken: smol::channel::Receiver<()>,
    dropped: AtomicU64,
}

/// Merges `newer` into `into`, field by field, the latest timestamp winning.
pub(super) fn merge(into: &mut PushStats, newer: &PushStats) {
    if newer.last_successful_push_ms > into.last_successful_push_ms {
        into.last_successful_push_ms = newer.last_successful_push_ms;
    }
    if newer.last_push_error_ms > into.last_push_error_ms {
        into.last_push_error_ms = newer.last_push_error_ms;
        into.last_push_error_reason = newer.last_push_error_reason.clone();
    }
}

impl Outcomes {
    pub(super) fn new(capacity: usize) -> Outcomes {
        let (wake, woken) = smol::channel::bounded(1);
        Outcomes {
            pending: Mutex::new(HashMap::new()),
            capacity,
            wake,
            woken,
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<[u8]>, PushStats>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one outcome at `ms`; `error` is the reason of a failure.
    pub(super) fn record(&self, key: Vec<u8>, ms: u64, error: Option<&str>) {
        let mut pending = self.lock();
        let len = pending.len();
        let entry = match pending.get_mut(key.as_slice()) {
            Some(e) => e,
            None if len >= self.capacity => {
                drop(pending);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let _ = self.wake.try_send(());
                return;
            }
            None => pending.entry(key.into_boxed_slice()).or_default(),
        };
        match error {
            None => entry.last_successful_push_ms = Some(ms),
            Some(reason) => {
                entry.last_push_error_ms = Some(ms);
                // Repeats of one failure keep their string.
                if entry.last_push_error_reason.as_deref() != Some(reason) {
                    entry.last_push_error_reason =
                        Some(reason.chars().take(MAX_REASON_CHARS).collect());
                }
            }
        }
        if len + 1 >= self.capacity {
            let _ = self.wake.try_send(());
        }
    }

    /// The unwritten outcome of one device.
    pub(super) fn get(&self, key: &[u8]) -> Option<PushStats> {
        self.lock().get(key).cloned()
    }

    /// Takes everything unwritten.
    pub(super) fn take(&self) -> HashMap<Box<[u8]>, PushStats> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back outcomes a failed flush could not write, as far as they fit.
    pub(super) fn put_back(&self, batch: HashMap<Box<[u8]>, PushStats>) {
        let mut pending = self.lock();
        for (k, older) in batch {
            if let Some(e) = pending.get_mut(&k) {
                let newer = std::mem::replace(e, older);
                merge(e, &newer);
            } else if pending.len() < self.capacity {
                pending.insert(k, older);
            }
        }
    }

    /// Outcomes dropped because the map was full, since the last call.
    pub(super) fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Devices with unwritten outcomes.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Writes the unwritten outcomes every `interval`, or at once when the map
/// fills up. Runs until its task is dropped (with the core).
pub async fn flush_every(regs: Arc<Registrations>, store_thread: StoreThread, interval: Duration) {
    let woken = regs.outcomes.woken.clone();
    loop {
        let full = async {
            let _ = woken.recv().await;
        };
        let due = async {
            async_io::Timer::after(interval).await;
        };
        full.or(due).await;
        let r = Arc::clone(&regs);
        if let Err(e) = store_thread.run(move || r.flush_outcomes()).await {
            log::warn!("writing push outcomes: {e}");
            crate::metrics::global().store_failure();
            // A full map wakes this at every new device: with the store
            // failing, that would be an attempt per push. Wait instead.
            async_io::Timer::after(interval.min(Duration::from_secs(5))).await;
            let _ = woken.try_recv();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_coalesce_and_the_map_is_bounded() {
        let o = Outcomes::new(2);
        for ms in 1..=100 {
            o.record(b"c\0a".to_vec(), ms, None);
        }
        o.record(b"c\0a".to_vec(), 7, Some("boom"));
        o.record(b"c\0b".to_vec(), 8, Some("x"));
        o.record(b"c\0c".to_vec(), 9, None);
        assert_eq!(o.len(), 2);
        assert_eq!(o.take_dropped(), 1);
        let a = o.get(b"c\0a").unwrap();
        assert_eq!(a.last_successful_push_ms, Some(100));
        assert_eq!(a.last_push_error_ms, Some(7));
        assert_eq!(a.last_push_error_reason.as_deref(), Some("boom"));
        assert!(o.get(b"c\0c").is_none());
    }

    #[test]
    fn put_back_keeps_the_newer_outcome() {
        let o = Outcomes::new(4);
        o.record(b"k".to_vec(), 5, None);
        let batch = o.take();
        o.record(b"k".to_vec(), 9, Some("late"));
        o.put_back(batch);
        let k = o.get(b"k").unwrap();
        assert_eq!(k.last_successful_push_ms, Some(5));
        assert_eq!(k.last_push_error_ms, Some(9));
        assert_eq!(k.last_push_error_reason.as_deref(), Some("late"));
    }
}
