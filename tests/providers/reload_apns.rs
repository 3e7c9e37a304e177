//! SIGHUP with a renewed APNS client certificate: the app profile moves to
//! another mock Apple that only accepts the new certificate, the component
//! link stays on the same stream, and `/metrics` shows the new notAfter.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::apple::{ok, Apple, TOPIC};
use crate::support::harness::*;

const T: Duration = Duration::from_secs(10);
const TOKEN: &str = "aa00000000000000000000000000000000000000000000000000000000000001";

fn config(dir: &std::path::Path, xmpp: u16, http: u16, apple: &Apple) -> String {
    format!(
        "data_dir = \"{}\"\nrate_limit = 0\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
         secret = \"{SECRET}\"\ntypes = [\"apns\"]\n\
         [app.apns]\nprovider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\n\
         capath = {:?}\ncert = {:?}\n",
        dir.join("data").display(),
        apple.server.url(),
        apple.pki.ca_pem.display().to_string(),
        apple.files.0.join("client.pem").display().to_string(),
    )
}

/// The `notAfter` gauge of the apns app as `/metrics` shows it.
fn expiry(app: &AppServer) -> String {
    let (status, text) = app.http("GET", "/metrics", "");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| {
            l.strip_prefix(
                "push_appserver_apns_certificate_expiry_timestamp_seconds{app=\"apns\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no expiry sample:\n{text}"))
        .to_owned()
}

#[test]
fn sighup_takes_a_renewed_apns_certificate_without_dropping_the_link() {
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let old: SystemTime = at(1_950_000_000);
    let renewed = at(1_960_000_000);
    let apple1 = smol::block_on(Apple::cert(ok(), old));
    let apple2 = smol::block_on(Apple::cert(ok(), renewed));
    let dir = TempDir::new("reload-apns");
    let x = FakeXmpp::new();
    let port = free_port();
    let app = AppServer::start(&dir.0, &config(&dir.0, x.port, port, &apple1), port);
    let mut c = x.accept(T);
    let r = register(&mut c, "apns", "phone", TOKEN);
    let push = |c: &mut Conn, id: &str| outcome(&c.iq(&publish_iq(id, &r.node, &r.secret, None)));
    assert_eq!(push(&mut c, "p1").0, "result");
    assert_eq!(apple1.server.seen().len(), 1);
    assert_eq!(expiry(&app), "1950000000");

    std::fs::write(
        dir.0.join("config.toml"),
        config(&dir.0, x.port, port, &apple2),
    )
    .unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + T;
    while !app.stderr().contains("SIGHUP: reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", app.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        push(&mut c, "p2").0,
        "result",
        "answered on the same stream"
    );
    assert_eq!(
        apple2.server.seen().len(),
        1,
        "the new certificate was used"
    );
    assert!(apple2.server.seen()[0].client_cert.is_some());
    assert_eq!(apple1.server.seen().len(), 1);
    assert_eq!(expiry(&app), "1960000000");
    x.listener.set_nonblocking(true).unwrap();
    assert!(x.listener.accept().is_err(), "the link never reconnected");
}
