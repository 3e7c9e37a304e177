//! Imports registrations made elsewhere (mod_push_appserver's store) with
//! the node, token, type, timestamps and secret the device already holds.
//! The secret is kept only as a keyed hash (`Registration::secret_hash`).
//! Imported registrations have no owner, like HTTP ones: the module let any
//! JID and any HTTP client use any node, so there is no owner to recover.
//!
//! Idempotent: a node that already exists is never overwritten, so a second
//! run writes nothing. Each call is one synced batch under the write lock.

use std::collections::HashSet;

use fjall::PersistMode;

use super::counters::{self, Tally, TOTAL};
use super::record::{self, PushStats, Registration, SCHEMA_VERSION};
use super::{hex, secret, store, LimitKind, Registrations, StoreError};

/// One registration to import. `secret` is the plain secret the device
/// holds; only its keyed hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItem {
    /// Push type (an app profile of this server).
    pub push_type: String,
    /// The node the device publishes to.
    pub node: String,
    /// Provider token.
    pub token: String,
    /// The secret the device holds.
    pub secret: String,
    /// First registration, ms since the epoch.
    pub registered_ms: u64,
    /// Latest renewal, ms since the epoch.
    pub renewed_ms: u64,
    /// Latest push outcomes.
    pub stats: PushStats,
}

/// What happened to one [`ImportItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written.
    Imported,
    /// The same registration was imported before (same type, token and
    /// secret): nothing written.
    AlreadyImported,
    /// The node exists with other data (the device registered here since,
    /// or another import); kept as it is.
    Exists,
    /// A count limit is reached.
    Limit(LimitKind),
}

impl Registrations {
    /// Imports `items` at `component` in one synced batch; one outcome per
    /// item, in order. Items must be checked (`check_field`) by the caller.
    pub fn import(
        &self,
        component: &str,
        items: &[ImportItem],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let _guard = self.lock();
        let st = self.store()?;
        let mut batch = st.db.batch().durability(Some(PersistMode::SyncAll));
        let mut room = self
            .limits()
            .total
            .saturating_sub(counters::read(&st.counters, TOTAL)?);
        let mut seen = HashSet::new();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut added = 0i64;
        let mut keys = Vec::new();
        for item in items {
            if !seen.insert(item.node.as_str()) {
                // Two files naming the same node (e.g. `A.dat` and `%41.dat`).
                outcomes.push(ImportOutcome::Exists);
                continue;
            }
            if let Some(old) = st.lookup(component, &item.node)? {
                let same = old.push_type == item.push_type
                    && old.token == item.token
                    && old.secret_hash.as_deref().is_some_and(|h| {
                        self.key
                            .verify_imported(component, &item.node, h, &item.secret)
                    });
                outcomes.push(if same {
                    ImportOutcome::AlreadyImported
                } else {
                    ImportOutcome::Exists
                });
                continue;
            }
            if room == 0 {
                outcomes.push(ImportOutcome::Limit(LimitKind::Total));
                continue;
            }
            room -= 1;
            let r = Registration {
                v: SCHEMA_VERSION,
                component: component.to_owned(),
                push_type: item.push_type.clone(),
                node: item.node.clone(),
                token: item.token.clone(),
                registered_ms: item.registered_ms,
                renewed_ms: item.renewed_ms.max(item.registered_ms),
                // Unused while `secret_hash` is set; the fresh secret after
                // the device registers again is derived from a new salt.
                salt: hex(&secret::random_bytes().map_err(StoreError::Key)?),
                owner: None,
                dialect: None,
                secret_hash: Some(self.key.imported_hash(component, &item.node, &item.secret)),
            };
            let key = record::reg_key(component, &item.node);
            batch.insert(&st.regs, key.clone(), store::encode(&r));
            keys.push(key);
            batch.insert(
                &st.tokens,
                record::token_key(&r.push_type, &r.token, component, &r.node),
                "",
            );
            if item.stats != PushStats::default() {
                let stats = serde_json::to_vec(&item.stats).map_err(|e| {
                    StoreError::Corrupt(format!("push stats do not serialize: {e}"))
                })?;
                batch.insert(&st.stats, record::stats_key(component, &r.node), stats);
            }
            added += 1;
            outcomes.push(ImportOutcome::Imported);
        }
        if added > 0 {
            let mut tally = Tally::default();
            tally.add(None, added);
            tally.write_into(&st.counters, &mut batch, None)?;
            self.commit(batch, keys.iter().map(Vec::as_slice))?;
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests;
