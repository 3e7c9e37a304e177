//! Device registrations: the only owner of the store. Register, renew,
//! unregister (an owner JID's own over XMPP, by secret over HTTP), look up
//! by node or by (type, token), remove dead tokens with the timestamp rule,
//! derive and verify secrets, count registrations per owner and in all.
//!
//! Writes that change registrations are synced to disk before they return,
//! so an acknowledged registration survives `kill -9`. Push outcomes are
//! kept in memory and written in unsynced batches (see [`outcomes`]):
//! losing the latest timestamps in a crash is fine.

mod bulk;
mod cache;
mod counters;
mod import;
mod keycheck;
mod migrate;
mod opening;
pub mod outcomes;
pub mod owner;
mod rate;
mod record;
pub mod recovery;
mod secret;
mod store;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use fjall::PersistMode;

use crate::clock::unix_millis;
pub use bulk::NewDevice;
pub use counters::{CountLimits, LimitKind};
pub use import::{ImportItem, ImportOutcome};
pub use keycheck::KeyPolicy;
pub use opening::OPEN_WAIT;
pub use rate::CommandRate;
pub use record::{DialectRecord, PushStats, Registration, SCHEMA_VERSION};
pub use secret::{hex, KeyError, ServerKey};
pub use store::table_bytes;
use store::{Store, StoreGuard};
pub use write::TokenChange;

/// Longest accepted node, token and type, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;

/// Why a registration operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The storage engine failed (disk full, I/O error, corruption).
    Engine(fjall::Error),
    /// A stored record could not be decoded.
    Corrupt(String),
    /// The store was written by a newer release.
    SchemaTooNew(u32),
    /// The server key could not be loaded.
    Key(KeyError),
    /// The server key file is gone but the store was used with a key.
    KeyMissing(PathBuf),
    /// The server key file is not the key the store was used with.
    KeyMismatch(PathBuf),
    /// Creating the data dir failed.
    Io(std::io::Error),
    /// The engine is closed for a reopen, or a reopen failed.
    Unavailable,
    /// The engine is still being opened in the background (see
    /// [`Registrations::open_in_background`]).
    Opening,
    /// Too many reads wait for the disk (the reader thread's queue).
    Busy,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Engine(e) => write!(f, "store: {e}"),
            StoreError::Corrupt(r) => write!(f, "store: undecodable record: {r}"),
            StoreError::SchemaTooNew(v) => write!(
                f,
                "store schema version {v} is newer than this release supports ({SCHEMA_VERSION})"
            ),
            StoreError::Key(e) => write!(f, "{e}"),
            StoreError::KeyMissing(p) => keycheck::explain(f, p, true),
            StoreError::KeyMismatch(p) => keycheck::explain(f, p, false),
            StoreError::Io(e) => write!(f, "data dir: {e}"),
            StoreError::Unavailable => f.write_str("store: not open (reopening after a failure)"),
            StoreError::Busy => f.write_str("store: too many reads waiting for the disk"),
            StoreError::Opening => f.write_str(
                "store: still opening (replaying its journal after a start); try again in a moment",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Engine(e)
    }
}

/// Why a registration request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InputError {
    /// A required field is missing or empty.
    Missing(&'static str),
    /// A field is too long or has control characters.
    Invalid(&'static str),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Missing(field) => write!(f, "missing field '{field}'"),
            InputError::Invalid(field) => write!(f, "invalid value for '{field}'"),
        }
    }
}

/// Why a registration change was refused; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A count limit is reached.
    Limit(LimitKind),
    /// The node was registered over XMPP: only its owner may change it.
    Owned,
    /// The secret given does not match the node's.
    WrongSecret,
    /// The node is registered with another token or type: changing that
    /// over HTTP needs its secret.
    SecretNeeded,
}

/// Why a registration change failed.
#[derive(Debug)]
pub enum RegError {
    /// The store failed.
    Store(StoreError),
    /// The change is not allowed.
    Refused(Refusal),
}

impl From<StoreError> for RegError {
    fn from(e: StoreError) -> Self {
        RegError::Store(e)
    }
}

impl std::fmt::Display for RegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegError::Store(e) => write!(f, "{e}"),
            RegError::Refused(Refusal::Limit(k)) => write!(f, "{k}"),
            RegError::Refused(Refusal::Owned) => {
                f.write_str("node belongs to another registration")
            }
            RegError::Refused(Refusal::WrongSecret) => f.write_str("wrong secret for this node"),
            RegError::Refused(Refusal::SecretNeeded) => f.write_str(
                "this node is registered with another token; changing it needs the node's secret",
            ),
        }
    }
}

/// Checks a node, token or type value.
pub fn check_field(name: &'static str, value: &str) -> Result<(), InputError> {
    if value.is_empty() {
        return Err(InputError::Missing(name));
    }
    if value.len() > MAX_FIELD_BYTES || value.chars().any(char::is_control) {
        return Err(InputError::Invalid(name));
    }
    Ok(())
}

/// The registration store.
pub struct Registrations {
    /// The open engine; `None` only while it is being opened in the
    /// background or reopened (see [`Registrations::reopen`]).
    store: RwLock<Option<Store>>,
    /// Whether the first open has ended (see [`opening`]).
    gate: opening::Gate,
    dir: PathBuf,
    cache_bytes: u64,
    key: ServerKey,
    /// Serializes read-modify-write of registrations and their counts.
    write_lock: Mutex<()>,
    /// Count limits for new registrations (changed by a reload).
    limits: Mutex<CountLimits>,
    /// The server-wide rate of new registrations (`new_per_minute`).
    new_rate: Mutex<crate::ratelimit::RateLimiter<()>>,
    /// Why the latest synced write failed (cleared by the next success).
    write_error: Mutex<Option<String>>,
    /// The retry after a failed write (see [`recovery`]).
    recovery: recovery::Recovery,
    /// Push outcomes not yet written (see [`outcomes`]).
    outcomes: outcomes::Outcomes,
    /// Decoded records for pushes (see [`cache`]).
    cache: cache::RecordCache,
}

/// Decoded registrations cached for pushes unless configured otherwise
/// (`[store] record_cache`): about 0.6 KiB each, so at most about 10 MiB,
/// and only as many as devices pushed to recently.
pub const DEFAULT_RECORD_CACHE: usize = 16_384;

impl std::fmt::Debug for Registrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrations").finish_non_exhaustive()
    }
}

/// A registration together with its secret, as answered to the device.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The stored record.
    pub registration: Registration,
    /// The XEP-0357 secret.
    pub secret: String,
}

/// The server-wide bucket of new registrations: a minute's worth at once.
fn new_rate(per_minute: u32) -> crate::ratelimit::RateLimiter<()> {
    crate::ratelimit::RateLimiter::per_minute(per_minute, 1)
}

/// Makes the data dir 0700 when others may read it (one made by hand is
/// often 0755): the store holds every device token, and its files are
/// created readable. Only warns when that is not ours to change.
fn owner_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        Ok(()) => log::info!(
            "data dir {} was open to other users; it is now 0700",
            dir.display()
        ),
        Err(e) => log::warn!(
            "data dir {} is open to other users and cannot be made 0700: {e}",
            dir.display()
        ),
    }
}

impl Registrations {
    /// Opens (or creates) the store in `dir` with a block cache of
    /// `cache_bytes`, sized for small hosts. The server key must fit the
    /// store (see [`KeyPolicy::Check`]).
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Registrations, StoreError> {
        Self::open_with(dir, cache_bytes, KeyPolicy::Check)
    }

    /// [`Registrations::open`], treating a server key that does not fit
    /// the store as `policy` says.
    pub fn open_with(
        dir: &Path,
        cache_bytes: u64,
        policy: KeyPolicy,
    ) -> Result<Registrations, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::Io)?;
        owner_only(dir);
        let started = std::time::Instant::now();
        let store = Store::open(dir, cache_bytes)?;
        let key = keycheck::load_key(dir, &store, policy)?;
        opening::log_opened(started, store.in_memory(), false);
        Ok(Self::with_parts(
            Some(store),
            opening::Gate::open(),
            dir,
            cache_bytes,
            key,
        ))
    }

    /// Opens the store on a thread of its own and returns at once, when
    /// the server key is on disk and `policy` is [`KeyPolicy::Check`]:
    /// operations wait for the open at [`Registrations::ready`], and
    /// [`Registrations::open_failure`] reports a failed one (see
    /// [`opening`]). Otherwise (a first start, `--reset-secrets`) opens
    /// in the foreground like [`Registrations::open_with`].
    pub fn open_in_background(
        dir: &Path,
        cache_bytes: u64,
        records: usize,
        policy: KeyPolicy,
    ) -> Result<Arc<Registrations>, StoreError> {
        let path = dir.join("server.key");
        let early = match policy {
            KeyPolicy::Check if dir.is_dir() => ServerKey::load(&path).map_err(StoreError::Key)?,
            _ => None,
        };
        let Some(key) = early else {
            let regs = Self::open_with(dir, cache_bytes, policy)?.with_record_cache(records);
            return Ok(Arc::new(regs));
        };
        owner_only(dir);
        let (gate, opener) = opening::Gate::opening();
        let regs = Arc::new(
            Self::with_parts(None, gate, dir, cache_bytes, key).with_record_cache(records),
        );
        let bg = Arc::clone(&regs);
        std::thread::Builder::new()
            .name("store-open".into())
            .spawn(move || {
                let result = bg.open_now();
                if let Err(e) = &result {
                    log::error!("store: cannot open: {e}");
                }
                bg.gate.finish(opener, result);
            })
            .map_err(StoreError::Io)?;
        Ok(regs)
    }

    /// The background open: the engine, then the key read at start
    /// checked against it.
    fn open_now(&self) -> Result<(), StoreError> {
        #[cfg(debug_assertions)]
        opening::hold_for_tests();
        let started = std::time::Instant::now();
        let store = Store::open(&self.dir, self.cache_bytes)?;
        let key = keycheck::load_key(&self.dir, &store, KeyPolicy::Check)?;
        // The file was read at start; one swapped meanwhile is not the
        // key the services were built with.
        if key.check_value() != self.key.check_value() {
            return Err(StoreError::KeyMismatch(self.dir.join("server.key")));
        }
        let replayed = store.in_memory();
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(store);
        opening::log_opened(started, replayed, true);
        Ok(())
    }

    /// Waits until the store is open (at most [`OPEN_WAIT`]); at once
    /// when it is. Await it before an operation that needs the store.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.ready_within(OPEN_WAIT).await
    }

    /// [`Registrations::ready`], waiting at most `limit`.
    pub async fn ready_within(&self, limit: std::time::Duration) -> Result<(), StoreError> {
        self.gate.ready(limit).await
    }

    /// True while the store is being opened in the background.
    pub fn is_opening(&self) -> bool {
        self.gate.is_opening()
    }

    /// Resolves with the error of a failed background open (once); never
    /// when the open succeeds.
    pub async fn open_failure(&self) -> StoreError {
        self.gate.failure().await
    }

    fn with_parts(
        store: Option<Store>,
        gate: opening::Gate,
        dir: &Path,
        cache_bytes: u64,
        key: ServerKey,
    ) -> Registrations {
        Registrations {
            store: RwLock::new(store),
            gate,
            dir: dir.to_path_buf(),
            cache_bytes,
            key,
            write_lock: Mutex::new(()),
            limits: Mutex::new(CountLimits::default()),
            new_rate: Mutex::new(new_rate(CountLimits::default().new_per_minute)),
            write_error: Mutex::new(None),
            recovery: recovery::Recovery::new(),
            outcomes: outcomes::Outcomes::new(outcomes::CAPACITY),
            cache: cache::RecordCache::new(DEFAULT_RECORD_CACHE),
        }
    }

    /// The same store caching at most `records` decoded registrations
    /// for pushes (0: none).
    pub fn with_record_cache(mut self, records: usize) -> Self {
        self.cache = cache::RecordCache::new(records);
        self
    }

    /// The same store with these count limits.
    pub fn with_limits(self, limits: CountLimits) -> Self {
        self.set_limits(limits);
        self
    }

    /// Changes the count limits (SIGHUP reload); existing registrations
    /// over a lowered limit stay, new ones are refused.
    pub fn set_limits(&self, limits: CountLimits) {
        let mut current = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if current.new_per_minute != limits.new_per_minute {
            *self.new_rate.lock().unwrap_or_else(|e| e.into_inner()) =
                new_rate(limits.new_per_minute);
        }
        *current = limits;
    }

    /// Takes one new registration from the server-wide rate.
    fn allow_new(&self) -> bool {
        self.new_rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow((), std::time::Instant::now())
    }

    /// The count limits in force.
    pub fn limits(&self) -> CountLimits {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open engine, for one operation. Hold the guard briefly: a
    /// reopen waits for every guard to be dropped.
    fn store(&self) -> Result<StoreGuard<'_>, StoreError> {
        let guard = self.store.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(self.gate.refusal().unwrap_or(StoreError::Unavailable));
        }
        Ok(StoreGuard(guard))
    }

    /// Closes the engine and opens it again, e.g. after a write failure
    /// left it refusing writes (fjall poisons itself when a journal write
    /// or fsync fails). Readers wait while it runs; if opening fails the
    /// store stays unavailable until the next successful call.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let _writes = self.lock();
        let mut slot = self.store.write().unwrap_or_else(|e| e.into_inner());
        // The engine holds a lock file: the old one must be gone first.
        drop(slot.take());
        self.cache.invalidate();
        *slot = Some(Store::open(&self.dir, self.cache_bytes)?);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits a synced batch that writes the records under `records`
    /// (keys of the registrations keyspace), remembering whether writes
    /// work; a failure wakes the retry (see [`recovery`]).
    fn commit<'k>(
        &self,
        batch: fjall::OwnedWriteBatch,
        records: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), StoreError> {
        let result = batch.commit().map_err(StoreError::from);
        match result {
            Ok(()) => self.cache.forget(records),
            // The batch may be partly applied: nothing cached is trusted.
            Err(_) => self.cache.invalidate(),
        }
        *self.write_error.lock().unwrap_or_else(|e| e.into_inner()) =
            result.as_ref().err().map(ToString::to_string);
        if result.is_err() {
            self.recovery.wake();
        }
        result
    }

    /// An unsynced write failed: the engine likely refuses writes now.
    fn write_failed(&self, e: &fjall::Error) {
        *self.write_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        self.recovery.wake();
    }

    /// Why registration writes are failing (a full disk, an I/O error),
    /// or `None` while they work. Reads and pushes go on either way.
    pub fn write_error(&self) -> Option<String> {
        self.write_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The secret of a registration; empty for an imported one, whose
    /// secret only the device knows (only its hash is stored).
    pub fn secret_of(&self, r: &Registration) -> String {
        if r.secret_hash.is_some() {
            return String::new();
        }
        self.key.secret(&r.component, &r.node, &r.salt)
    }

    /// A key for another purpose derived from the server key under
    /// `label` (see [`ServerKey::derive`]).
    pub fn derived_key(&self, label: &str) -> [u8; 32] {
        self.key.derive(label)
    }

    /// Whether `given` is the registration's secret (constant time): the
    /// derived one, or for an imported registration the one it brought.
    pub fn verify_secret(&self, r: &Registration, given: &str) -> bool {
        match &r.secret_hash {
            Some(hash) => self.key.verify_imported(&r.component, &r.node, hash, given),
            None => self.key.verify(&r.component, &r.node, &r.salt, given),
        }
    }

    /// The registration of `node` at `component`.
    pub fn lookup(&self, component: &str, node: &str) -> Result<Option<Registration>, StoreError> {
        self.store()?.lookup(component, node)
    }

    /// The registration of `node` at `component` if the record cache
    /// holds it (no store read).
    pub fn cached_for_push(&self, component: &str, node: &str) -> Option<Arc<Registration>> {
        self.cache.get(&record::reg_key(component, node))
    }

    /// [`Registrations::lookup`] for a push: served from the record cache
    /// when it holds the node, else read from the store and cached.
    pub fn lookup_for_push(
        &self,
        component: &str,
        node: &str,
    ) -> Result<Option<Arc<Registration>>, StoreError> {
        let key = record::reg_key(component, node);
        if let Some(r) = self.cache.get(&key) {
            return Ok(Some(r));
        }
        let seen = self.cache.generation();
        let Some(r) = self.store()?.lookup(component, node)? else {
            return Ok(None);
        };
        let r = Arc::new(r);
        self.cache.insert(&key, Arc::clone(&r), seen);
        Ok(Some(r))
    }

    /// Every registration using this (type, token), through the index.
    pub fn lookup_token(
        &self,
        push_type: &str,
        token: &str,
    ) -> Result<Vec<Registration>, StoreError> {
        self.store()?.lookup_token(push_type, token)
    }

    /// Dead-token removal (mod_push_appserver's `unregister-push-token` event):
    /// removes every registration with this (type, token) unless the device
    /// registered again after `since`. Returns the nodes removed.
    pub fn remove_dead_token(
        &self,
        push_type: &str,
        token: &str,
        since: SystemTime,
    ) -> Result<Vec<Registration>, StoreError> {
        let since_ms = unix_millis(since);
        let _guard = self.lock();
        let st = self.store()?;
        let mut removed = Vec::new();
        for r in st.lookup_token(push_type, token)? {
            if r.renewed_ms <= since_ms {
                let key = record::reg_key(&r.component, &r.node);
                self.commit(st.remove_batch(&r)?, [key.as_slice()])?;
                removed.push(r);
            }
        }
        Ok(removed)
    }

    /// Records the outcome of a push, in memory only: it reaches the
    /// store at the next [`Registrations::flush_outcomes`].
    pub fn record_push(&self, component: &str, node: &str, now: SystemTime, error: Option<&str>) {
        self.outcomes
            .record(record::stats_key(component, node), unix_millis(now), error);
    }

    /// Writes the outcomes recorded since the last flush in one unsynced
    /// batch, merged into the stored ones; devices no longer registered
    /// are skipped, so a flush never brings back the stats of a removed
    /// node. Blocking; run it on the store thread. On failure the outcomes
    /// are kept for the next flush.
    pub fn flush_outcomes(&self) -> Result<usize, StoreError> {
        let dropped = self.outcomes.take_dropped();
        if dropped > 0 {
            log::warn!(
                "{dropped} push outcome(s) not recorded: more than {} devices waited for a flush",
                outcomes::CAPACITY
            );
        }
        let pending = self.outcomes.take();
        if pending.is_empty() {
            return Ok(0);
        }
        // Under the write lock: no removal slips in between the check
        // that a device is registered and the write.
        let _guard = self.lock();
        let result = (|| {
            let st = self.store()?;
            let mut batch = st.db.batch();
            let mut written = 0;
            for (key, newer) in &pending {
                if !st.regs.contains_key(key)? {
                    continue;
                }
                let mut stats = match st.stats.get(key)? {
                    Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
                    None => PushStats::default(),
                };
                outcomes::merge(&mut stats, newer);
                let bytes =
                    serde_json::to_vec(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                batch.insert(&st.stats, key.to_vec(), bytes);
                written += 1;
            }
            batch.commit().inspect_err(|e| self.write_failed(e))?;
            Ok(written)
        })();
        if result.is_err() {
            self.outcomes.put_back(pending);
        }
        result
    }

    /// Push outcomes of a device, the unwritten ones included.
    pub fn push_stats(&self, component: &str, node: &str) -> Result<PushStats, StoreError> {
        let key = record::stats_key(component, node);
        let st = self.store()?;
        let mut stats = match st.stats.get(&key)? {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => PushStats::default(),
        };
        if let Some(newer) = self.outcomes.get(&key) {
            outcomes::merge(&mut stats, &newer);
        }
        Ok(stats)
    }

    /// Nodes registered at `component`, in key order, at most `limit`.
    pub fn nodes(&self, component: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let st = self.store()?;
        let mut out = Vec::new();
        for kv in st
            .regs
            .prefix(record::component_prefix(component))
            .take(limit)
        {
            let k = kv.key()?;
            if let Some(node) = record::split_key(&k).into_iter().nth(1) {
                out.push(node);
            }
        }
        Ok(out)
    }

    /// Approximate number of registrations (all components).
    pub fn approximate_count(&self) -> usize {
        self.store().map_or(0, |st| st.regs.approximate_len())
    }

    /// Exact number of registrations (all components), from the counters.
    pub fn count(&self) -> Result<u64, StoreError> {
        counters::read(&self.store()?.counters, counters::TOTAL)
    }

    /// Exact number of registrations of `owner`'s JID and of its domain.
    pub fn count_of_owner(&self, owner: &str) -> Result<(u64, u64), StoreError> {
        counters::of_owner(&self.store()?.counters, owner)
    }

    /// Writes the unwritten push outcomes, flushes the journal to disk, then writes the memtables into disk
    /// tables (waiting at most 5 s) so the next start replays nothing and
    /// serves at once. Called when the server stops.
    pub fn sync(&self) -> Result<(), StoreError> {
        // Stopped while the store was still opening: let the open end
        // (bounded: a stalled disk must not hold the stop; the engine is
        // crash-safe either way). A failed open has nothing to sync and
        // is the stop's error.
        if !self.gate.wait_blocking(std::time::Duration::from_secs(10)) {
            log::warn!(
                "store: still opening 10 s after the stop; not synced (nothing was written)"
            );
            return Ok(());
        }
        if let Some(e) = self.gate.refusal() {
            return Err(e);
        }
        self.flush_outcomes()?;
        let st = self.store()?;
        st.db.persist(PersistMode::SyncAll)?;
        // With writes failing (a full disk) a flush cannot work either:
        // do not make the stop wait for it.
        if self.write_error().is_none() && !st.flush_memtables(std::time::Duration::from_secs(5))? {
            log::warn!(
                "store: memtables not flushed within 5 s; the next start replays the journal"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
