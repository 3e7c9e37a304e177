//! Registration changes: register and unregister, over XMPP for an owner
//! JID or over HTTP without identity, with the count limits. Each change is
//! one synced batch (record, token index, counts) under the write lock.

use std::time::SystemTime;

use fjall::PersistMode;

use super::counters::{Tally, MAX_PER_TOKEN};
use super::record::{self, Registration, SCHEMA_VERSION};
use super::{
    hex, owner, secret, store, LimitKind, Refusal, RegError, Registered, Registrations, StoreError,
};
use crate::clock::unix_millis;

/// What lets an HTTP registration give an existing node another token or
/// push type: over HTTP nobody has an identity, and the node's secret is
/// the only proof of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenChange<'a> {
    /// The `secret` the request carries, if any.
    pub secret: Option<&'a str>,
    /// `http.open_register`: a request without a secret may still change
    /// the token, as mod_push_appserver let anyone do; the node then gets
    /// a fresh secret, so its old holder loses it.
    pub open: bool,
}

impl Registrations {
    /// Registers a device over HTTP (no identity), or renews it. A node
    /// registered again with the same type and token keeps its secret
    /// (idempotent). Another type or token needs the node's current secret
    /// (then kept) or, with `change.open` and no secret, gives a fresh one;
    /// otherwise it is refused and nothing changes. A node with an owner
    /// is refused. Synced before returning.
    pub fn register(
        &self,
        component: &str,
        push_type: &str,
        node: &str,
        token: &str,
        change: TokenChange<'_>,
        now: SystemTime,
    ) -> Result<Registered, RegError> {
        self.put(
            component,
            push_type,
            node,
            token,
            None,
            None,
            Some(change),
            now,
        )
    }

    /// Registers `owner`'s device `device` (XMPP) at the node derived from
    /// (component, owner, device), or renews it: the same owner and device
    /// keep node and secret and update the token. Synced before returning.
    pub fn register_owned(
        &self,
        component: &str,
        push_type: &str,
        owner: &str,
        device: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<Registered, RegError> {
        let node = owner::derive_node(component, owner, device);
        self.put(
            component,
            push_type,
            &node,
            token,
            Some(owner),
            None,
            None,
            now,
        )
    }

    /// Registers `owner`'s device at `node`, chosen by its dialect, with
    /// what that dialect needs at push time (`None` for v1). The same
    /// owner at the same node keeps its secret and updates the token.
    /// Synced before returning.
    #[allow(clippy::too_many_arguments)]
    pub fn register_at(
        &self,
        component: &str,
        push_type: &str,
        owner: &str,
        node: &str,
        token: &str,
        dialect: Option<super::DialectRecord>,
        now: SystemTime,
    ) -> Result<Registered, RegError> {
        self.put(
            component,
            push_type,
            node,
            token,
            Some(owner),
            dialect,
            None,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        component: &str,
        push_type: &str,
        node: &str,
        token: &str,
        owner: Option<&str>,
        dialect: Option<super::DialectRecord>,
        change: Option<TokenChange<'_>>,
        now: SystemTime,
    ) -> Result<Registered, RegError> {
        let now_ms = unix_millis(now);
        let key = record::reg_key(component, node);
        let _guard = self.lock();
        let st = self.store()?;
        let mut batch = st.db.batch().durability(Some(PersistMode::SyncAll));
        let existing = match st.regs.get(&key).map_err(StoreError::from)? {
            Some(bytes) => Some(store::decode(&bytes)?),
            None => None,
        };
        let fresh = || -> Result<Registration, StoreError> {
            Ok(Registration {
                v: SCHEMA_VERSION,
                component: component.to_owned(),
                push_type: push_type.to_owned(),
                node: node.to_owned(),
                token: token.to_owned(),
                registered_ms: now_ms,
                renewed_ms: now_ms,
                salt: hex(&secret::random_bytes().map_err(StoreError::Key)?),
                owner: owner.map(str::to_owned),
                dialect: dialect.clone(),
                secret_hash: None,
            })
        };
        let new_token = !existing
            .as_ref()
            .is_some_and(|old| old.token == token && old.push_type == push_type);
        if new_token && st.token_uses(push_type, token, MAX_PER_TOKEN)? >= MAX_PER_TOKEN {
            return Err(RegError::Refused(Refusal::Limit(LimitKind::Token)));
        }
        let mut tally = Tally::default();
        let registration = match existing {
            None => {
                if !self.allow_new() {
                    return Err(RegError::Refused(Refusal::Limit(LimitKind::Rate)));
                }
                tally.add(owner, 1);
                fresh()?
            }
            Some(old) => {
                let same_device = match (owner, old.owner.as_deref()) {
                    (Some(new), Some(was)) => new == was,
                    // Over HTTP the token, or else the secret, proves the
                    // device.
                    (None, None) => {
                        let same = old.token == token && old.push_type == push_type;
                        match change.map(|c| (c.secret, c.open)) {
                            _ if same => true,
                            Some((Some(s), _)) if self.verify_secret(&old, s) => true,
                            Some((Some(_), _)) => {
                                return Err(RegError::Refused(Refusal::WrongSecret))
                            }
                            Some((None, true)) => false,
                            _ => return Err(RegError::Refused(Refusal::SecretNeeded)),
                        }
                    }
                    (None, Some(_)) => return Err(RegError::Refused(Refusal::Owned)),
                    // An owner claims a derived node someone made over HTTP
                    // first: it becomes the owner's, with a new secret.
                    (Some(_), None) => false,
                };
                if old.token != token || old.push_type != push_type {
                    batch.remove(
                        &st.tokens,
                        record::token_key(&old.push_type, &old.token, component, node),
                    );
                }
                if same_device {
                    let mut renewed = Registration {
                        v: SCHEMA_VERSION,
                        token: token.to_owned(),
                        push_type: push_type.to_owned(),
                        renewed_ms: now_ms,
                        dialect: dialect.clone(),
                        ..old
                    };
                    // An imported secret cannot be answered (only its hash
                    // is kept): the device gets a fresh one in the reply.
                    if renewed.secret_hash.take().is_some() {
                        renewed.salt = hex(&secret::random_bytes().map_err(StoreError::Key)?);
                    }
                    renewed
                } else {
                    tally.add(old.owner.as_deref(), -1);
                    tally.add(owner, 1);
                    batch.remove(&st.stats, record::stats_key(component, node));
                    fresh()?
                }
            }
        };
        if let Some(limit) = tally.write_into(&st.counters, &mut batch, Some(&self.limits()))? {
            return Err(RegError::Refused(Refusal::Limit(limit)));
        }
        batch.insert(&st.regs, key.clone(), store::encode(&registration));
        batch.insert(
            &st.tokens,
            record::token_key(push_type, token, component, node),
            "",
        );
        self.commit(batch, [key.as_slice()])?;
        let secret = self.secret_of(&registration);
        Ok(Registered {
            registration,
            secret,
        })
    }

    /// Removes a registration over HTTP (no identity): it must exist with
    /// this type and have no owner, and `secret` must be its secret, unless
    /// `secret` is `None` (mod_push_appserver's open unregister, only when the
    /// operator allowed it). Synced.
    pub fn unregister(
        &self,
        component: &str,
        push_type: &str,
        node: &str,
        secret: Option<&str>,
    ) -> Result<Option<Registered>, RegError> {
        let _guard = self.lock();
        let st = self.store()?;
        let Some(r) = st.lookup(component, node)? else {
            return Ok(None);
        };
        if r.push_type != push_type {
            return Ok(None);
        }
        if r.owner.is_some() {
            return Err(RegError::Refused(Refusal::Owned));
        }
        if let Some(given) = secret {
            if !self.verify_secret(&r, given) {
                return Err(RegError::Refused(Refusal::WrongSecret));
            }
        }
        let key = record::reg_key(&r.component, &r.node);
        self.commit(st.remove_batch(&r)?, [key.as_slice()])?;
        // An imported registration's secret is known only when given.
        let secret = match (secret, &r.secret_hash) {
            (Some(given), Some(_)) => given.to_owned(),
            _ => self.secret_of(&r),
        };
        Ok(Some(Registered {
            registration: r,
            secret,
        }))
    }

    /// Removes `owner`'s registration named by its device id, or by its
    /// node, if it exists with this type; anything else is `None`. Synced.
    pub fn unregister_owned(
        &self,
        component: &str,
        push_type: &str,
        owner: &str,
        device_or_node: &str,
    ) -> Result<Option<Registered>, StoreError> {
        let _guard = self.lock();
        let st = self.store()?;
        let derived = owner::derive_node(component, owner, device_or_node);
        let mut found = None;
        for node in [derived.as_str(), device_or_node] {
            if let Some(r) = st.lookup(component, node)? {
                if r.owner.as_deref() == Some(owner) && r.push_type == push_type {
                    found = Some(r);
                    break;
                }
            }
        }
        let Some(r) = found else {
            return Ok(None);
        };
        let key = record::reg_key(&r.component, &r.node);
        self.commit(st.remove_batch(&r)?, [key.as_slice()])?;
        let secret = self.secret_of(&r);
        Ok(Some(Registered {
            registration: r,
            secret,
        }))
    }
}
