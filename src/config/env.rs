//! Settings from `PUSH_APPSERVER_*` environment variables, for containers
//! and service managers that configure by environment: each variable sets
//! one key, over the config file or the embedded defaults.
//!
//! The name is the key's dotted path in capitals with `_` for the dots:
//! `PUSH_APPSERVER_DATA_DIR` is `data_dir`, `PUSH_APPSERVER_HTTP_LISTEN` is
//! `[http] listen`, `PUSH_APPSERVER_COMPONENT_SECRET` is the first
//! `[[component]]`'s `secret`, `PUSH_APPSERVER_COMPONENT_UNIFIEDPUSH_ENDPOINT_BASE`
//! its `[component.unifiedpush] endpoint_base`, and
//! `PUSH_APPSERVER_APP_APNS_TEAM_ID` is `[app.apns] team_id` (an app name
//! with `_` or `.` cannot be spelt this way). A value is an integer,
//! `true`/`false` or a TOML array when it reads as one, a list for the list
//! keys when it has commas (`types = apns,fcm`), else a string; secrets,
//! names and paths are always strings.

use super::{ConfigContext, ConfigError};

/// The prefix of every setting variable.
pub const PREFIX: &str = "PUSH_APPSERVER_";

/// Variables with the prefix that are not settings: the test scripts'
/// binary under test, and what Kubernetes (and Docker's links) set in
/// every container for a service named `push-appserver`
/// (`PUSH_APPSERVER_SERVICE_HOST`, `PUSH_APPSERVER_PORT_7874_TCP_ADDR`, ...).
fn not_a_setting(var: &str) -> bool {
    var == "PUSH_APPSERVER_BIN"
        || var == "PUSH_APPSERVER_PORT"
        || var.starts_with("PUSH_APPSERVER_PORT_")
        || var.starts_with("PUSH_APPSERVER_SERVICE_")
}

/// Top-level tables; a variable starting with one of them sets a key in it.
const TABLES: &[&str] = &["http", "store", "limits", "metrics", "registrations"];

/// Tables inside a `[[component]]`.
const COMPONENT_TABLES: &[&str] = &["conversations", "siskin", "monal", "push2", "unifiedpush"];

/// Keys whose value is a list; commas separate the items.
const LIST_KEYS: &[&str] = &[
    "types",
    "allow_from",
    "trusted_proxies",
    "status_from",
    "modules",
];

/// Keys that are strings whatever they look like (a secret of digits).
const STRING_KEYS: &[&str] = &[
    "secret",
    "jid",
    "server",
    "listen",
    "topic",
    "team_id",
    "key_id",
    "project_id",
];

/// One setting from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The variable's name, for messages.
    pub var: String,
    /// The key path: tables, then the key (`component` means the first one).
    pub path: Vec<String>,
    /// The value.
    pub value: toml::Value,
}

/// The setting variables among `vars`, sorted by name; a variable that
/// names no place in the configuration is an error.
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
    ctx: &ConfigContext,
) -> Result<Vec<Override>, ConfigError> {
    let mut out = Vec::new();
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        if not_a_setting(&var) {
            continue;
        }
        let path = key_path(&rest.to_ascii_lowercase())
            .ok_or_else(|| ctx.error("", format!("{var} names no setting")))?;
        if let [table] = &path[..] {
            if TABLES.contains(&table.as_str()) || table == "component" || table == "app" {
                return Err(ctx.error(
                    table.clone(),
                    format!(
                        "{var} names a table, not a key: set its keys one by one ({var}_<KEY>)"
                    ),
                ));
            }
        }
        let key = path.last().map(String::as_str).unwrap_or_default();
        out.push(Override {
            value: value(key, &raw),
            var,
            path,
        });
    }
    out.sort_by(|a, b| a.var.cmp(&b.var));
    Ok(out)
}

/// `http_max_connections` -> `["http", "max_connections"]`.
fn key_path(name: &str) -> Option<Vec<String>> {
    let split = |s: &str, tables: &[&str]| -> (Option<String>, String) {
        for t in tables {
            if let Some(k) = s.strip_prefix(t).and_then(|k| k.strip_prefix('_')) {
                return (Some((*t).to_owned()), k.to_owned());
            }
        }
        (None, s.to_owned())
    };
    let mut path = Vec::new();
    let rest = if let Some(k) = name.strip_prefix("component_") {
        path.push("component".to_owned());
        let (table, key) = split(k, COMPONENT_TABLES);
        path.extend(table);
        key
    } else if let Some(k) = name.strip_prefix("app_") {
        let (app, key) = k.split_once('_')?;
        path.extend(["app".to_owned(), app.to_owned()]);
        key.to_owned()
    } else {
        let (table, key) = split(name, TABLES);
        path.extend(table);
        key
    };
    if rest.is_empty() || path.iter().any(String::is_empty) {
        return None;
    }
    path.push(rest);
    Some(path)
}

/// The TOML value a variable's text stands for at `key`.
fn value(key: &str, raw: &str) -> toml::Value {
    let string = || toml::Value::String(raw.to_owned());
    if STRING_KEYS.contains(&key) || key.ends_with("_file") || key.ends_with("_dir") {
        return string();
    }
    if raw.starts_with('[') {
        if let Ok(v) = format!("v = {raw}").parse::<toml::Table>() {
            if let Some(v) = v.get("v") {
                return v.clone();
            }
        }
    }
    if LIST_KEYS.contains(&key) {
        let items = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.to_owned()));
        return toml::Value::Array(items.collect());
    }
    match raw {
        "true" => return toml::Value::Boolean(true),
        "false" => return toml::Value::Boolean(false),
        _ => {}
    }
    match raw.parse::<i64>() {
        Ok(n) => toml::Value::Integer(n),
        Err(_) => string(),
    }
}

/// Sets every override in `doc`, creating the tables (and the first
/// component) it needs; a key that holds a value that is not a table where
/// a table is needed is an error.
pub fn apply(
    doc: &mut toml::Table,
    overrides: &[Override],
    ctx: &ConfigContext,
) -> Result<(), ConfigError> {
    for o in overrides {
        let clash = || ctx.error(o.path.join("."), format!("{} cannot be set here", o.var));
        let mut table = &mut *doc;
        let (key, tables) = o.path.split_last().ok_or_else(clash)?;
        for t in tables {
            let entry = table.entry(t.clone()).or_insert_with(|| match t.as_str() {
                "component" => toml::Value::Array(vec![toml::Value::Table(Default::default())]),
                _ => toml::Value::Table(Default::default()),
            });
            table = match entry {
                toml::Value::Table(t) => t,
                toml::Value::Array(items) => {
                    if items.is_empty() {
                        items.push(toml::Value::Table(Default::default()));
                    }
                    match items.first_mut() {
                        Some(toml::Value::Table(t)) => t,
                        _ => return Err(clash()),
                    }
                }
                _ => return Err(clash()),
            };
        }
        table.insert(key.clone(), o.value.clone());
    }
    Ok(())
}

/// The setting variables of this process; one whose value is not UTF-8
/// is an error naming it, not skipped.
pub fn from_process(ctx: &ConfigContext) -> Result<Vec<Override>, ConfigError> {
    let mut vars = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Ok(k) = k.into_string() else {
            continue;
        };
        if !k.starts_with(PREFIX) {
            continue;
        }
        match v.into_string() {
            Ok(v) => vars.push((k, v)),
            Err(_) if not_a_setting(&k) => {}
            Err(_) => return Err(ctx.error("", format!("{k}: the value is not UTF-8"))),
        }
    }
    overrides(vars, ctx)
}

/// `err` (and the errors after it) with the variable that set its key
/// named, when one did.
pub fn blame(mut err: ConfigError, overrides: &[Override]) -> ConfigError {
    // `component[0].secret` is set by the path `component.secret`.
    let mut key = String::new();
    let mut index = false;
    for c in err.key.chars() {
        match c {
            '[' => index = true,
            ']' => index = false,
            c if !index => key.push(c),
            _ => {}
        }
    }
    let found = overrides.iter().find(|o| {
        let path = o.path.join(".");
        key == path || key.starts_with(&format!("{path}."))
    });
    if let Some(o) = found {
        err.reason.push_str(&format!(" (set by {})", o.var));
    }
    err.more = err.more.into_iter().map(|e| blame(e, overrides)).collect();
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<Override> {
        let v = list.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        overrides(v, &ConfigContext::defaults()).unwrap()
    }

    #[test]
    fn names_map_to_key_paths() {
        let p = |n: &str| key_path(n).map(|p| p.join("."));
        assert_eq!(p("data_dir").as_deref(), Some("data_dir"));
        assert_eq!(
            p("http_max_connections").as_deref(),
            Some("http.max_connections")
        );
        assert_eq!(p("component_secret").as_deref(), Some("component.secret"));
        assert_eq!(
            p("component_unifiedpush_endpoint_base").as_deref(),
            Some("component.unifiedpush.endpoint_base")
        );
        assert_eq!(p("app_apns_team_id").as_deref(), Some("app.apns.team_id"));
        assert_eq!(p("app_apns"), None);
        assert_eq!(p("http_"), None);
    }

    #[test]
    fn values_are_typed_by_how_they_read_and_secrets_stay_strings() {
        let o = vars(&[
            ("PUSH_APPSERVER_HTTP_MAX_CONNECTIONS", "64"),
            ("PUSH_APPSERVER_DEBUGGING", "true"),
            ("PUSH_APPSERVER_COMPONENT_SECRET", "123456"),
            ("PUSH_APPSERVER_COMPONENT_TYPES", "apns, fcm"),
            ("PUSH_APPSERVER_HTTP_TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
            ("HOME", "/root"),
            ("PUSH_APPSERVER_BIN", "/x"),
        ]);
        let got: Vec<(String, String)> = o
            .iter()
            .map(|o| (o.path.join("."), o.value.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("component.secret", "\"123456\""),
                ("component.types", "[\"apns\", \"fcm\"]"),
                ("debugging", "true"),
                ("http.max_connections", "64"),
                ("http.trusted_proxies", "[\"10.0.0.0/8\"]"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn kubernetes_service_variables_are_not_settings() {
        assert!(vars(&[
            ("PUSH_APPSERVER_SERVICE_HOST", "10.0.0.1"),
            ("PUSH_APPSERVER_PORT", "tcp://10.0.0.1:7874"),
            ("PUSH_APPSERVER_PORT_7874_TCP_ADDR", "10.0.0.1"),
        ])
        .is_empty());
    }

    #[test]
    fn a_variable_for_a_whole_table_is_refused() {
        for var in [
            "PUSH_APPSERVER_HTTP",
            "PUSH_APPSERVER_COMPONENT",
            "PUSH_APPSERVER_APP",
        ] {
            let e = overrides(
                [(var.to_owned(), "1".to_owned())],
                &ConfigContext::defaults(),
            )
            .unwrap_err();
            assert!(e.reason.contains("names a table"), "{e}");
        }
    }

    #[test]
    fn an_error_names_the_variable_that_set_its_key() {
        let o = vars(&[("PUSH_APPSERVER_COMPONENT_SERVER", "nohostport")]);
        let e = ConfigContext::defaults().error("component[0].server", "lacks a port");
        assert!(blame(e, &o)
            .reason
            .ends_with("(set by PUSH_APPSERVER_COMPONENT_SERVER)"));
        let e = ConfigContext::defaults().error("http.listen", "bad");
        assert_eq!(blame(e, &o).reason, "bad");
    }

    #[test]
    fn a_variable_that_names_nothing_is_an_error_naming_it() {
        let e = overrides(
            [("PUSH_APPSERVER_APP_X".to_owned(), "1".to_owned())],
            &ConfigContext::defaults(),
        )
        .unwrap_err();
        assert!(e.reason.contains("PUSH_APPSERVER_APP_X"), "{e}");
    }

    #[test]
    fn overrides_replace_keys_and_create_tables_and_the_first_component() {
        let mut doc: toml::Table =
            "data_dir = \"a\"\n[[component]]\njid = \"x\"\n[[component]]\njid = \"y\"\n"
                .parse()
                .unwrap();
        let o = vars(&[
            ("PUSH_APPSERVER_DATA_DIR", "/data"),
            ("PUSH_APPSERVER_COMPONENT_JID", "push.example.org"),
            ("PUSH_APPSERVER_HTTP_LISTEN", "0.0.0.0:7874"),
        ]);
        apply(&mut doc, &o, &ConfigContext::defaults()).unwrap();
        assert_eq!(doc["data_dir"].as_str(), Some("/data"));
        assert_eq!(doc["http"]["listen"].as_str(), Some("0.0.0.0:7874"));
        assert_eq!(
            doc["component"][0]["jid"].as_str(),
            Some("push.example.org")
        );
        assert_eq!(doc["component"][1]["jid"].as_str(), Some("y"));

        let mut empty = toml::Table::new();
        apply(&mut empty, &o[..1], &ConfigContext::defaults()).unwrap();
        assert_eq!(
            empty["component"][0]["jid"].as_str(),
            Some("push.example.org")
        );

        let mut clash: toml::Table = "http = 1".parse().unwrap();
        let e = apply(&mut clash, &o[2..], &ConfigContext::defaults()).unwrap_err();
        assert!(e.reason.contains("PUSH_APPSERVER_HTTP_LISTEN"), "{e}");
    }
}
