//! The `[registrations]` table: limits on what one requester may register.

use serde::Deserialize;

use super::{int_in, ConfigContext, ConfigError};

/// Limits per requester (bare JID of an ad-hoc command) and per requester
/// domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSettings {
    /// Registrations one JID may hold.
    pub max_per_jid: u64,
    /// Registrations all JIDs of one domain may hold.
    pub max_per_domain: u64,
    /// Register/unregister commands per minute per JID.
    pub commands_per_minute_per_jid: u32,
    /// Register/unregister commands per minute per domain.
    pub commands_per_minute_per_domain: u32,
    /// New registrations per minute over the whole server, HTTP and XMPP
    /// (renewals not counted).
    pub new_per_minute: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistrations {
    max_per_jid: Option<i64>,
    max_per_domain: Option<i64>,
    commands_per_minute_per_jid: Option<i64>,
    commands_per_minute_per_domain: Option<i64>,
    new_per_minute: Option<i64>,
}

pub(super) fn validate(
    raw: Option<RawRegistrations>,
    ctx: &ConfigContext,
) -> Result<RegistrationSettings, ConfigError> {
    let raw = raw.unwrap_or_default();
    let key = |k: &str| format!("registrations.{k}");
    Ok(RegistrationSettings {
        max_per_jid: int_in(ctx, &key("max_per_jid"), raw.max_per_jid, 20, 1, 1 << 20)? as u64,
        max_per_domain: int_in(
            ctx,
            &key("max_per_domain"),
            raw.max_per_domain,
            10_000,
            1,
            1 << 32,
        )? as u64,
        commands_per_minute_per_jid: int_in(
            ctx,
            &key("commands_per_minute_per_jid"),
            raw.commands_per_minute_per_jid,
            30,
            1,
            1 << 20,
        )? as u32,
        commands_per_minute_per_domain: int_in(
            ctx,
            &key("commands_per_minute_per_domain"),
            raw.commands_per_minute_per_domain,
            600,
            1,
            1 << 24,
        )? as u32,
        new_per_minute: int_in(
            ctx,
            &key("new_per_minute"),
            raw.new_per_minute,
            600,
            1,
            1 << 24,
        )? as u32,
    })
}
