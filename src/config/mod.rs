//! Configuration: the TOML file is deserialized into raw structs, then
//! validated into typed [`Settings`]. Everything else takes `Settings`.
//!
//! Option names follow mod_push_appserver's without the `push_appserver_`
//! prefix (`debugging`, `rate_limit`, `apns_push_ttl` becomes
//! `[app.<type>] push_ttl`, ...).

mod dialects;
pub mod env;
mod monal;
mod operating;
mod push2;
mod registrations;
mod show;
mod unifiedpush;
pub mod warnings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The settings vocabulary, re-exported where the settings are composed.
pub use crate::settings::{ConfigContext, ConfigError, Secret};
pub use dialects::{ConversationsSettings, DialectSettings, SiskinPayload, SiskinSettings};
pub use monal::{valid_module, MonalSettings};
pub use operating::MetricsSettings;
pub use push2::Push2Settings;
pub use registrations::RegistrationSettings;
pub use unifiedpush::UnifiedPushSettings;

use crate::providers::ProviderSettings;
use crate::settings::TrustedProxies;

/// The HTTP API's port when `[http] listen` is not set: not 5280, which
/// Prosody and ejabberd, on the very hosts this pairs with, listen on.
/// ("PUSH" on a phone keypad.)
pub const DEFAULT_HTTP_PORT: u16 = 7874;

/// Environment variable holding the component secret for the embedded defaults.
pub const SECRET_ENV: &str = "PUSH_APPSERVER_COMPONENT_SECRET";

/// Validated settings of the whole server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder of the registration store and the server key.
    pub data_dir: PathBuf,
    /// Enables `/settings` and the HTML forms.
    pub debugging: bool,
    /// Minimum seconds between two pushes to one device and priority (the
    /// module's zthrottle distance); 0 turns throttling off.
    pub rate_limit: u32,
    /// Log verbosity.
    pub log_level: log::LevelFilter,
    /// Log line format (`log_format`: plain, or journal/syslog style).
    pub log_format: crate::logging::LogFormat,
    /// Where `/metrics` is served.
    pub metrics: MetricsSettings,
    /// HTTP API settings.
    pub http: HttpSettings,
    /// One entry per component link.
    pub components: Vec<ComponentSettings>,
    /// App profiles by push type name.
    pub apps: BTreeMap<String, ProviderSettings>,
    /// Store sizing.
    pub store: StoreSettings,
    /// Work bounds.
    pub limits: Limits,
    /// Limits per requester JID and domain.
    pub registrations: RegistrationSettings,
    /// True when no config file was given.
    pub from_defaults: bool,
    /// The `PUSH_APPSERVER_*` variables that set keys (names only).
    pub from_environment: Vec<String>,
}

/// HTTP API settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Plain HTTP listen address; `None` disables it.
    pub listen: Option<SocketAddr>,
    /// The old `threads` key was set: it means nothing since the API runs
    /// on the async executor; warned about at start.
    pub threads_ignored: bool,
    /// Requests per second allowed per client address (burst of twice that).
    pub requests_per_second: u32,
    /// New registrations (not renewals) per hour per client address
    /// (IPv6: per /64), in bursts of up to an hour's worth.
    pub new_registrations_per_hour_per_client: u32,
    /// Lets `unregister` work without the node's secret, as in mod_push_appserver:
    /// anyone who knows a node can then remove it.
    pub open_unregister: bool,
    /// Lets `register` give an existing node another token without the
    /// node's secret, as in mod_push_appserver: anyone who knows a node can
    /// then take over its pushes.
    pub open_register: bool,
    /// Open connections at most (plain and TLS together).
    pub max_connections: usize,
    /// Time for a request's head and body to arrive (and the TLS handshake).
    pub request_timeout: Duration,
    /// Time an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Time a client has to take its response.
    pub write_timeout: Duration,
    /// Peers whose `X-Forwarded-For`/`Forwarded` headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// Clients that see the status page and the detailed JSON health
    /// (traffic counts, latest errors, provider lines); others get the
    /// status word only. Loopback by default.
    pub status_from: Vec<crate::settings::Cidr>,
    /// The HTTPS listener, if configured.
    pub tls: Option<HttpTlsSettings>,
}

/// The HTTPS listener of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTlsSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain (re-read when it changes).
    pub cert: PathBuf,
    /// PEM private key (re-read when it changes).
    pub key: PathBuf,
}

/// One XEP-0114 component link.
#[derive(Debug, Clone)]
pub struct ComponentSettings {
    /// The component's JID (a domain).
    pub jid: String,
    /// `host:port` of the XMPP server's component listener.
    pub server: String,
    /// Shared handshake secret.
    pub secret: Secret,
    /// The file the secret was read from, if it came from one.
    pub secret_file: Option<PathBuf>,
    /// Push types this component accepts; each names an app profile.
    pub types: Vec<String>,
    /// Domain the link pings when the server is silent (the XMPP server's).
    pub ping_to: String,
    /// Registration dialects besides v1 (see `docs/dialects.md`).
    pub dialects: DialectSettings,
    /// Monal's stateless dialect (`[component.monal]`); off when `None`.
    pub monal: Option<MonalSettings>,
    /// Push 2.0 (`[component.push2]`); off when `None`.
    pub push2: Option<Push2Settings>,
    /// The UnifiedPush provider (`[component.unifiedpush]`); off when `None`.
    pub unifiedpush: Option<UnifiedPushSettings>,
}

/// Store sizing for small hosts.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Block cache in bytes (`cache_mb`); `None`: sized by the store at
    /// each start (see [`StoreSettings::cache_for`]).
    pub cache_bytes: Option<u64>,
    /// The most an automatically sized block cache takes (`cache_max_mb`).
    pub cache_max_bytes: u64,
    /// Registrations the store holds at most.
    pub max_registrations: u64,
    /// Push outcomes are written to the store at most this often (and at
    /// shutdown), never per push.
    pub outcome_flush_secs: u64,
    /// Decoded registrations kept in memory for pushes (0: none).
    pub record_cache: usize,
}

const MIB: u64 = 1024 * 1024;

impl StoreSettings {
    /// The block cache for the store in `data_dir`: `cache_mb` when set,
    /// else half the store's disk tables, at least 4 MiB and at most
    /// `cache_max_mb` (lookups that miss the cache cost a large store
    /// three times the CPU per push; BENCHMARKS.md). Read at each start.
    pub fn cache_for(&self, data_dir: &Path) -> u64 {
        self.cache_bytes.unwrap_or_else(|| {
            let tables = crate::registrations::table_bytes(data_dir);
            (tables / 2).clamp(4 * MIB, self.cache_max_bytes.max(4 * MIB))
        })
    }
}

/// Bounds on work in flight.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest stanza accepted from the XMPP server, in bytes; larger ones
    /// are skipped (an iq request gets `modify/policy-violation`).
    pub max_stanza_bytes: usize,
    /// Pushes handled at once per component before reading pauses.
    pub max_in_flight: usize,
    /// Seconds a provider may take before the push is answered with a timeout.
    pub push_timeout_secs: u64,
    /// Pushes per second from one sender domain (bursts of twice that):
    /// the XMPP server's domain, or for Monal the user's.
    pub pushes_per_second_per_domain: u32,
    /// Seconds of silence on a component link before a whitespace keepalive.
    pub keepalive_secs: u64,
    /// Seconds without anything from the XMPP server before the link pings it.
    pub ping_after_secs: u64,
    /// Seconds to wait for anything after that ping before reconnecting.
    pub ping_timeout_secs: u64,
    /// Seconds pushes in flight may take to finish at shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    debugging: Option<bool>,
    rate_limit: Option<i64>,
    log_level: Option<String>,
    log_format: Option<String>,
    metrics: Option<operating::RawMetrics>,
    http: Option<RawHttp>,
    component: Option<Vec<RawComponent>>,
    app: Option<BTreeMap<String, toml::Table>>,
    store: Option<RawStore>,
    limits: Option<RawLimits>,
    registrations: Option<registrations::RawRegistrations>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
    threads: Option<i64>,
    requests_per_second: Option<i64>,
    new_registrations_per_hour_per_client: Option<i64>,
    open_unregister: Option<bool>,
    open_register: Option<bool>,
    max_connections: Option<i64>,
    request_timeout_secs: Option<i64>,
    idle_timeout_secs: Option<i64>,
    write_timeout_secs: Option<i64>,
    trusted_proxies: Option<Vec<String>>,
    status_from: Option<Vec<String>>,
    tls_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    jid: String,
    server: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    types: Vec<String>,
    ping_to: Option<String>,
    conversations: Option<toml::Table>,
    siskin: Option<toml::Table>,
    monal: Option<toml::Table>,
    push2: Option<toml::Table>,
    unifiedpush: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    cache_mb: Option<i64>,
    cache_max_mb: Option<i64>,
    max_registrations: Option<i64>,
    outcome_flush_secs: Option<i64>,
    record_cache: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_stanza_bytes: Option<i64>,
    max_in_flight: Option<i64>,
    push_timeout_secs: Option<i64>,
    pushes_per_second_per_domain: Option<i64>,
    keepalive_secs: Option<i64>,
    ping_after_secs: Option<i64>,
    ping_timeout_secs: Option<i64>,
    shutdown_grace_secs: Option<i64>,
}

impl Settings {
    /// Reads and validates a configuration file, with the settings of
    /// `PUSH_APPSERVER_*` variables over it (see [`env`]).
    pub fn load(file: &Path) -> Result<Settings, ConfigError> {
        let ctx = ConfigContext::for_file(file);
        let text = std::fs::read_to_string(file)
            .map_err(|e| ctx.error("", format!("cannot read the file: {e}")))?;
        let overrides = env::from_process(&ctx)?;
        Self::parse_with(&text, &ctx, &overrides, false)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str, ctx: &ConfigContext) -> Result<Settings, ConfigError> {
        Self::parse_with(text, ctx, &[], false)
    }

    /// Parses configuration text, sets `overrides` over it and validates.
    /// An error carries the further errors found after it (see
    /// [`further_errors`]).
    pub fn parse_with(
        text: &str,
        ctx: &ConfigContext,
        overrides: &[env::Override],
        defaults: bool,
    ) -> Result<Settings, ConfigError> {
        Self::parse_once(text, ctx, overrides, defaults, true).map_err(|first| {
            let more = further_errors(text, ctx, overrides, defaults, &first);
            env::blame(first.with_more(more), overrides)
        })
    }

    fn parse_once(
        text: &str,
        ctx: &ConfigContext,
        overrides: &[env::Override],
        defaults: bool,
        lines: bool,
    ) -> Result<Settings, ConfigError> {
        let decode_error = |text: &str, e: toml::de::Error, lines: bool| {
            let (key, at) = match e.span() {
                Some(s) => {
                    let (key, line) = key_at(text, s.start);
                    (
                        key,
                        if lines {
                            format!(" (line {line})")
                        } else {
                            String::new()
                        },
                    )
                }
                None => (String::new(), String::new()),
            };
            let message = crate::settings::suggest::with_suggestion(e.message().trim());
            ctx.error(key, format!("{message}{at}"))
        };
        let raw: RawConfig = if overrides.is_empty() {
            toml::from_str(text).map_err(|e| decode_error(text, e, lines))?
        } else {
            // The variables are set in the parsed document; its errors then
            // refer to the merged text, so they name the key but no line.
            let mut doc: toml::Table = text.parse().map_err(|e| decode_error(text, e, true))?;
            env::apply(&mut doc, overrides, ctx)?;
            let merged = toml::to_string(&doc)
                .map_err(|e| ctx.error("", format!("cannot merge the environment: {e}")))?;
            toml::from_str(&merged).map_err(|e| {
                let mut err = decode_error(&merged, e, false);
                err.reason
                    .push_str(" (the file with the PUSH_APPSERVER_* variables set)");
                err
            })?
        };
        let mut settings = validate(raw, ctx, defaults)?;
        settings.from_environment = overrides.iter().map(|o| o.var.clone()).collect();
        Ok(settings)
    }

    /// The embedded defaults: HTTP on 127.0.0.1:7874, store in
    /// `./push-appserver-data`, component `push.localhost` at 127.0.0.1:5347
    /// with the secret from [`SECRET_ENV`], and the `log` provider for
    /// `apns` and `fcm`; `PUSH_APPSERVER_*` variables set keys over them.
    pub fn defaults() -> Result<Settings, ConfigError> {
        let ctx = ConfigContext::defaults();
        let overrides = env::from_process(&ctx)?;
        Self::parse_with(DEFAULTS, &ctx, &overrides, true)
    }

    /// The component with this JID.
    pub fn component(&self, jid: &str) -> Option<&ComponentSettings> {
        self.components.iter().find(|c| c.jid == jid)
    }
}

/// Errors reported at most per file.
const MAX_ERRORS: usize = 20;

/// The errors after `first`: its key is set aside and the rest checked
/// again, until the file passes, an error repeats or cannot be set aside
/// (a missing required key, a syntax error). An `[app]` table that is
/// wrong is replaced by a log profile, so its push type is not reported
/// as missing as well. Later errors name their key but no line.
fn further_errors(
    text: &str,
    ctx: &ConfigContext,
    overrides: &[env::Override],
    defaults: bool,
    first: &ConfigError,
) -> Vec<ConfigError> {
    let mut more = Vec::new();
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return more;
    };
    if env::apply(&mut doc, overrides, ctx).is_err() {
        return more;
    }
    // An error repeats when its key and reason do (a component may lack
    // several keys, each named at `component`).
    let mut seen = vec![(first.key.clone(), first.reason.clone())];
    if !set_aside(&mut doc, first) {
        return more;
    }
    while more.len() < MAX_ERRORS {
        let Ok(merged) = toml::to_string(&doc) else {
            break;
        };
        match Settings::parse_once(&merged, ctx, &[], defaults, false) {
            Ok(_) => break,
            Err(e) => {
                let id = (e.key.clone(), e.reason.clone());
                if e.key.is_empty() || seen.contains(&id) {
                    break;
                }
                seen.push(id);
                let removed = set_aside(&mut doc, &e);
                more.push(e);
                if !removed {
                    break;
                }
            }
        }
    }
    more
}

/// Sets aside what `err` blames: removes the key at its dotted path
/// (`component[0].server`, `http.listen`, `component.secret` for every
/// component); an `app.<name>` table becomes `provider = "log"`, and a
/// component's required key (wrong or missing) gets a stand-in. False when
/// nothing changed.
fn set_aside(doc: &mut toml::Table, err: &ConfigError) -> bool {
    let key = err.key.as_str();
    // serde names a missing field at the table: `component`.
    if let Some(field) = err
        .reason
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        if key == "component" || key.starts_with("component[") {
            let mut any = false;
            if let Some(toml::Value::Array(items)) = doc.get("component").cloned() {
                for (i, item) in items.iter().enumerate() {
                    let has = matches!(item, toml::Value::Table(t) if t.contains_key(field));
                    if !has {
                        any |= stand_in(doc, i, field);
                    }
                }
            }
            return any;
        }
    }
    let parts: Vec<&str> = key.split('.').collect();
    // Required keys of a component get a stand-in, so their absence is
    // not reported as a second error.
    if let [component, field] = parts[..] {
        if let Some(i) = component
            .strip_prefix("component[")
            .and_then(|i| i.strip_suffix(']'))
            .and_then(|i| i.parse::<usize>().ok())
        {
            if stand_in(doc, i, field) {
                return true;
            }
        }
    }
    if let ["app", name, ..] = parts[..] {
        let mut log = toml::Table::new();
        log.insert("provider".into(), toml::Value::String("log".into()));
        let apps = doc
            .entry("app")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        return match apps {
            toml::Value::Table(t) => t.insert(name.to_owned(), toml::Value::Table(log)).is_some(),
            _ => false,
        };
    }
    fn remove(t: &mut toml::Table, parts: &[&str]) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return false;
        };
        let (name, index) = match first.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (*first, None),
        };
        if rest.is_empty() {
            return t.remove(name).is_some();
        }
        match (t.get_mut(name), index) {
            (Some(toml::Value::Table(inner)), _) => remove(inner, rest),
            (Some(toml::Value::Array(items)), Some(i)) => match items.get_mut(i) {
                Some(toml::Value::Table(inner)) => remove(inner, rest),
                _ => false,
            },
            (Some(toml::Value::Array(items)), None) => {
                let mut any = false;
                for item in items.iter_mut() {
                    if let toml::Value::Table(inner) = item {
                        any |= remove(inner, rest);
                    }
                }
                any
            }
            _ => false,
        }
    }
    remove(doc, &parts)
}

/// Gives component `i` a valid stand-in for its required key `field`.
fn stand_in(doc: &mut toml::Table, i: usize, field: &str) -> bool {
    let apps: Vec<toml::Value> = match doc.get("app") {
        Some(toml::Value::Table(t)) => t.keys().map(|k| toml::Value::String(k.clone())).collect(),
        _ => Vec::new(),
    };
    let value = match field {
        "jid" => toml::Value::String(format!("component{i}.invalid")),
        "server" => toml::Value::String("localhost:5347".into()),
        "secret" => toml::Value::String("stand-in".into()),
        "types" if !apps.is_empty() => toml::Value::Array(apps),
        _ => return false,
    };
    match doc.get_mut("component") {
        Some(toml::Value::Array(items)) => match items.get_mut(i) {
            Some(toml::Value::Table(t)) => {
                t.remove("secret_file");
                t.insert(field.to_owned(), value);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The embedded defaults' text (the secret comes from [`SECRET_ENV`]).
const DEFAULTS: &str = "data_dir = \"push-appserver-data\"\n\
     [http]\n\
     [[component]]\njid = \"push.localhost\"\nserver = \"127.0.0.1:5347\"\n\
     secret = \"\"\ntypes = [\"apns\", \"fcm\"]\n\
     [app.apns]\nprovider = \"log\"\n[app.fcm]\nprovider = \"log\"\n";

/// The dotted key and line number at byte `offset`, found from the nearest
/// `key =` and `[table]` lines, since toml's errors carry only a span.
fn key_at(text: &str, offset: usize) -> (String, usize) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get(line_no - 1).copied().unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim()).unwrap_or("");
    let table = lines[..(line_no - 1).min(lines.len())]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    let full = match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t.to_owned(),
        (None, _) => key.to_owned(),
    };
    (full, line_no)
}

/// `v` (or `default`) if within `min..=max`, else an error naming `key`.
fn int_in(
    ctx: &ConfigContext,
    key: &str,
    v: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        return Err(ctx.error(key, format!("{v} is out of range ({min} to {max})")));
    }
    Ok(v)
}

fn validate(raw: RawConfig, ctx: &ConfigContext, defaults: bool) -> Result<Settings, ConfigError> {
    let data_dir = ctx.path(
        &raw.data_dir
            .unwrap_or_else(|| PathBuf::from("push-appserver-data")),
    );
    if data_dir.as_os_str().is_empty() {
        return Err(ctx.error("data_dir", "must not be empty"));
    }
    let rate_limit = int_in(ctx, "rate_limit", raw.rate_limit, 5, 0, 1000)? as u32;
    let log_level = match raw.log_level.as_deref().unwrap_or("info") {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        other => {
            return Err(ctx.error(
                "log_level",
                format!("unknown level {other:?} (error, warn, info, debug, trace)"),
            ))
        }
    };

    let http = http_settings(raw.http, ctx)?;

    let mut apps = BTreeMap::new();
    for (name, table) in raw.app.unwrap_or_default() {
        let key = format!("app.{name}");
        if !valid_type_name(&name) {
            return Err(ctx.error(&key, "push type names use a-z, 0-9, '-', '_' and '.'"));
        }
        apps.insert(
            name.clone(),
            ProviderSettings::from_table(&name, table, ctx)?,
        );
    }

    let raw_components = raw.component.unwrap_or_default();
    if raw_components.is_empty() {
        return Err(ctx.error("component", "at least one [[component]] is required"));
    }
    let mut components: Vec<ComponentSettings> = Vec::new();
    for (i, c) in raw_components.into_iter().enumerate() {
        let key = |k: &str| format!("component[{i}].{k}");
        if !valid_domain(&c.jid) {
            return Err(ctx.error(key("jid"), format!("{:?} is not a domain JID", c.jid)));
        }
        if components.iter().any(|o| o.jid == c.jid) {
            return Err(ctx.error(key("jid"), format!("{} is configured twice", c.jid)));
        }
        valid_host_port(&c.server).map_err(|r| ctx.error(key("server"), r))?;
        let secret_path = c.secret_file.as_deref().map(|f| ctx.path(f));
        let secret = match (c.secret, c.secret_file) {
            (Some(s), None) => s,
            (None, Some(f)) => {
                let p = ctx.existing_file(&key("secret_file"), &f)?;
                std::fs::read_to_string(&p)
                    .map_err(|e| ctx.error(key("secret_file"), e.to_string()))?
                    .trim()
                    .to_owned()
            }
            (Some(_), Some(_)) => {
                return Err(ctx.error(key("secret"), "set either secret or secret_file, not both"))
            }
            (None, None) => return Err(ctx.error(key("secret"), "missing (or use secret_file)")),
        };
        if secret.is_empty() && !defaults {
            return Err(ctx.error(key("secret"), "must not be empty"));
        }
        if c.types.is_empty() {
            return Err(ctx.error(key("types"), "list at least one push type"));
        }
        for t in &c.types {
            if !apps.contains_key(t) {
                return Err(ctx.error(
                    key("types"),
                    format!("push type {t:?} has no [app.{t}] section"),
                ));
            }
        }
        let ping_to = match c.ping_to {
            Some(d) if valid_domain(&d) => d,
            Some(d) => return Err(ctx.error(key("ping_to"), format!("{d:?} is not a domain"))),
            None => crate::link::liveness::default_ping_to(&c.jid).to_owned(),
        };
        let dialects = dialects::validate(i, c.conversations, c.siskin, &apps, ctx)?;
        let monal = c
            .monal
            .map(|t| MonalSettings::from_table(&key("monal"), t, ctx, &apps))
            .transpose()?;
        let push2 = c
            .push2
            .map(|t| Push2Settings::from_table(&key("push2"), t, ctx, &apps))
            .transpose()?;
        let unifiedpush = c
            .unifiedpush
            .map(|t| UnifiedPushSettings::from_table(&key("unifiedpush"), t, ctx))
            .transpose()?;
        components.push(ComponentSettings {
            jid: c.jid,
            server: c.server,
            secret: Secret::new(secret),
            secret_file: secret_path,
            types: c.types,
            ping_to,
            dialects,
            monal,
            push2,
            unifiedpush,
        });
    }

    let raw_store = raw.store.unwrap_or(RawStore {
        cache_mb: None,
        cache_max_mb: None,
        max_registrations: None,
        outcome_flush_secs: None,
        record_cache: None,
    });
    let store = StoreSettings {
        cache_bytes: match raw_store.cache_mb {
            Some(mb) => Some(int_in(ctx, "store.cache_mb", Some(mb), 4, 1, 4096)? as u64 * MIB),
            None => None,
        },
        cache_max_bytes: int_in(
            ctx,
            "store.cache_max_mb",
            raw_store.cache_max_mb,
            32,
            4,
            4096,
        )? as u64
            * MIB,
        max_registrations: int_in(
            ctx,
            "store.max_registrations",
            raw_store.max_registrations,
            1_000_000,
            1,
            1 << 40,
        )? as u64,
        outcome_flush_secs: int_in(
            ctx,
            "store.outcome_flush_secs",
            raw_store.outcome_flush_secs,
            60,
            1,
            86_400,
        )? as u64,
        record_cache: int_in(
            ctx,
            "store.record_cache",
            raw_store.record_cache,
            crate::registrations::DEFAULT_RECORD_CACHE as i64,
            0,
            1_000_000,
        )? as usize,
    };
    let raw_limits = raw.limits.unwrap_or(RawLimits {
        max_stanza_bytes: None,
        max_in_flight: None,
        push_timeout_secs: None,
        pushes_per_second_per_domain: None,
        keepalive_secs: None,
        ping_after_secs: None,
        ping_timeout_secs: None,
        shutdown_grace_secs: None,
    });
    let limits = Limits {
        max_stanza_bytes: int_in(
            ctx,
            "limits.max_stanza_bytes",
            raw_limits.max_stanza_bytes,
            262_144,
            4096,
            16 << 20,
        )? as usize,
        max_in_flight: int_in(
            ctx,
            "limits.max_in_flight",
            raw_limits.max_in_flight,
            // 4096 let one flooding link queue so many tasks on the shared
            // executor that /health took 0.5-1 s (tests/reliability_flood.rs);
            // 512 still covers the benchmark's window of 256.
            512,
            1,
            1 << 20,
        )? as usize,
        push_timeout_secs: int_in(
            ctx,
            "limits.push_timeout_secs",
            raw_limits.push_timeout_secs,
            30,
            1,
            600,
        )? as u64,
        pushes_per_second_per_domain: int_in(
            ctx,
            "limits.pushes_per_second_per_domain",
            raw_limits.pushes_per_second_per_domain,
            1000,
            1,
            1_000_000,
        )? as u32,
        keepalive_secs: int_in(
            ctx,
            "limits.keepalive_secs",
            raw_limits.keepalive_secs,
            60,
            1,
            3600,
        )? as u64,
        ping_after_secs: int_in(
            ctx,
            "limits.ping_after_secs",
            raw_limits.ping_after_secs,
            30,
            1,
            3600,
        )? as u64,
        ping_timeout_secs: int_in(
            ctx,
            "limits.ping_timeout_secs",
            raw_limits.ping_timeout_secs,
            20,
            1,
            600,
        )? as u64,
        shutdown_grace_secs: int_in(
            ctx,
            "limits.shutdown_grace_secs",
            raw_limits.shutdown_grace_secs,
            5,
            0,
            300,
        )? as u64,
    };

    // A waiting relay holds an HTTP connection: relays may hold at most
    // half of them, so they can never lock the API out.
    for (i, c) in components.iter().enumerate() {
        if let Some(u) = &c.unifiedpush {
            if u.max_in_flight > http.max_connections / 2 {
                return Err(ctx.error(
                    format!("component[{i}].unifiedpush.max_in_flight"),
                    format!(
                        "{} is more than half of http.max_connections ({}): waiting relays \
                         hold HTTP connections",
                        u.max_in_flight, http.max_connections
                    ),
                ));
            }
        }
    }
    Ok(Settings {
        data_dir,
        debugging: raw.debugging.unwrap_or(false),
        rate_limit,
        log_level,
        log_format: operating::log_format(raw.log_format.as_deref(), ctx)?,
        metrics: operating::metrics(raw.metrics, ctx)?,
        http,
        components,
        apps,
        store,
        limits,
        registrations: registrations::validate(raw.registrations, ctx)?,
        from_defaults: defaults,
        from_environment: Vec::new(),
    })
}

fn http_settings(raw: Option<RawHttp>, ctx: &ConfigContext) -> Result<HttpSettings, ConfigError> {
    let raw = raw.unwrap_or_default();
    let address = |key: &str, s: &str| -> Result<SocketAddr, ConfigError> {
        s.parse()
            .map_err(|_| ctx.error(key, format!("{s:?} is not an address like 127.0.0.1:7874")))
    };
    let listen = match raw.listen.as_deref() {
        None => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT))),
        Some("") | Some("off") => None,
        Some(s) => Some(address("http.listen", s)?),
    };
    let secs = |key: &str, v: Option<i64>, default: i64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(
            int_in(ctx, key, v, default, 1, 3600)? as u64
        ))
    };
    let mut proxies = Vec::new();
    for (i, p) in raw.trusted_proxies.unwrap_or_default().iter().enumerate() {
        proxies.push(
            p.parse()
                .map_err(|e: String| ctx.error(format!("http.trusted_proxies[{i}]"), e))?,
        );
    }
    let mut status_from = Vec::new();
    let default_status_from = vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()];
    for (i, c) in raw
        .status_from
        .unwrap_or(default_status_from)
        .iter()
        .enumerate()
    {
        status_from.push(
            c.parse()
                .map_err(|e: String| ctx.error(format!("http.status_from[{i}]"), e))?,
        );
    }
    let tls = match (raw.tls_listen.as_deref(), raw.tls_cert, raw.tls_key) {
        (None | Some("") | Some("off"), None, None) => None,
        (Some(l), Some(cert), Some(key)) if !matches!(l, "" | "off") => {
            let listen = address("http.tls_listen", l)?;
            let cert = ctx.existing_file("http.tls_cert", &cert)?;
            let key = ctx.existing_file("http.tls_key", &key)?;
            crate::h2client::tls::load_certified_key(&cert, &key).map_err(|e| {
                let k = if e.is_key() {
                    "http.tls_key"
                } else {
                    "http.tls_cert"
                };
                ctx.error(k, e.to_string())
            })?;
            Some(HttpTlsSettings { listen, cert, key })
        }
        _ => {
            return Err(ctx.error(
                "http.tls_listen",
                "HTTPS needs tls_listen, tls_cert and tls_key together",
            ))
        }
    };
    Ok(HttpSettings {
        listen,
        threads_ignored: raw.threads.is_some(),
        open_unregister: raw.open_unregister.unwrap_or(false),
        open_register: raw.open_register.unwrap_or(false),
        requests_per_second: int_in(
            ctx,
            "http.requests_per_second",
            raw.requests_per_second,
            20,
            1,
            100_000,
        )? as u32,
        new_registrations_per_hour_per_client: int_in(
            ctx,
            "http.new_registrations_per_hour_per_client",
            raw.new_registrations_per_hour_per_client,
            100,
            1,
            1_000_000,
        )? as u32,
        max_connections: int_in(
            ctx,
            "http.max_connections",
            raw.max_connections,
            512,
            16,
            65536,
        )? as usize,
        request_timeout: secs("http.request_timeout_secs", raw.request_timeout_secs, 5)?,
        idle_timeout: secs("http.idle_timeout_secs", raw.idle_timeout_secs, 5)?,
        write_timeout: secs("http.write_timeout_secs", raw.write_timeout_secs, 10)?,
        trusted_proxies: TrustedProxies(proxies),
        status_from,
        tls,
    })
}

fn valid_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fn valid_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1023
        && !s.contains(['@', '/', ' ', '\'', '"', '<', '>', '&'])
        && !s.starts_with('.')
        && !s.ends_with('.')
}

fn valid_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} lacks a port (host:port)"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?} lacks a host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{port:?} is not a port number")),
    }
}

#[cfg(test)]
mod tests;
