//! The reliability campaign in its reduced form (RELIABILITY.md): crashes
//! and power loss, floods, provider outages, XMPP server restarts, secrets
//! in logs. `PUSH_RELIABILITY_FULL=1` runs the long forms
//! (`scripts/reliability`).

#[path = "../support/mod.rs"]
mod support;

mod durability;
mod flood;
mod outage;
mod restarts;
mod secrets;
mod stall;
