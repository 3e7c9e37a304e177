//! The operator-facing settings: the `[metrics]` table and `log_format`.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigContext, ConfigError};
use crate::logging::LogFormat;

/// Where `/metrics` is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Its own plain-HTTP listener; `None` serves it on the HTTP API.
    pub listen: Option<SocketAddr>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    enabled: Option<bool>,
    listen: Option<String>,
}

pub(super) fn metrics(
    raw: Option<RawMetrics>,
    ctx: &ConfigContext,
) -> Result<MetricsSettings, ConfigError> {
    let raw = raw.unwrap_or_default();
    let listen = match raw.listen.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ctx.error(
                "metrics.listen",
                format!("{s:?} is not an address like 127.0.0.1:9090 (\"\": on the HTTP API)"),
            )
        })?),
    };
    Ok(MetricsSettings {
        enabled: raw.enabled.unwrap_or(true),
        listen,
    })
}

pub(super) fn log_format(raw: Option<&str>, ctx: &ConfigContext) -> Result<LogFormat, ConfigError> {
    match raw.unwrap_or("auto") {
        "auto" => Ok(LogFormat::detect()),
        "plain" => Ok(LogFormat::Plain),
        "journal" => Ok(LogFormat::Journal),
        other => Err(ctx.error(
            "log_format",
            format!("unknown format {other:?} (auto, plain, journal)"),
        )),
    }
}
