use super::*;
use crate::xml::parse_element;

fn settings() -> ConversationsSettings {
    ConversationsSettings {
        fcm: Some("conversations".into()),
        apns: None,
    }
}

fn cmd(xml: &str) -> Result<Request, StanzaError> {
    let el = parse_element(xml.as_bytes()).unwrap();
    let c = Command::from_node(el.get_attr("node").unwrap(), &settings()).unwrap();
    parse(c, &el)
}

#[test]
fn register_reads_token_android_id_and_muc() {
    let r = cmd("<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='token'><value>fcm-token-1</value></field>\
        <field var='android-id'><value>a1b2c3</value></field>\
        <field var='muc'><value>room@conference.example.org</value></field></x></command>")
    .unwrap();
    assert_eq!(r.command, Command::Register(Kind::Fcm));
    assert_eq!(r.token.as_deref(), Some("fcm-token-1"));
    assert_eq!(r.android_id, "a1b2c3");
    assert_eq!(r.muc.as_deref(), Some("room@conference.example.org"));
    assert!(!r.cancel);
}

#[test]
fn muc_must_be_a_bare_jid() {
    for bad in ["room@conference.example.org/nick", "a b@c", "@c"] {
        let e = cmd(&format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='token'><value>t</value></field>\
             <field var='android-id'><value>a</value></field>\
             <field var='muc'><value>{bad}</value></field></x></command>"
        ))
        .unwrap_err();
        assert!(e.text.unwrap().contains("muc"), "{bad}");
    }
}

#[test]
fn device_id_is_read_before_android_id_as_p2_does() {
    let r = cmd(
        "<command xmlns='http://jabber.org/protocol/commands' node='REGISTER-push-FCM'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='token'><value>t</value></field>\
        <field var='android-id'><value>android</value></field>\
        <field var='device-id'><value>device</value></field></x></command>",
    )
    .unwrap();
    assert_eq!(r.android_id, "device");
    assert_eq!(r.muc, None);
}

#[test]
fn missing_fields_are_bad_requests() {
    let e = cmd("<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'>\
        <x xmlns='jabber:x:data' type='submit'><field var='android-id'><value>a</value></field></x></command>")
    .unwrap_err();
    assert_eq!(e.condition, "bad-request");
    assert!(e.text.unwrap().contains("token"));
    let e =
        cmd("<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm'/>")
            .unwrap_err();
    assert!(e.text.unwrap().contains("android-id"));
    let r = cmd("<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm'>\
        <x xmlns='jabber:x:data' type='submit'><field var='android-id'><value>a</value></field></x></command>")
    .unwrap();
    assert_eq!((r.command, r.token), (Command::Unregister(Kind::Fcm), None));
}

#[test]
fn only_configured_providers_are_offered() {
    assert_eq!(
        commands(&settings()),
        vec![
            ("register-push-fcm", "Register an Android device (FCM)"),
            ("unregister-push-fcm", "Unregister an Android device (FCM)")
        ]
    );
    assert_eq!(Command::from_node("register-push-apns", &settings()), None);
    assert!(commands(&ConversationsSettings::default()).is_empty());
}

#[test]
fn account_is_hex_sha1_of_jid_nul_android_id() {
    // sha1("juliet@capulet.lit\0a1b2c3"), computed independently.
    let expected = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"juliet@capulet.lit\x00a1b2c3",
        );
        hex(d.as_ref())
    };
    assert_eq!(account("juliet@capulet.lit", "a1b2c3"), expected);
    assert_eq!(account("", "").len(), 40);
    // A known vector: SHA-1 of the single byte 0.
    assert_eq!(account("", ""), "5ba93c9db0cff93f52b521d7420e43f6eda2784f");
}

#[test]
fn reply_carries_jid_node_and_secret_in_a_form() {
    let s =
        completed("register-push-fcm", "s1", "push.example.org", "n1", "sec").to_stanza_string();
    assert!(s.starts_with("<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' sessionid='s1' status='completed'><x xmlns='jabber:x:data' type='form'>"), "{s}");
    assert!(
        s.contains("<field type='jid-single' var='jid'><value>push.example.org</value></field>")
    );
    assert!(s.contains("<field type='text-single' var='node'><value>n1</value></field>"));
    assert!(s.contains("<field type='text-single' var='secret'><value>sec</value></field>"));
}

#[test]
fn a_channel_is_the_same_device_by_muc_and_by_its_hash() {
    let unregister = |field: &str| {
        cmd(&format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='unregister-push-fcm' action='execute'>\
             <x xmlns='jabber:x:data' type='submit'>{field}\
             <field var='android-id'><value>a1b2c3</value></field></x></command>"
        ))
    };
    let muc = "room@conference.example.org";
    let by_muc = unregister(&format!("<field var='muc'><value>{muc}</value></field>")).unwrap();
    let hash = account(muc, "a1b2c3");
    let by_hash = unregister(&format!(
        "<field var='channel'><value>{}</value></field>",
        hash.to_uppercase()
    ))
    .unwrap();
    assert_eq!(by_hash.channel.as_deref(), Some(hash.as_str()));
    assert_eq!(device(&by_muc), device(&by_hash));
    let own = unregister("").unwrap();
    assert_ne!(
        device(&own),
        device(&by_hash),
        "the account is another device"
    );
    for bad in ["xyz", "room@conference.example.org", &"a".repeat(41)] {
        let e = unregister(&format!(
            "<field var='channel'><value>{bad}</value></field>"
        ))
        .unwrap_err();
        assert_eq!(e.condition, "bad-request", "{bad}");
    }
}
