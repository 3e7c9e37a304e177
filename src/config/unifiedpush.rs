//! `[component.unifiedpush]`: the UnifiedPush provider a component can be
//! (see docs/unifiedpush.md).

use std::time::Duration;

use serde::Deserialize;

use super::dialects::senders;
use super::int_in;
use crate::settings::{ConfigContext, ConfigError};

/// Validated `[component.unifiedpush]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedPushSettings {
    /// Public base URL endpoints are built on (no trailing `/`): an
    /// endpoint is `<endpoint_base>/up/<token>`.
    pub endpoint_base: String,
    /// How long an endpoint stays valid; clients register again before.
    pub registration_ttl: Duration,
    /// How long a POST waits for the client's answer (then 504).
    pub relay_timeout: Duration,
    /// Requester domains served; empty only with `open_relay`.
    pub allow_from: Vec<String>,
    /// Serves every requester (`open_relay = true`, warned about).
    pub open_relay: bool,
    /// POSTs per minute to one endpoint (bursts of a minute's worth).
    pub posts_per_minute_per_endpoint: u32,
    /// POSTs per minute to the endpoints of one user.
    pub posts_per_minute_per_jid: u32,
    /// POSTs per minute to the endpoints of one registrable domain.
    pub posts_per_minute_per_domain: u32,
    /// Relays waiting for one JID's answer at once.
    pub max_in_flight_per_jid: usize,
    /// Relays waiting for answers at once, in all (each holds an HTTP
    /// connection, so at most half of `http.max_connections`).
    pub max_in_flight: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnifiedPush {
    endpoint_base: Option<String>,
    registration_ttl_secs: Option<i64>,
    relay_timeout_secs: Option<i64>,
    allow_from: Option<Vec<String>>,
    open_relay: Option<bool>,
    posts_per_minute_per_endpoint: Option<i64>,
    posts_per_minute_per_jid: Option<i64>,
    posts_per_minute_per_domain: Option<i64>,
    max_in_flight_per_jid: Option<i64>,
    max_in_flight: Option<i64>,
}

/// The longest `endpoint_base`: endpoints must stay short URLs.
const MAX_BASE: usize = 256;

fn valid_base(base: &str) -> bool {
    let Some(rest) = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    !host.is_empty()
        && base.len() <= MAX_BASE
        && base.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\')
        })
}

impl UnifiedPushSettings {
    /// Validates `[component.unifiedpush]`.
    pub fn from_table(
        key: &str,
        table: toml::Table,
        ctx: &ConfigContext,
    ) -> Result<Self, ConfigError> {
        let raw: RawUnifiedPush = ctx.deserialize(key, table)?;
        let base = raw.endpoint_base.unwrap_or_default();
        let base = base.trim_end_matches('/').to_owned();
        if !valid_base(&base) {
            return Err(ctx.error(
                format!("{key}.endpoint_base"),
                "must be the public http(s) URL this server's HTTP API is reached at, \
                 without query or fragment, e.g. \"https://push.example.org\"",
            ));
        }
        let range = |k: &str, v: Option<i64>, default: i64, min: i64, max: i64| {
            int_in(ctx, &format!("{key}.{k}"), v, default, min, max)
        };
        let ttl = range(
            "registration_ttl_secs",
            raw.registration_ttl_secs,
            86_400,
            1,
            2_592_000,
        )?;
        let timeout = range("relay_timeout_secs", raw.relay_timeout_secs, 10, 1, 120)?;
        let per_endpoint = range(
            "posts_per_minute_per_endpoint",
            raw.posts_per_minute_per_endpoint,
            60,
            1,
            100_000,
        )?;
        let per_jid = range(
            "posts_per_minute_per_jid",
            raw.posts_per_minute_per_jid,
            600,
            1,
            1_000_000,
        )?;
        let per_domain = range(
            "posts_per_minute_per_domain",
            raw.posts_per_minute_per_domain,
            60_000,
            1,
            10_000_000,
        )?;
        let places_per_jid = range(
            "max_in_flight_per_jid",
            raw.max_in_flight_per_jid,
            4,
            1,
            1024,
        )?;
        let in_flight = range("max_in_flight", raw.max_in_flight, 128, 1, 32_768)?;
        let (allow_from, open_relay) = senders(ctx, key, raw.allow_from, raw.open_relay)?;
        Ok(UnifiedPushSettings {
            endpoint_base: base,
            registration_ttl: Duration::from_secs(ttl as u64),
            relay_timeout: Duration::from_secs(timeout as u64),
            allow_from,
            open_relay,
            posts_per_minute_per_endpoint: per_endpoint as u32,
            posts_per_minute_per_jid: per_jid as u32,
            posts_per_minute_per_domain: per_domain as u32,
            max_in_flight_per_jid: places_per_jid as usize,
            max_in_flight: in_flight as usize,
        })
    }

    /// The effective settings as an inline TOML table, for `check-config`.
    pub fn describe(&self) -> String {
        let senders = if self.open_relay {
            "open_relay = true".to_owned()
        } else {
            format!("allow_from = {:?}", self.allow_from)
        };
        format!(
            "{{ endpoint_base = {:?}, registration_ttl_secs = {}, relay_timeout_secs = {}, {senders}, \
             posts_per_minute_per_endpoint = {}, posts_per_minute_per_jid = {}, \
             posts_per_minute_per_domain = {}, max_in_flight_per_jid = {}, max_in_flight = {} }}",
            self.endpoint_base,
            self.registration_ttl.as_secs(),
            self.relay_timeout.as_secs(),
            self.posts_per_minute_per_endpoint,
            self.posts_per_minute_per_jid,
            self.posts_per_minute_per_domain,
            self.max_in_flight_per_jid,
            self.max_in_flight,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UnifiedPushSettings, ConfigError> {
        let ctx = ConfigContext::for_file(&std::env::temp_dir().join("u.toml"));
        UnifiedPushSettings::from_table(
            "component[0].unifiedpush",
            toml::from_str(text).unwrap(),
            &ctx,
        )
    }

    #[test]
    fn needs_a_public_base_and_its_requesters() {
        let ok =
            parse("endpoint_base = \"https://push.example.org/\"\nallow_from = [\"example.org\"]")
                .unwrap();
        assert_eq!(ok.endpoint_base, "https://push.example.org");
        assert_eq!(ok.registration_ttl, Duration::from_secs(86_400));
        assert_eq!(ok.relay_timeout, Duration::from_secs(10));
        assert_eq!(ok.max_in_flight, 128);
        for bad in [
            "",
            "push.example.org",
            "https://",
            "https://x/?a=1",
            "ftp://x",
        ] {
            let e = parse(&format!(
                "endpoint_base = {bad:?}\nallow_from = [\"example.org\"]"
            ))
            .unwrap_err();
            assert_eq!(e.key, "component[0].unifiedpush.endpoint_base", "{bad}");
        }
        let e = parse("endpoint_base = \"https://push.example.org\"").unwrap_err();
        assert_eq!(e.key, "component[0].unifiedpush.allow_from");
        let e = parse(
            "endpoint_base = \"https://p.example\"\nallow_from = [\"example.org\"]\nrelay_timeout_secs = 0",
        )
        .unwrap_err();
        assert_eq!(e.key, "component[0].unifiedpush.relay_timeout_secs");
    }
}
