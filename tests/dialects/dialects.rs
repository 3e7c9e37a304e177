//! The registration dialects end to end: a fake XMPP server sends the
//! clients' own commands and the XEP-0357 publishes to the binary, which
//! pushes to a mock FCM (Conversations) or a mock APNS (Siskin) with the
//! payload each app expects; a dead token then makes the publish answer
//! the error that disables push for that device, and only then.

use std::sync::Arc;
use std::time::Duration;

use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, Reply};
use crate::support::harness::*;
use crate::support::{apple, fcm_mock};
use push_appserver::xml::Element;

const T: Duration = Duration::from_secs(10);
const NS_DATA: &str = "jabber:x:data";
const DEVICE: &str = "AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12";
const VOIP: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const DEAD: &str = "dd00000000000000000000000000000000000000000000000000000000000002";
const DEAD_VOIP: &str = "dd0000000000000000000000000000000000000000000000000000000000000f";

fn config(dir: &std::path::Path, xmpp: u16, dialect: &str, app: &str) -> String {
    format!(
        "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"debug\"\n[http]\nlisten = \"off\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"v1\"]\n{dialect}\n\
         [app.v1]\nprovider = \"log\"\n[app.phone]\n{app}",
        dir.join("data").display()
    )
}

/// The values of a form field of a command reply.
fn field(reply: &Element, var: &str) -> Vec<String> {
    let form = reply
        .get_child("command", NS_COMMANDS)
        .and_then(|c| c.get_child("x", NS_DATA))
        .unwrap_or_else(|| panic!("no form in {reply:?}"));
    form.children_named("field", NS_DATA)
        .find(|f| f.get_attr("var") == Some(var))
        .map(|f| {
            f.children_named("value", NS_DATA)
                .map(|v| v.text_content())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn one(reply: &Element, var: &str) -> String {
    field(reply, var).into_iter().next().unwrap_or_default()
}

fn ok() -> (String, String) {
    ("result".into(), String::new())
}

fn gone() -> (String, String) {
    ("cancel".into(), "item-not-found".into())
}

pub(crate) fn conversations_register(
    id: &str,
    from: &str,
    android_id: &str,
    token: &str,
) -> String {
    format!(
        "<iq type='set' from='{from}' to='push.example.org' id='{id}'>\
         <command xmlns='{NS_COMMANDS}' node='register-push-fcm' action='execute'>\
         <x xmlns='{NS_DATA}' type='submit'>\
         <field var='token'><value>{token}</value></field>\
         <field var='android-id'><value>{android_id}</value></field></x></command></iq>"
    )
}

#[test]
fn conversations_registers_by_android_id_and_wakes_the_right_account() {
    let google = smol::block_on(fcm_mock::Google::start(Duration::ZERO));
    let dir = TempDir::new("dialect-conversations");
    let x = FakeXmpp::new();
    let app_cfg = format!("provider = \"fcm\"\n{}push_ttl = 3600\n", google.config());
    let _app = AppServer::start(
        &dir.0,
        &config(
            &dir.0,
            x.port,
            "conversations = { fcm = \"phone\" }",
            &app_cfg,
        ),
        0,
    );
    let mut c = x.accept(T);

    let items = c.iq(&format!(
        "<iq type='get' from='user@example.com/phone' to='push.example.org' id='d1'>\
         <query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/></iq>"
    ));
    let s = items.to_stanza_string();
    assert!(s.contains("node='register-push-fcm'"), "{s}");
    assert!(s.contains("node='unregister-push-fcm'"), "{s}");
    assert!(!s.contains("register-push-apns"), "{s}");

    let from = "user@example.com/phone";
    let r1 = c.iq(&conversations_register(
        "r1",
        from,
        "a1b2c3d4",
        "fcm-token-1",
    ));
    assert_eq!(outcome(&r1), ok(), "{r1:?}");
    let cmd = r1.get_child("command", NS_COMMANDS).unwrap();
    assert_eq!(cmd.get_attr("status"), Some("completed"));
    assert!(cmd.get_attr("sessionid").is_some_and(|s| !s.is_empty()));
    assert_eq!(one(&r1, "jid"), "push.example.org");
    let (node, secret) = (one(&r1, "node"), one(&r1, "secret"));
    assert!(!node.is_empty() && !secret.is_empty());

    // The same (account, android-id) again: same node and secret, new token.
    let r2 = c.iq(&conversations_register(
        "r2",
        from,
        "a1b2c3d4",
        "fcm-token-2",
    ));
    assert_eq!(
        (one(&r2, "node"), one(&r2, "secret")),
        (node.clone(), secret.clone())
    );
    // Another android-id is another device.
    let r3 = c.iq(&conversations_register("r3", from, "other", "fcm-token-3"));
    assert_ne!(one(&r3, "node"), node);

    let r = c.iq(&publish_iq("p1", &node, &secret, Some("hi")));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let seen = google.fcm.seen();
    assert_eq!(seen.len(), 1);
    let msg = &seen[0].body["message"];
    assert_eq!(msg["token"], "fcm-token-2");
    // hex(SHA-1("user@example.com\0a1b2c3d4"))
    let account = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"user@example.com\x00a1b2c3d4",
        );
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(msg["data"], serde_json::json!({ "account": account }));
    assert_eq!(msg["android"]["priority"], "HIGH");

    // The token dies: the user's server is told the device is gone, once
    // the provider said so and not before.
    google.fcm.script([fcm_mock::Answer::error(
        404,
        "NOT_FOUND",
        Some("UNREGISTERED"),
    )]);
    let r = c.iq(&publish_iq("p2", &node, &secret, None));
    assert_eq!(outcome(&r), gone());
    let r = c.iq(&publish_iq("p3", &node, &secret, None));
    assert_eq!(outcome(&r), gone());
    assert_eq!(google.fcm.seen().len(), 2, "nothing sent after the death");

    // The account registers again, with `action='complete'` as current
    // Conversations sends it (older ones send `execute`).
    let own = c.iq(
        &conversations_register("r6", from, "a1b2c3d4", "fcm-token-6")
            .replace("action='execute'", "action='complete'"),
    );
    assert_eq!(outcome(&own), ok(), "{own:?}");
    let (own_node, own_secret) = (one(&own, "node"), one(&own, "secret"));

    // A channel's registration: the channel's service publishes; as p2
    // sends it, `account` names the account and `channel` the channel.
    let muc = "room@conference.example.com";
    let r = c.iq(
        &conversations_register("r4", from, "a1b2c3d4", "fcm-token-4").replace(
            "</x>",
            &format!("<field var='muc'><value>{muc}</value></field></x>"),
        ),
    );
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let (room_node, room_secret) = (one(&r, "node"), one(&r, "secret"));
    assert_ne!(room_node, own_node);
    let from_room = publish_iq("p5", &room_node, &room_secret, Some("hi"))
        .replace("from='user@example.com'", "from='conference.example.com'");
    assert_eq!(outcome(&c.iq(&from_room)), ok());
    let from_elsewhere = from_room.replace("conference.example.com", "evil.example");
    assert_eq!(outcome(&c.iq(&from_elsewhere)), gone());
    let seen = google.fcm.seen();
    let room_hash = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{muc}\0a1b2c3d4").as_bytes(),
        );
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        seen.last().unwrap().body["message"]["data"],
        serde_json::json!({ "account": account, "channel": room_hash })
    );

    // Older Conversations unregisters a channel with its hash as `channel`
    // and the android-id: only the channel's registration goes.
    let u = c.iq(&format!(
        "<iq type='set' from='{from}' to='push.example.org' id='uc'>\
         <command xmlns='{NS_COMMANDS}' node='unregister-push-fcm' action='execute'>\
         <x xmlns='{NS_DATA}' type='submit'><field var='channel'><value>{room_hash}</value></field>\
         <field var='android-id'><value>a1b2c3d4</value></field></x></command></iq>"
    ));
    assert_eq!(outcome(&u), ok(), "{u:?}");
    assert_eq!(outcome(&c.iq(&from_room.replace("p5", "p6"))), gone());
    let r = c.iq(&publish_iq("p7", &own_node, &own_secret, None));
    assert_eq!(outcome(&r), ok(), "the account's own registration stays");

    // Unregister by android-id removes only that device.
    let other = one(&r3, "node");
    let other_secret = one(&r3, "secret");
    let u = c.iq(&format!(
        "<iq type='set' from='{from}' to='push.example.org' id='u1'>\
         <command xmlns='{NS_COMMANDS}' node='unregister-push-fcm' action='execute'>\
         <x xmlns='{NS_DATA}' type='submit'><field var='android-id'><value>other</value></field>\
         </x></command></iq>"
    ));
    assert_eq!(outcome(&u), ok(), "{u:?}");
    assert_eq!(
        u.get_child("command", NS_COMMANDS)
            .and_then(|c| c.get_attr("status")),
        Some("completed")
    );
    let r = c.iq(&publish_iq("p4", &other, &other_secret, None));
    assert_eq!(outcome(&r), gone());
}

pub(crate) fn siskin_register(
    id: &str,
    from: &str,
    provider: &str,
    token: &str,
    voip: &str,
) -> String {
    format!(
        "<iq type='set' from='{from}' to='push.example.org' id='{id}'>\
         <command xmlns='{NS_COMMANDS}' node='register-device'>\
         <x xmlns='{NS_DATA}' type='submit'>\
         <field var='provider'><value>{provider}</value></field>\
         <field var='device-token'><value>{token}</value></field>\
         <field var='device-second-token'><value>{voip}</value></field></x></command></iq>"
    )
}

/// A publish as a server sends it for Siskin: no publish-options, no secret.
pub(crate) fn siskin_publish(id: &str, from: &str, node: &str, notification: &str) -> String {
    format!(
        "<iq type='set' from='{from}' to='push.example.org' id='{id}'>\
         <pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item>{notification}</item>\
         </publish></pubsub></iq>"
    )
}

const SUMMARY: &str = "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
    <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
    <field var='message-count'><value>2</value></field>\
    <field var='last-message-sender'><value>juliet@capulet.lit/balcony</value></field>\
    <field var='last-message-body'><value>Wherefore art thou?</value></field></x></notification>";

#[test]
fn siskin_registers_without_secret_and_gets_its_payload_and_calls() {
    let behaviour: apple::Behaviour = Arc::new(move |r| {
        if r.path.ends_with(DEAD) || r.path.ends_with(DEAD_VOIP) {
            Reply::status(
                410,
                r#"{"reason":"Unregistered","timestamp":4102444800000}"#,
            )
        } else {
            Reply::ok()
        }
    });
    let apple = smol::block_on(Apple::token(MockOptions::default(), behaviour));
    let dir = TempDir::new("dialect-siskin");
    let x = FakeXmpp::new();
    let app_cfg = format!(
        "provider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\n\
         auth_key = {:?}\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
        apple.files.0.join("AuthKey.p8").display().to_string(),
    );
    let dialect = "siskin = { providers = { \"tigase:messenger:apns:1\" = \"phone\" }, \
                   sender = true, body = true, count = true, encrypted = true }";
    let _app = AppServer::start(&dir.0, &config(&dir.0, x.port, dialect, &app_cfg), 0);
    let mut c = x.accept(T);

    let info = c.iq(
        "<iq type='get' from='example.com' to='push.example.org' id='i1'>\
         <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let s = info.to_stanza_string();
    assert!(s.contains("category='pubsub' type='push'"), "{s}");
    assert!(s.contains("<feature var='urn:xmpp:push:0'/>"), "{s}");
    assert!(
        s.contains("<feature var='tigase:messenger:apns:1'/>"),
        "{s}"
    );

    let from = "romeo@example.com/iphone";
    let r = c.iq(&siskin_register(
        "r1",
        from,
        "tigase:messenger:apns:1",
        DEVICE,
        VOIP,
    ));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let node = one(&r, "node");
    assert_eq!(node.len(), 32, "128 random bits: {node}");
    assert_eq!(
        field(&r, "features"),
        vec!["tigase:push:encrypt:0".to_owned()]
    );
    assert_eq!(one(&r, "max-payload-size"), "3072");
    let s = r.to_stanza_string();
    assert!(s.contains("var='features' type='text-multi'"), "{s}");
    assert!(s.contains("<x xmlns='jabber:x:data' type='result'>"), "{s}");
    // Registering the same device again keeps its node.
    let again = c.iq(&siskin_register(
        "r2",
        from,
        "tigase:messenger:apns:1",
        DEVICE,
        VOIP,
    ));
    assert_eq!(one(&again, "node"), node);
    // A provider id nobody configured is refused.
    let r = c.iq(&siskin_register("r3", from, "snikket:apns:1", DEVICE, VOIP));
    assert_eq!(outcome(&r).1, "bad-request");

    // A message: an alert with the account and what the operator allows.
    let r = c.iq(&siskin_publish("p1", "romeo@example.com", &node, SUMMARY));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let seen = apple.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/3/device/{}", DEVICE.to_lowercase()));
    assert_eq!(seen[0].header("apns-push-type"), Some("alert"));
    assert_eq!(seen[0].header("apns-topic"), Some(TOPIC));
    let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(v["account"], "romeo@example.com");
    assert_eq!(v["sender"], "juliet@capulet.lit/balcony");
    assert_eq!(v["body"], "Wherefore art thou?");
    assert_eq!(v["unread-messages"], 2);
    assert_eq!(v["aps"]["mutable-content"], 1);
    assert!(v["aps"]["alert"].is_object(), "{v}");

    // The node is the credential, but only the owner's server may use it.
    let r = c.iq(&siskin_publish(
        "p2",
        "mallory@evil.example",
        &node,
        SUMMARY,
    ));
    assert_eq!(outcome(&r), gone());

    // An encrypted call goes to the PushKit token as VoIP.
    let call = "<notification xmlns='urn:xmpp:push:0'>\
        <encrypted xmlns='tigase:push:encrypt:0' iv='SVY=' type='voip'>Q0lQSEVS</encrypted>\
        <jingle xmlns='tigase:push:jingle:0' action='session-initiate' sid='s1'/></notification>";
    let r = c.iq(&siskin_publish("p3", "example.com", &node, call));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    let seen = apple.server.seen();
    assert_eq!(seen[1].path, format!("/3/device/{VOIP}"));
    assert_eq!(seen[1].header("apns-push-type"), Some("voip"));
    assert_eq!(
        seen[1].header("apns-topic"),
        Some(format!("{TOPIC}.voip").as_str())
    );
    let v: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(
        (v["encrypted"].as_str(), v["iv"].as_str()),
        (Some("Q0lQSEVS"), Some("SVY="))
    );

    // A dead PushKit token fails the call with a wait error and keeps the
    // registration: its device token may well be alive.
    let r = c.iq(&siskin_register(
        "r5",
        from,
        "tigase:messenger:apns:1",
        VOIP,
        DEAD_VOIP,
    ));
    let mute = one(&r, "node");
    let r = c.iq(&siskin_publish("v1", "example.com", &mute, call));
    assert_eq!(outcome(&r), ("wait".into(), "internal-server-error".into()));
    let r = c.iq(&siskin_publish("v2", "example.com", &mute, SUMMARY));
    assert_eq!(outcome(&r), ok(), "{r:?}");
    assert_eq!(apple.server.seen().len(), 4);

    // unregister-device removes it.
    let u = c.iq(&format!(
        "<iq type='set' from='{from}' to='push.example.org' id='u1'>\
         <command xmlns='{NS_COMMANDS}' node='unregister-device'>\
         <x xmlns='{NS_DATA}' type='submit'>\
         <field var='provider'><value>tigase:messenger:apns:1</value></field>\
         <field var='device-token'><value>{DEVICE}</value></field></x></command></iq>"
    ));
    assert_eq!(outcome(&u), ok(), "{u:?}");
    let r = c.iq(&siskin_publish("p4", "romeo@example.com", &node, SUMMARY));
    assert_eq!(outcome(&r), gone());
    assert_eq!(apple.server.seen().len(), 4);

    // A dead token: the first push after Apple says so disables push.
    let r = c.iq(&siskin_register(
        "r4",
        from,
        "tigase:messenger:apns:1",
        DEAD,
        VOIP,
    ));
    let dead = one(&r, "node");
    assert_ne!(dead, node);
    let r = c.iq(&siskin_publish("p5", "romeo@example.com", &dead, SUMMARY));
    assert_eq!(outcome(&r), gone());
    let r = c.iq(&siskin_publish("p6", "romeo@example.com", &dead, SUMMARY));
    assert_eq!(outcome(&r), gone());
    assert_eq!(apple.server.seen().len(), 5, "p6 never reached Apple");
}

#[test]
fn secret_registrations_still_need_their_secret_and_v1_is_the_default() {
    let dir = TempDir::new("dialect-v1");
    let x = FakeXmpp::new();
    let _app = AppServer::start(
        &dir.0,
        &config(&dir.0, x.port, "", "provider = \"log\"\n"),
        0,
    );
    let mut c = x.accept(T);
    // Without a dialect value, only v1's commands exist.
    let r = c.iq(&siskin_register(
        "r1",
        "romeo@example.com/x",
        "p",
        DEVICE,
        VOIP,
    ));
    assert_eq!(outcome(&r), gone());
    let r = c.iq(&conversations_register(
        "r2",
        "romeo@example.com/x",
        "a",
        "t",
    ));
    assert_eq!(outcome(&r), gone());
    let reg = register(&mut c, "v1", "dev", "tok");
    // A publish without publish-options to a node that has a secret is
    // malformed, as before.
    let r = c.iq(&siskin_publish(
        "p1",
        "user@example.com",
        &reg.node,
        SUMMARY,
    ));
    assert_eq!(outcome(&r), ("modify".into(), "bad-request".into()));
    let r = c.iq(&publish_iq("p2", &reg.node, &reg.secret, None));
    assert_eq!(outcome(&r), ok());
}
