//! Decoded registrations of recently pushed devices, so a push does not
//! read its record from the store and decode its JSON each time (about a
//! tenth of the CPU of a push through Prosody; BENCHMARKS.md, "Real path").
//!
//! Correctness over hit rate: every write that changes registrations
//! drops the records it wrote from the cache and moves its generation on
//! (see [`RecordCache::forget`]), and a record read from the store before
//! such a write is not cached after it ([`RecordCache::insert`] checks the
//! generation the reader saw). Only the written keys are dropped, so a
//! flood of registrations cannot empty the cache that every other
//! device's pushes are served from; a write that failed (it may be partly
//! applied) and a reopen empty it whole ([`RecordCache::invalidate`]).
//!
//! Bounded in records and in bytes: two halves, the recent one and the
//! one before; when the recent half is full (in records, or in bytes at
//! [`BYTES_PER_RECORD`] on average) the older one is dropped and the
//! recent one takes its place. Anything hit in the older half moves back to the recent
//! one, so devices pushed often stay (an approximate LRU without a list).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::record::Registration;

/// The bytes a cached record may take on average: real ones take a few
/// hundred, so records made as large as the field limits allow fill a
/// half in bytes long before they fill it in number.
pub const BYTES_PER_RECORD: usize = 1024;

/// Cached records, at most `capacity` in all.
#[derive(Debug)]
pub(super) struct RecordCache {
    inner: Mutex<Halves>,
    /// Records per half; 0 turns the cache off.
    half: usize,
}

#[derive(Debug, Default)]
struct Halves {
    generation: u64,
    recent: HashMap<Box<[u8]>, Arc<Registration>>,
    /// Bytes of the keys and records in `recent`.
    recent_bytes: usize,
    older: HashMap<Box<[u8]>, Arc<Registration>>,
}

/// About what one cached entry takes: its key, its record's strings and
/// the fixed parts.
fn entry_bytes(key: &[u8], r: &Registration) -> usize {
    let dialect = match &r.dialect {
        Some(crate::registrations::DialectRecord::Conversations {
            account,
            muc,
            channel,
        }) => {
            account.len()
                + muc.as_ref().map_or(0, String::len)
                + channel.as_ref().map_or(0, String::len)
        }
        Some(crate::registrations::DialectRecord::Siskin {
            account,
            voip_token,
        }) => account.len() + voip_token.as_ref().map_or(0, String::len),
        None => 0,
    };
    key.len()
        + r.component.len()
        + r.push_type.len()
        + r.node.len()
        + r.token.len()
        + r.salt.len()
        + r.owner.as_ref().map_or(0, String::len)
        + r.secret_hash.as_ref().map_or(0, String::len)
        + dialect
        + std::mem::size_of::<Registration>()
        + 64
}

impl RecordCache {
    /// A cache of at most `capacity` records (0: off).
    pub(super) fn new(capacity: usize) -> RecordCache {
        RecordCache {
            inner: Mutex::new(Halves::default()),
            half: capacity / 2,
        }
    }

    fn halves(&self) -> std::sync::MutexGuard<'_, Halves> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation to hand back to [`RecordCache::insert`]; read it
    /// before reading the store.
    pub(super) fn generation(&self) -> u64 {
        self.halves().generation
    }

    /// The cached record under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<Arc<Registration>> {
        if self.half == 0 {
            return None;
        }
        let mut h = self.halves();
        if let Some(r) = h.recent.get(key) {
            return Some(Arc::clone(r));
        }
        let (k, r) = h.older.remove_entry(key)?;
        h.add(k, Arc::clone(&r), self.half);
        Some(r)
    }

    /// Caches `record` under `key`, unless a write invalidated the cache
    /// since `seen` was taken (the record may be older than that write).
    pub(super) fn insert(&self, key: &[u8], record: Arc<Registration>, seen: u64) {
        if self.half == 0 {
            return;
        }
        let mut h = self.halves();
        if h.generation == seen {
            h.add(key.into(), record, self.half);
        }
    }

    /// Forgets the records under `keys`; call after a write of them has
    /// reached the store. Moves the generation on, so a record of them
    /// read before the write is not cached after it.
    pub(super) fn forget<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        let mut h = self.halves();
        h.generation = h.generation.wrapping_add(1);
        for key in keys {
            if let Some((k, r)) = h.recent.remove_entry(key) {
                h.recent_bytes = h.recent_bytes.saturating_sub(entry_bytes(&k, &r));
            }
            h.older.remove(key);
        }
    }

    /// Forgets every record: after a failed write (it may be partly
    /// applied) and when the engine is reopened.
    pub(super) fn invalidate(&self) {
        let mut h = self.halves();
        h.generation = h.generation.wrapping_add(1);
        h.recent = HashMap::new();
        h.recent_bytes = 0;
        h.older = HashMap::new();
    }

    /// Records cached now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let h = self.halves();
        h.recent.len() + h.older.len()
    }
}

impl Halves {
    fn add(&mut self, key: Box<[u8]>, record: Arc<Registration>, half: usize) {
        if self.recent.len() >= half || self.recent_bytes >= half * BYTES_PER_RECORD {
            self.older = std::mem::take(&mut self.recent);
            self.recent_bytes = 0;
        }
        self.recent_bytes += entry_bytes(&key, &record);
        self.recent.insert(key, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(token: &str) -> Arc<Registration> {
        Arc::new(Registration {
            v: 1,
            component: "push.example".into(),
            push_type: "apns".into(),
            node: "n".into(),
            token: token.into(),
            registered_ms: 0,
            renewed_ms: 0,
            salt: String::new(),
            owner: None,
            dialect: None,
            secret_hash: None,
        })
    }

    #[test]
    fn a_record_read_before_a_write_is_not_cached_after_it() {
        let c = RecordCache::new(8);
        let seen = c.generation();
        // A writer commits a new token and invalidates while the reader
        // still holds the old record.
        c.invalidate();
        c.insert(b"k", reg("old"), seen);
        assert!(c.get(b"k").is_none());
        let seen = c.generation();
        c.insert(b"k", reg("new"), seen);
        assert_eq!(c.get(b"k").unwrap().token, "new");
        c.invalidate();
        assert!(c.get(b"k").is_none());
    }

    #[test]
    fn a_write_drops_only_its_own_keys() {
        let c = RecordCache::new(8);
        let g = c.generation();
        for k in [b"a", b"b", b"c"] {
            c.insert(k, reg("t"), g);
        }
        // A reader of "b" that started before the write must not cache
        // what it read; the others stay cached.
        let seen = c.generation();
        c.forget([b"b".as_slice()]);
        c.insert(b"b", reg("old"), seen);
        assert!(c.get(b"b").is_none());
        assert!(c.get(b"a").is_some() && c.get(b"c").is_some());
        c.insert(b"b", reg("new"), c.generation());
        assert_eq!(c.get(b"b").unwrap().token, "new");
    }

    #[test]
    fn bounded_and_keeps_what_is_hit() {
        let c = RecordCache::new(4);
        let g = c.generation();
        for k in 0u8..3 {
            c.insert(&[k], reg("t"), g);
        }
        // 0 and 1 moved to the older half when 2 came; hitting 0 brings it
        // back, and the next rotation drops 1, never hit.
        assert!(c.get(&[0]).is_some());
        c.insert(&[3], reg("t"), g);
        assert!(c.len() <= 4);
        assert!(c.get(&[1]).is_none());
        assert!(c.get(&[0]).is_some() && c.get(&[3]).is_some());
        for k in 10u8..100 {
            c.insert(&[k], reg("t"), g);
            assert!(c.len() <= 4);
        }
    }

    #[test]
    fn large_records_are_bounded_in_bytes() {
        let c = RecordCache::new(1000);
        let g = c.generation();
        // Records as large as the field limits allow: the halves rotate by
        // bytes long before 500 records each.
        for k in 0u16..1000 {
            c.insert(&k.to_be_bytes(), reg(&"t".repeat(4096)), g);
        }
        let h = c.halves();
        let bytes: usize = h
            .recent
            .iter()
            .chain(h.older.iter())
            .map(|(k, r)| entry_bytes(k, r))
            .sum();
        assert!(bytes <= 1000 * BYTES_PER_RECORD + 2 * 5000, "{bytes}");
        assert!(h.recent.len() + h.older.len() < 300);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let c = RecordCache::new(0);
        c.insert(b"k", reg("t"), c.generation());
        assert!(c.get(b"k").is_none());
    }
}
