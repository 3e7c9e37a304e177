use super::*;

fn parse(text: &str) -> Result<Settings, ConfigError> {
    Settings::parse(text, &ConfigContext::for_file(Path::new("/etc/push.toml")))
}

const MINIMAL: &str = r#"
[[component]]
jid = "push.example.org"
server = "127.0.0.1:5347"
secret = "s3cret"
types = ["fcm"]
[app.fcm]
provider = "log"
"#;

#[test]
fn minimal_file_gets_the_module_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert!(!s.debugging);
    assert_eq!(s.rate_limit, 5);
    assert_eq!(s.http.listen, Some("127.0.0.1:7874".parse().unwrap()));
    assert_eq!(s.components[0].types, vec!["fcm".to_owned()]);
    assert_eq!(s.limits.max_stanza_bytes, 262_144);
    assert_eq!(
        (
            s.limits.ping_after_secs,
            s.limits.ping_timeout_secs,
            s.limits.shutdown_grace_secs
        ),
        (30, 20, 5)
    );
    assert_eq!(s.components[0].ping_to, "example.org");
}

#[test]
fn link_limits_and_ping_to() {
    let s =
        parse(&format!(
        "{}\n[limits]\nmax_stanza_bytes = 16777216\nping_after_secs = 1\nshutdown_grace_secs = 0\n",
        MINIMAL.replace("types = [\"fcm\"]", "types = [\"fcm\"]\nping_to = \"xmpp.example.org\"")
    ))
        .unwrap();
    assert_eq!(s.limits.max_stanza_bytes, 16 << 20);
    assert_eq!(s.components[0].ping_to, "xmpp.example.org");
    let shown = s.to_string();
    assert!(
        shown.contains("ping_after_secs = 1") && shown.contains("ping_to = \"xmpp.example.org\"")
    );
    let e = parse(&format!(
        "{MINIMAL}\n[limits]\nmax_stanza_bytes = 16777217\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "limits.max_stanza_bytes");
    let e = parse(&format!("{MINIMAL}\n[limits]\nping_timeout_secs = 0\n")).unwrap_err();
    assert_eq!(e.key, "limits.ping_timeout_secs");
}

#[test]
fn unknown_key_names_file_and_key() {
    let e = parse(&format!("debuging = true\n{MINIMAL}")).unwrap_err();
    assert_eq!(e.file, Path::new("/etc/push.toml"));
    assert!(e.reason.contains("debuging"), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn wrong_type_is_refused() {
    let e = parse(&format!("rate_limit = \"fast\"\n{MINIMAL}")).unwrap_err();
    assert_eq!(e.key, "rate_limit", "{e}");
    assert!(e.reason.contains("expected"), "{e}");
    let e = parse(&format!("{MINIMAL}\n[http]\nthreads = true\n")).unwrap_err();
    assert_eq!(e.key, "http.threads", "{e}");
}

#[test]
fn type_without_app_section_is_refused() {
    let e =
        parse(&MINIMAL.replace("types = [\"fcm\"]", "types = [\"fcm\", \"apns\"]")).unwrap_err();
    assert_eq!(e.key, "component[0].types");
    assert!(e.reason.contains("[app.apns]"), "{e}");
}

#[test]
fn impossible_values_are_refused() {
    let e = parse(&format!("rate_limit = -1\n{MINIMAL}")).unwrap_err();
    assert_eq!(e.key, "rate_limit");
    let e = parse(&MINIMAL.replace("127.0.0.1:5347", "127.0.0.1")).unwrap_err();
    assert_eq!(e.key, "component[0].server");
    let e = parse(&MINIMAL.replace("push.example.org", "user@example.org")).unwrap_err();
    assert_eq!(e.key, "component[0].jid");
    let e = parse(&format!("{MINIMAL}\n[http]\nlisten = \"nowhere\"\n")).unwrap_err();
    assert_eq!(e.key, "http.listen");
}

#[test]
fn unknown_provider_and_provider_keys_are_refused() {
    let e = parse(&MINIMAL.replace("provider = \"log\"", "provider = \"pigeon\"")).unwrap_err();
    assert_eq!(e.key, "app.fcm.provider");
    let e = parse(&format!("{MINIMAL}colour = 3\n")).unwrap_err();
    assert_eq!(e.key, "app.fcm");
    assert!(e.reason.contains("colour"), "{e}");
}

#[test]
fn display_masks_secrets() {
    let shown = parse(MINIMAL).unwrap().to_string();
    assert!(!shown.contains("s3cret"));
    assert!(shown.contains("********"));
}

#[test]
fn defaults_are_valid() {
    let d = Settings::parse_with(DEFAULTS, &ConfigContext::defaults(), &[], true).unwrap();
    assert_eq!(d.components[0].jid, "push.localhost");
    assert_eq!(d.http.listen, Some("127.0.0.1:7874".parse().unwrap()));
    assert!(d.apps.contains_key("apns") && d.apps.contains_key("fcm"));
}

#[test]
fn registration_limits_have_defaults_and_bounds() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(
        s.registrations,
        RegistrationSettings {
            max_per_jid: 20,
            max_per_domain: 10_000,
            commands_per_minute_per_jid: 30,
            commands_per_minute_per_domain: 600,
            new_per_minute: 600,
        }
    );
    assert_eq!(s.store.max_registrations, 1_000_000);
    assert!(!s.http.open_unregister);
    let s = parse(&format!(
        "{MINIMAL}[registrations]\nmax_per_jid = 3\n[http]\nopen_unregister = true\n[store]\nmax_registrations = 9\n"
    ))
    .unwrap();
    assert_eq!(s.registrations.max_per_jid, 3);
    assert!(s.http.open_unregister);
    assert_eq!(s.store.max_registrations, 9);
    let e = parse(&format!("{MINIMAL}[registrations]\nmax_per_jid = 0\n")).unwrap_err();
    assert_eq!(e.key, "registrations.max_per_jid");
    let e = parse(&format!("{MINIMAL}[registrations]\nmax_per_user = 3\n")).unwrap_err();
    assert!(e.reason.contains("max_per_user"), "{e}");
    let shown = parse(MINIMAL).unwrap().to_string();
    assert!(
        shown.contains("[registrations]\nmax_per_jid = 20"),
        "{shown}"
    );
}

#[test]
fn http_bounds_deadlines_and_proxies() {
    let s = parse(MINIMAL).unwrap();
    let h = &s.http;
    assert_eq!(h.max_connections, 512);
    assert_eq!(h.request_timeout, Duration::from_secs(5));
    assert_eq!(h.idle_timeout, Duration::from_secs(5));
    assert_eq!(h.write_timeout, Duration::from_secs(10));
    assert!(h.trusted_proxies.0.is_empty() && h.tls.is_none() && !h.threads_ignored);

    let s = parse(&format!(
        "{MINIMAL}\n[http]\nthreads = 4\nmax_connections = 16\n\
         trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n"
    ))
    .unwrap();
    assert!(s.http.threads_ignored);
    assert_eq!(s.http.max_connections, 16);
    assert!(s
        .http
        .trusted_proxies
        .is_trusted("10.1.2.3".parse().unwrap()));
    let shown = s.to_string();
    assert!(
        shown.contains("max_connections = 16")
            && shown.contains("trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]")
            && shown.contains("request_timeout_secs = 5"),
        "{shown}"
    );

    for (text, key) in [
        ("max_connections = 15", "http.max_connections"),
        ("max_connections = 65537", "http.max_connections"),
        ("request_timeout_secs = 0", "http.request_timeout_secs"),
        (
            "trusted_proxies = [\"::1\", \"10.0.0.0/40\"]",
            "http.trusted_proxies[1]",
        ),
        ("tls_listen = \"127.0.0.1:5443\"", "http.tls_listen"),
        (
            "tls_listen = \"127.0.0.1:5443\"\ntls_cert = \"no.pem\"\ntls_key = \"no.pem\"",
            "http.tls_cert",
        ),
    ] {
        let e = parse(&format!("{MINIMAL}\n[http]\n{text}\n")).unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
    }
}

const DIALECTS: &str = r#"
[[component]]
jid = "push.example.org"
server = "127.0.0.1:5347"
secret = "s3cret"
types = ["fcm"]
conversations = { fcm = "fcm", apns = "ios" }
siskin = { providers = { "tigase:messenger:apns:1" = "ios", "snikket:apns:1" = "ios" }, body = true, encrypted = true }
[app.fcm]
provider = "log"
[app.ios]
provider = "log"
"#;

#[test]
fn dialects_default_to_v1_only() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.components[0].dialects, DialectSettings::default());
}

#[test]
fn dialects_map_commands_and_provider_ids_to_profiles() {
    let s = parse(DIALECTS).unwrap();
    let d = &s.components[0].dialects;
    assert_eq!(d.conversations.fcm.as_deref(), Some("fcm"));
    assert_eq!(d.conversations.apns.as_deref(), Some("ios"));
    let siskin = d.siskin.as_ref().unwrap();
    assert_eq!(siskin.providers["snikket:apns:1"], "ios");
    // `config show` names the dialect values.
    let shown = s.to_string();
    assert!(
        shown.contains("conversations = { fcm = \"fcm\", apns = \"ios\" }"),
        "{shown}"
    );
    assert!(shown.contains("\"snikket:apns:1\" = \"ios\""), "{shown}");
    assert_eq!(
        siskin.payload,
        SiskinPayload {
            sender: false,
            body: true,
            count: false,
            encrypted: true
        }
    );
}

#[test]
fn dialect_values_are_validated_with_file_key_and_reason() {
    let e = parse(&DIALECTS.replace("apns = \"ios\"", "apns = \"nope\"")).unwrap_err();
    assert_eq!(e.key, "component[0].conversations.apns");
    assert!(e.reason.contains("[app.nope]"), "{e}");
    let e = parse(&DIALECTS.replace("body = true", "bodies = true")).unwrap_err();
    assert_eq!(e.key, "component[0].siskin");
    assert!(e.reason.contains("bodies"), "{e}");
    let e =
        parse(&DIALECTS.replace("\"snikket:apns:1\" = \"ios\"", "\"a b\" = \"ios\"")).unwrap_err();
    assert_eq!(e.key, "component[0].siskin.providers.\"a b\"");
    let e = parse(&DIALECTS.replace(
        "conversations = { fcm = \"fcm\", apns = \"ios\" }",
        "conversations = {}",
    ))
    .unwrap_err();
    assert_eq!(e.key, "component[0].conversations");
    assert_eq!(e.file, Path::new("/etc/push.toml"));
}

#[test]
fn outcome_flush_interval_has_a_default_and_bounds() {
    assert_eq!(parse(MINIMAL).unwrap().store.outcome_flush_secs, 60);
    let s = parse(&format!("{MINIMAL}[store]\noutcome_flush_secs = 5\n")).unwrap();
    assert_eq!(s.store.outcome_flush_secs, 5);
    assert!(s.to_string().contains("outcome_flush_secs = 5"));
    for bad in ["0", "86401", "-1"] {
        let e = parse(&format!("{MINIMAL}[store]\noutcome_flush_secs = {bad}\n")).unwrap_err();
        assert_eq!(e.key, "store.outcome_flush_secs", "{bad}");
    }
}

#[test]
fn unifiedpush_relays_may_hold_at_most_half_the_http_connections() {
    let up = |n: u32| {
        MINIMAL.replace(
            "[app.fcm]",
            &format!(
                "[component.unifiedpush]\nendpoint_base = \"https://p.example.org\"\n\
                 allow_from = [\"example.org\"]\nmax_in_flight = {n}\n[app.fcm]"
            ),
        )
    };
    assert_eq!(
        parse(&up(256)).unwrap().components[0]
            .unifiedpush
            .as_ref()
            .unwrap()
            .max_in_flight,
        256
    );
    let e = parse(&up(257)).unwrap_err();
    assert_eq!(e.key, "component[0].unifiedpush.max_in_flight");
    assert!(e.to_string().contains("http.max_connections (512)"), "{e}");
}

#[test]
fn every_error_of_a_file_is_reported_not_only_the_first() {
    let text = r#"
colour = "blue"
rate_limit = 5000
[http]
listen = "nowhere"
[[component]]
jid = "push.example.org"
server = "127.0.0.1:99999"
secret = "s3cret"
types = ["fcm", "apns"]
[app.fcm]
provder = "log"
[app.apns]
provider = "log"
"#;
    let e = parse(text).unwrap_err();
    let all: Vec<&str> = std::iter::once(&e)
        .chain(&e.more)
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(
        all,
        [
            "colour",
            "rate_limit",
            "http.listen",
            "app.fcm.provder",
            "component[0].server"
        ],
        "{e}"
    );
    assert_eq!(e.to_string().lines().count(), 5, "{e}");
    // The first error keeps its line number.
    assert!(e.reason.contains("line 2"), "{e}");
    // A valid file after the first error is not blamed for anything else.
    let one =
        parse(&MINIMAL.replace("[[component]]", "rate_limit = -1\n[[component]]")).unwrap_err();
    assert_eq!(one.count(), 1, "{one}");
}

#[test]
fn the_block_cache_is_sized_by_the_store_unless_cache_mb_fixes_it() {
    let dir = std::env::temp_dir().join(format!("pa-cache-{}", std::process::id()));
    let tables = dir.join("store/keyspaces/1/tables");
    std::fs::create_dir_all(&tables).unwrap();
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.store.cache_bytes, None);
    // An empty store: the least.
    assert_eq!(s.store.cache_for(&dir), 4 * MIB);
    // Half the disk tables (sparse files: their length is what counts).
    let f = std::fs::File::create(tables.join("7")).unwrap();
    f.set_len(40 * MIB).unwrap();
    assert_eq!(s.store.cache_for(&dir), 20 * MIB);
    // At most cache_max_mb.
    f.set_len(400 * MIB).unwrap();
    assert_eq!(s.store.cache_for(&dir), 32 * MIB);
    let capped = parse(&format!("{MINIMAL}[store]\ncache_max_mb = 8\n")).unwrap();
    assert_eq!(capped.store.cache_for(&dir), 8 * MIB);
    // Fixed by cache_mb, whatever the store.
    let fixed = parse(&format!("{MINIMAL}[store]\ncache_mb = 2\n")).unwrap();
    assert_eq!(fixed.store.cache_for(&dir), 2 * MIB);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_component_missing_a_key_hides_no_other_error() {
    let text = r#"
[limits]
max_stanza_bytes = 1
[[component]]
jid = "bad jid@@"
server = "nohostport"
secret = "s"
types = ["fcm", "nothere"]
[[component]]
jid = "push2.example.org"
[app.fcm]
provider = "log"
"#;
    let e = parse(text).unwrap_err();
    let all: Vec<String> = std::iter::once(&e)
        .chain(&e.more)
        .map(|e| e.to_string())
        .collect();
    let text = all.join("\n");
    for needle in [
        "missing field `server`",
        "component[0].jid",
        "component[0].server",
        "component[0].types",
        "limits.max_stanza_bytes",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
