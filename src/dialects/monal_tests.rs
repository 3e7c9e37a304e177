use super::*;
use crate::stanza::ErrorType;
use crate::xml::parse_element;

const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn apps() -> BTreeMap<String, ProviderSettings> {
    let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
    let mut apps = BTreeMap::new();
    for (name, provider) in [("monal", "log"), ("android", "fcm-ish")] {
        if provider == "log" {
            let t: toml::Table = toml::from_str("provider = \"log\"").unwrap();
            apps.insert(
                name.to_owned(),
                ProviderSettings::from_table(name, t, &ctx).unwrap(),
            );
        }
    }
    apps
}

fn settings(text: &str) -> Result<MonalSettings, ConfigError> {
    let ctx = ConfigContext::for_file(std::path::Path::new("/etc/p.toml"));
    MonalSettings::from_table(
        "component[0].monal",
        toml::from_str(text).unwrap(),
        &ctx,
        &apps(),
    )
}

fn pubsub(node: &str, module: Option<&str>) -> Element {
    let module = module
        .map(|m| format!("<field var='pushModule'><value>{m}</value></field>"))
        .unwrap_or_default();
    let xml = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item>\
         <notification xmlns='urn:xmpp:push:0'/></item></publish><publish-options>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>\
         <value>http://jabber.org/protocol/pubsub#publish-options</value></field>{module}\
         </x></publish-options></pubsub>"
    );
    parse_element(xml.as_bytes()).unwrap()
}

#[test]
fn parses_token_and_module() {
    let p = pubsub(&TOKEN.to_uppercase(), Some("monalProdiOS-sandbox"));
    assert_eq!(push_module(&p).as_deref(), Some("monalProdiOS-sandbox"));
    assert_eq!(
        parse(&p).unwrap(),
        MonalRequest {
            token: TOKEN.into(),
            module: "monalProdiOS-sandbox".into()
        }
    );
    assert_eq!(push_module(&pubsub(TOKEN, None)), None);
}

#[test]
fn implausible_tokens_are_refused_as_gone() {
    for node in [
        "abc",
        "xyz",
        &"0".repeat(63),
        &"0".repeat(202),
        &format!("{TOKEN}/x"),
        &"g".repeat(64),
    ] {
        let e = parse(&pubsub(node, Some("monalProdiOS"))).unwrap_err();
        assert_eq!(
            (e.kind, e.condition),
            (ErrorType::Cancel, "item-not-found"),
            "{node}"
        );
    }
    let e = parse(&pubsub(TOKEN, Some("bad module!"))).unwrap_err();
    assert_eq!(e.condition, "bad-request");
}

#[test]
fn config_maps_modules_and_sandbox_needs_its_own_entry() {
    let s = settings("modules = { monalProdiOS = \"monal\" }\ndefault = \"monal\"").unwrap();
    assert_eq!(s.profile_for("monalProdiOS"), Some("monal"));
    assert_eq!(s.profile_for("quicksyProdiOS"), Some("monal"));
    assert_eq!(s.profile_for("monalProdiOS-sandbox"), None);
    let s = settings("modules = { \"monalProdiOS-sandbox\" = \"monal\" }").unwrap();
    assert_eq!(s.profile_for("monalProdiOS-sandbox"), Some("monal"));
    assert_eq!(s.profile_for("monalProdiOS"), None);
}

#[test]
fn config_errors_name_the_key() {
    let e = settings("modules = { monalProdiOS = \"nope\" }").unwrap_err();
    assert_eq!(e.key, "component[0].monal.modules.monalProdiOS");
    let e = settings("modules = {}").unwrap_err();
    assert_eq!(e.key, "component[0].monal.modules");
    let e = settings("modules = { \"a b\" = \"monal\" }").unwrap_err();
    assert!(e.reason.contains("pushModule"), "{e}");
    let e = settings("modules = {}\ndefault = \"monal\"\nextra = { aps = 1 }").unwrap_err();
    assert_eq!(e.key, "component[0].monal.extra.aps");
    assert!(settings("modules = {}\ndefault = \"monal\"\nbogus = 1").is_err());
}

#[test]
fn payload_is_an_alert_with_mutable_content_and_extra_keys() {
    let s = settings(
        "default = \"monal\"\nmodules = {}\ntitle = \"T\"\nbody = \"B\"\nextra = { a = \"x\", n = 2 }",
    )
    .unwrap();
    assert_eq!(
        s.payload(),
        json!({"aps": {"alert": {"title": "T", "body": "B"}, "sound": "default", "mutable-content": 1},
               "a": "x", "n": 2})
    );
    assert_eq!(
        s.describe(),
        "{ modules = {  }, default = \"monal\", title = \"T\", body = \"B\", sound = \"default\", \
         extra = { \"a\" = \"x\", \"n\" = 2 } }"
    );
    let s = settings("default = \"monal\"\nmodules = {}\nsound = \"\"").unwrap();
    assert_eq!(
        s.payload(),
        json!({"aps": {"alert": {"title": "New Message", "body": "You have a new message"}, "mutable-content": 1}})
    );
}
