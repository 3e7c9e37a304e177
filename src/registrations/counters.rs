//! Exact registration counts per owner JID, per owner's registrable domain
//! (subdomains share one) and in total,
//! in the `counters` keyspace. Every change is written in the same synced
//! batch as the registrations it counts, under the store's write lock, so
//! a count can never drift from the records, crash or not.

use fjall::{Keyspace, OwnedWriteBatch};

use super::owner::domain_of;
use super::StoreError;
use crate::domains::registrable_domain;

/// Key of the count of every registration (all components).
pub(super) const TOTAL: &[u8] = b"total";

/// Count limits applied when a registration is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountLimits {
    /// Registrations per owner JID.
    pub per_jid: u64,
    /// Registrations per owner domain.
    pub per_domain: u64,
    /// Registrations in the whole store.
    pub total: u64,
    /// New registrations per minute over the whole server (renewals are
    /// not counted): a flood from many addresses or JIDs costs the
    /// flooders, not the disk.
    pub new_per_minute: u32,
}

impl Default for CountLimits {
    fn default() -> Self {
        CountLimits {
            per_jid: 20,
            per_domain: 10_000,
            total: 1_000_000,
            new_per_minute: 600,
        }
    }
}

/// Which count limit refused a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The requester's JID has `max_per_jid` registrations.
    Jid,
    /// The requester's domain has `max_per_domain` registrations.
    Domain,
    /// The store holds `store.max_registrations`.
    Total,
    /// `registrations.new_per_minute` new registrations were made lately.
    Rate,
    /// [`MAX_PER_TOKEN`] registrations use this device token already.
    Token,
    /// The HTTP client's address (IPv6: its /64) made
    /// `http.new_registrations_per_hour_per_client` new registrations
    /// lately.
    Client,
}

/// Registrations one device token (of one push type) may serve: a phone
/// with several accounts registers its token once per account. Without
/// the bound, every lookup and dead-token removal of a token would cost
/// as many registrations as anyone made with it.
pub const MAX_PER_TOKEN: usize = 32;

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Jid => "too many registrations for this JID",
            LimitKind::Domain => "too many registrations for this domain",
            LimitKind::Total => "the registration store is full",
            LimitKind::Rate => "too many new registrations on this server; try again later",
            LimitKind::Token => "too many registrations for this device token",
            LimitKind::Client => "too many new registrations from this address; try again later",
        })
    }
}

fn jid_key(owner: &str) -> Vec<u8> {
    [b"jid\0".as_slice(), owner.as_bytes()].concat()
}

/// Prefix of the per-domain counts.
pub(super) const DOMAIN_PREFIX: &[u8] = b"domain\0";

/// Key of the count of `owner`'s registrable domain (since schema version
/// 4; before it, of its exact domain).
pub(super) fn domain_key(owner: &str) -> Vec<u8> {
    [
        DOMAIN_PREFIX,
        registrable_domain(domain_of(owner)).as_bytes(),
    ]
    .concat()
}

/// The count stored under `key` (0 when absent).
pub(super) fn read(counters: &Keyspace, key: &[u8]) -> Result<u64, StoreError> {
    match counters.get(key)? {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt(format!("counter {}", String::from_utf8_lossy(key)))),
    }
}

/// Writes `value` under `key` into `batch` (absent when 0).
pub(super) fn write(batch: &mut OwnedWriteBatch, counters: &Keyspace, key: &[u8], value: u64) {
    if value == 0 {
        batch.remove(counters, key.to_vec());
    } else {
        batch.insert(counters, key.to_vec(), value.to_be_bytes().to_vec());
    }
}

/// Count changes of one write, merged by key.
#[derive(Debug, Default)]
pub(super) struct Tally(Vec<(Vec<u8>, i64, LimitKind)>);

impl Tally {
    /// Counts a registration of `owner` as added (`+1`) or removed (`-1`).
    pub(super) fn add(&mut self, owner: Option<&str>, delta: i64) {
        self.bump(TOTAL.to_vec(), delta, LimitKind::Total);
        if let Some(o) = owner {
            self.bump(jid_key(o), delta, LimitKind::Jid);
            self.bump(domain_key(o), delta, LimitKind::Domain);
        }
    }

    fn bump(&mut self, key: Vec<u8>, delta: i64, kind: LimitKind) {
        match self.0.iter_mut().find(|(k, _, _)| *k == key) {
            Some(entry) => entry.1 += delta,
            None => self.0.push((key, delta, kind)),
        }
    }

    /// Adds the new counts to `batch`; with `limits`, writes nothing and
    /// returns the limit when a count that grows would pass it.
    pub(super) fn write_into(
        &self,
        counters: &Keyspace,
        batch: &mut OwnedWriteBatch,
        limits: Option<&CountLimits>,
    ) -> Result<Option<LimitKind>, StoreError> {
        let mut values = Vec::with_capacity(self.0.len());
        for (key, delta, kind) in &self.0 {
            let now = read(counters, key)?;
            let next = now.saturating_add_signed(*delta);
            if let Some(l) = limits {
                let max = match kind {
                    LimitKind::Jid => l.per_jid,
                    LimitKind::Domain => l.per_domain,
                    LimitKind::Total => l.total,
                    // Not a count: checked where a registration is added.
                    LimitKind::Rate | LimitKind::Token | LimitKind::Client => u64::MAX,
                };
                if *delta > 0 && next > max {
                    return Ok(Some(*kind));
                }
            }
            values.push((key, next));
        }
        for (key, value) in values {
            write(batch, counters, key, value);
        }
        Ok(None)
    }
}

/// The counts of one owner: (its JID, its domain).
pub(super) fn of_owner(counters: &Keyspace, owner: &str) -> Result<(u64, u64), StoreError> {
    Ok((
        read(counters, &jid_key(owner))?,
        read(counters, &domain_key(owner))?,
    ))
}
