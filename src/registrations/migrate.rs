//! Schema migrations, run when the store opens, before anything else uses
//! it.
//!
//! Version 1 to 2: records gain an optional `owner` (absent for every old
//! record: they were made before owners existed) and the `counters`
//! keyspace appears. Each record is rewritten at version 2 in synced
//! batches, then the total is counted into `counters` and the new schema
//! version written, together, in one last synced batch. A crash at any
//! point leaves version 1 in `meta`, and the next start runs the whole
//! migration again: rewriting a record twice is harmless and the total is
//! counted afresh, not added to. Node, component and salt are untouched,
//! so every secret the clients hold keeps verifying.
//!
//! Version 2 to 3: records may gain an optional `secret_hash` (only
//! imports write it), so no record changes: only the version is written.
//! Its point is that a release knowing only version 2 refuses the store
//! instead of failing every imported device's pushes.

use std::ops::Bound;

use fjall::{Database, Keyspace, PersistMode};

use super::counters::{self, TOTAL};
use super::record::SCHEMA_VERSION;
use super::store::{decode, encode};
use super::StoreError;

/// Records rewritten per synced batch.
const BATCH: usize = 1000;

/// Brings a store at version `from` to [`SCHEMA_VERSION`]. Returns the
/// number of registrations migrated.
pub(super) fn run(
    db: &Database,
    meta: &Keyspace,
    regs: &Keyspace,
    counters: &Keyspace,
    from: u32,
) -> Result<u64, StoreError> {
    if from >= SCHEMA_VERSION {
        return Ok(0);
    }
    if from == 2 {
        meta.insert("schema_version", SCHEMA_VERSION.to_string())?;
        db.persist(PersistMode::SyncAll)?;
        log::info!("registration store: schema version 2 to {SCHEMA_VERSION} (no record changes)");
        return Ok(0);
    }
    log::warn!("migrating the registration store from schema version {from} to {SCHEMA_VERSION}");
    let mut count = 0u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let lower = match &after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut chunk = Vec::with_capacity(BATCH);
        for kv in regs
            .range::<Vec<u8>, _>((lower, Bound::Unbounded))
            .take(BATCH)
        {
            let (k, v) = kv.into_inner()?;
            chunk.push((k.to_vec(), v));
        }
        let Some((last, _)) = chunk.last() else {
            break;
        };
        after = Some(last.clone());
        let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
        for (k, v) in &chunk {
            let mut r = decode(v)?;
            r.v = SCHEMA_VERSION;
            batch.insert(regs, k.clone(), encode(&r));
        }
        batch.commit()?;
        count += chunk.len() as u64;
    }
    let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
    counters::write(&mut batch, counters, TOTAL, count);
    batch.insert(meta, "schema_version", SCHEMA_VERSION.to_string());
    batch.commit()?;
    log::warn!("migrated {count} registration(s) to schema version {SCHEMA_VERSION}");
    Ok(count)
}
