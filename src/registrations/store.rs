//! The fjall engine and its keyspaces, opened together so the whole set
//! can be closed and reopened as one (see `Registrations::reopen`).

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};

use super::counters::Tally;
use super::migrate;
use super::record::{self, Registration, SCHEMA_VERSION};
use super::StoreError;

/// Largest memtable of each keyspace before it is flushed to disk.
const MEMTABLE_BYTES: u64 = 1024 * 1024;

/// The open engine.
pub(super) struct Store {
    pub(super) db: Database,
    pub(super) regs: Keyspace,
    pub(super) tokens: Keyspace,
    pub(super) stats: Keyspace,
    pub(super) counters: Keyspace,
}

/// fjall writes (and syncs) its version marker last when it creates a
/// database, and refuses to create one over the files of an attempt that
/// never got that far (`AlreadyExists`): a crash during the very first
/// start would keep the server from ever starting again. Such a store dir
/// cannot hold a registration (nothing is written before the open
/// returns), so it is moved aside and a fresh store is created.
fn set_aside_unfinished(path: &Path) -> Result<(), StoreError> {
    let finished = match std::fs::metadata(path.join("version")) {
        Ok(marker) => marker.len() > 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => !path.exists(),
        Err(e) => return Err(StoreError::Io(e)),
    };
    if finished {
        return Ok(());
    }
    let aside = path.with_file_name(format!(
        "store.unfinished-{}",
        crate::clock::unix_millis(std::time::SystemTime::now())
    ));
    log::warn!(
        "{} was left unfinished by a crash while it was created; moved to {}",
        path.display(),
        aside.display()
    );
    std::fs::rename(path, &aside).map_err(StoreError::Io)
}

/// Syncs every file and directory in the data dir (down to `depth`
/// levels) before the store is used. A crash can leave files fjall wrote,
/// or their names, only in the page cache, and fjall's recovery at the next
/// start does not sync them again: a power loss after that start could
/// take its version marker (a store that cannot be opened) and with it
/// every registration acknowledged since. Found by the power-loss test.
/// Files that vanish meanwhile are skipped.
fn sync_tree(path: &Path, depth: u32) -> std::io::Result<()> {
    let skip_gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() && depth > 0 {
        for entry in std::fs::read_dir(path)? {
            skip_gone(sync_tree(&entry?.path(), depth - 1))?;
        }
    }
    if meta.is_dir() || meta.is_file() {
        skip_gone(std::fs::File::open(path).and_then(|f| f.sync_all()))?;
    }
    Ok(())
}

/// Bytes of the store's disk tables under `dir` (0 for none): what an
/// automatically sized block cache is measured against. Bounded by the
/// engine's few dozen files.
pub fn table_bytes(dir: &Path) -> u64 {
    let Ok(keyspaces) = std::fs::read_dir(dir.join("store").join("keyspaces")) else {
        return 0;
    };
    keyspaces
        .flatten()
        .filter_map(|k| std::fs::read_dir(k.path().join("tables")).ok())
        .flat_map(|tables| tables.flatten())
        .filter_map(|t| t.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Debug builds only: a test makes the read of one node take 2 s (a
/// slow disk) by naming it in `PA_TEST_SLOW_STORE_READ`. Release builds
/// have no such hook.
#[cfg(debug_assertions)]
fn slow_read_for_tests(node: &str) {
    if std::env::var_os("PA_TEST_SLOW_STORE_READ").is_some_and(|n| n == node) {
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// Read access to the open engine for one operation.
pub(super) struct StoreGuard<'a>(pub(super) std::sync::RwLockReadGuard<'a, Option<Store>>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        // `Registrations::store` only builds a guard around `Some`.
        self.0.as_ref().expect("guard holds an open store")
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Registration, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn encode(r: &Registration) -> Vec<u8> {
    serde_json::to_vec(r).expect("registration serializes")
}

impl Store {
    /// Opens the engine in `dir/store`, checking the schema version.
    pub(super) fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        sync_tree(dir, 6).map_err(StoreError::Io)?;
        set_aside_unfinished(&dir.join("store"))?;
        let db = Database::builder(dir.join("store"))
            .cache_size(cache_bytes)
            .worker_threads(1)
            .max_journaling_size(64 * 1024 * 1024)
            .open()?;
        // 1 MiB memtables (not 4): five keyspaces each filling its own up
        // to the limit before a flush to disk came to ~9 MiB more RSS
        // over 200,000 pushes on the real path (issue 9).
        let opts = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
        let meta = db.keyspace("meta", opts)?;
        let regs = db.keyspace("registrations", opts)?;
        let counters = db.keyspace("counters", opts)?;
        match meta.get("schema_version")? {
            Some(v) => {
                let v = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or_else(|| StoreError::Corrupt("schema_version".into()))?;
                if v > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew(v));
                }
                migrate::run(&db, &meta, &regs, &counters, v)?;
            }
            None => {
                meta.insert("schema_version", SCHEMA_VERSION.to_string())?;
                db.persist(PersistMode::SyncAll)?;
            }
        }
        Ok(Store {
            regs,
            tokens: db.keyspace("token_index", opts)?,
            stats: db.keyspace("push_stats", opts)?,
            counters,
            db,
        })
    }

    /// Writes every keyspace's memtable into a disk table so that the
    /// next start replays nothing into memory: fjall reads its active
    /// journal at every open (up to 64 MB, its rotation) and keeps in
    /// memtables whatever is not yet in a disk table, which after a busy
    /// run was tens of MiB of idle memory and most of the open's time.
    /// Waits at most `limit` for the flushes (a full disk must not hang a
    /// shutdown); whatever is not flushed is replayed as before.
    pub(super) fn flush_memtables(&self, limit: std::time::Duration) -> Result<bool, StoreError> {
        let meta = self.db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let all = [&meta, &self.regs, &self.tokens, &self.stats, &self.counters];
        for ks in all {
            ks.rotate_memtable()?;
        }
        let deadline = std::time::Instant::now() + limit;
        // A flush leaves fjall's queue when a worker takes it, before its
        // table is written: the sealed memtables are what is still only
        // in memory. Waiting for the queue alone let the process exit
        // mid-flush, so no stop ever flushed anything.
        while self.db.outstanding_flushes() > 0 || all.iter().any(|k| k.sealed_memtable_count() > 0)
        {
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(true)
    }

    /// Bytes held in memtables (not yet in disk tables), all keyspaces.
    pub(super) fn in_memory(&self) -> u64 {
        self.db.write_buffer_size()
    }

    /// The registration of `node` at `component`.
    pub(super) fn lookup(
        &self,
        component: &str,
        node: &str,
    ) -> Result<Option<Registration>, StoreError> {
        #[cfg(debug_assertions)]
        slow_read_for_tests(node);
        match self.regs.get(record::reg_key(component, node))? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every registration using this (type, token), through the index.
    pub(super) fn lookup_token(
        &self,
        push_type: &str,
        token: &str,
    ) -> Result<Vec<Registration>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tokens.prefix(record::token_prefix(push_type, token)) {
            let k = kv.key()?;
            let parts = record::split_key(&k);
            if let [_, _, component, node] = parts.as_slice() {
                if let Some(r) = self.lookup(component, node)? {
                    if r.token == token && r.push_type == push_type {
                        out.push(r);
                    }
                }
            }
        }
        Ok(out)
    }

    /// How many registrations use (type, token), counted up to `at_most`
    /// from the index alone.
    pub(super) fn token_uses(
        &self,
        push_type: &str,
        token: &str,
        at_most: usize,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.tokens.prefix(record::token_prefix(push_type, token)) {
            kv.key()?;
            n += 1;
            if n >= at_most {
                break;
            }
        }
        Ok(n)
    }

    /// A synced batch removing `r`, its index entry and its push stats,
    /// and counting it out.
    pub(super) fn remove_batch(&self, r: &Registration) -> Result<OwnedWriteBatch, StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.remove(&self.regs, record::reg_key(&r.component, &r.node));
        batch.remove(
            &self.tokens,
            record::token_key(&r.push_type, &r.token, &r.component, &r.node),
        );
        batch.remove(&self.stats, record::stats_key(&r.component, &r.node));
        let mut tally = Tally::default();
        tally.add(r.owner.as_deref(), -1);
        tally.write_into(&self.counters, &mut batch, None)?;
        Ok(batch)
    }
}
