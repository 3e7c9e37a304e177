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
//!
//! Version 3 to 4: the per-domain counts are keyed on the owner's
//! registrable domain instead of its exact domain. No record changes; the
//! counts are recounted from the records, and the old ones removed, in the
//! same synced batch as the new version. A release knowing only version 3
//! would find no count for most domains, and let `max_per_domain` pass.

use std::collections::HashMap;
use std::ops::Bound;

use fjall::{Database, Keyspace, PersistMode};

use super::counters::{self, TOTAL};
use super::record::SCHEMA_VERSION;
use super::store::{decode, encode};
use super::StoreError;

/// Records rewritten per synced batch.
const BATCH: usize = 1000;

/// Brings a store at version `from` to [`SCHEMA_VERSION`]. Returns the
/// number of registrations whose records were rewritten.
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
    log::warn!("migrating the registration store from schema version {from} to {SCHEMA_VERSION}");
    let rewritten = if from < 2 {
        rewrite_records(db, regs)?
    } else {
        0
    };
    let (total, domains) = recount(db, meta, regs, counters)?;
    log::warn!(
        "registration store at schema version {SCHEMA_VERSION}: {total} registration(s), \
         {domains} owner domain(s) counted, {rewritten} record(s) rewritten"
    );
    Ok(rewritten)
}

/// Version 1 to 2: every record rewritten at the current version, in
/// synced batches of [`BATCH`].
fn rewrite_records(db: &Database, regs: &Keyspace) -> Result<u64, StoreError> {
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
    Ok(count)
}

/// Counts the total and the registrations per registrable owner domain
/// afresh from the records, and writes them, with the old per-domain
/// counts removed and the new schema version, in one synced batch: a
/// crash before it leaves the old version, and the next start recounts.
/// Returns (total, owner domains).
fn recount(
    db: &Database,
    meta: &Keyspace,
    regs: &Keyspace,
    counters: &Keyspace,
) -> Result<(u64, usize), StoreError> {
    let mut total = 0u64;
    let mut per_domain: HashMap<Vec<u8>, u64> = HashMap::new();
    for kv in regs.iter() {
        let (_, v) = kv.into_inner()?;
        total += 1;
        if let Some(owner) = decode(&v)?.owner {
            *per_domain.entry(counters::domain_key(&owner)).or_default() += 1;
        }
    }
    let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
    for kv in counters.prefix(counters::DOMAIN_PREFIX) {
        let (k, _) = kv.into_inner()?;
        if !per_domain.contains_key(k.as_ref()) {
            batch.remove(counters, k.to_vec());
        }
    }
    let domains = per_domain.len();
    for (key, count) in per_domain {
        counters::write(&mut batch, counters, &key, count);
    }
    counters::write(&mut batch, counters, TOTAL, total);
    batch.insert(meta, "schema_version", SCHEMA_VERSION.to_string());
    batch.commit()?;
    Ok((total, domains))
}
