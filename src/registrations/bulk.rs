//! Many new registrations in one synced batch, for filling a store fast:
//! the footprint benchmark (`examples/footprint.rs`) writes a million
//! devices this way in seconds instead of a million fsyncs.

use std::time::SystemTime;

use fjall::PersistMode;

use super::counters::Tally;
use super::record::{self, Registration, SCHEMA_VERSION};
use super::{hex, owner, secret, store, Registered, Registrations, StoreError};
use crate::clock::unix_millis;

/// One device to register: its owner's bare JID, device id and token.
#[derive(Debug, Clone, Copy)]
pub struct NewDevice<'a> {
    /// Bare JID (lowercase) of the owner, as over XMPP.
    pub owner: &'a str,
    /// Device id (the command's `node` field).
    pub device: &'a str,
    /// Provider token.
    pub token: &'a str,
}

impl Registrations {
    /// Registers `devices` as over XMPP (`register_owned`), all in one
    /// synced batch with exact counts. Devices whose node already exists
    /// are left alone and not returned. The count limits are not applied:
    /// this is the operator filling the store, not a requester. Keep
    /// batches to about a thousand devices (counts are merged linearly).
    pub fn register_owned_batch(
        &self,
        component: &str,
        push_type: &str,
        devices: &[NewDevice<'_>],
        now: SystemTime,
    ) -> Result<Vec<Registered>, StoreError> {
        let now_ms = unix_millis(now);
        let _guard = self.lock();
        let st = self.store()?;
        let mut batch = st.db.batch().durability(Some(PersistMode::SyncAll));
        let mut tally = Tally::default();
        let mut out = Vec::with_capacity(devices.len());
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::with_capacity(devices.len());
        for d in devices {
            let node = owner::derive_node(component, d.owner, d.device);
            let key = record::reg_key(component, &node);
            // A device listed twice in one batch is registered once.
            if st.regs.get(&key)?.is_some() || !seen.insert(node.clone()) {
                continue;
            }
            let registration = Registration {
                v: SCHEMA_VERSION,
                component: component.to_owned(),
                push_type: push_type.to_owned(),
                token: d.token.to_owned(),
                registered_ms: now_ms,
                renewed_ms: now_ms,
                salt: hex(&secret::random_bytes().map_err(StoreError::Key)?),
                owner: Some(d.owner.to_owned()),
                node,
                dialect: None,
                secret_hash: None,
            };
            tally.add(Some(d.owner), 1);
            batch.insert(&st.regs, key.clone(), store::encode(&registration));
            keys.push(key);
            batch.insert(
                &st.tokens,
                record::token_key(push_type, d.token, component, &registration.node),
                "",
            );
            let secret = self.secret_of(&registration);
            out.push(Registered {
                registration,
                secret,
            });
        }
        tally.write_into(&st.counters, &mut batch, None)?;
        self.commit(batch, keys.iter().map(Vec::as_slice))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_batch_registers_new_devices_once_with_exact_counts() {
        let dir = std::env::temp_dir().join(format!("pa-reg-bulk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Registrations::open(&dir, 1 << 20).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let dev = |owner, device, token| NewDevice {
            owner,
            device,
            token,
        };
        let batch = [
            dev("a@x.org", "d1", "t1"),
            dev("a@x.org", "d2", "t2"),
            dev("b@y.org", "d1", "t3"),
            dev("a@x.org", "d1", "t1"), // listed twice: registered once
        ];
        let done = s
            .register_owned_batch("push.x", "fcm", &batch, now)
            .unwrap();
        assert_eq!(done.len(), 3);
        assert_eq!(s.count().unwrap(), 3);
        assert_eq!(s.count_of_owner("a@x.org").unwrap(), (2, 2));
        assert_eq!(s.count_of_owner("b@y.org").unwrap(), (1, 1));
        // The same node and secret as one registration over XMPP would get.
        let r = &done[0];
        assert_eq!(
            r.registration.node,
            owner::derive_node("push.x", "a@x.org", "d1")
        );
        let found = s.lookup("push.x", &r.registration.node).unwrap().unwrap();
        assert!(s.verify_secret(&found, &r.secret));
        assert_eq!(s.lookup_token("fcm", "t3").unwrap().len(), 1);
        let again = s
            .register_owned("push.x", "fcm", "a@x.org", "d1", "t1", now)
            .unwrap();
        assert_eq!(again.secret, r.secret);
        // Existing nodes are left alone.
        let more = [dev("a@x.org", "d2", "t9"), dev("c@z.org", "d1", "t4")];
        let done = s.register_owned_batch("push.x", "fcm", &more, now).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(s.count().unwrap(), 4);
        assert!(s.lookup_token("fcm", "t9").unwrap().is_empty());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
