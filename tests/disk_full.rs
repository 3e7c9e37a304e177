//! A full disk: registrations fail with a clear error, pushes for existing
//! devices go on, and every acknowledged registration is still there after
//! a `kill -9` and a restart with space freed. The data dir is a 2 MiB
//! tmpfs, so this test needs root (as in CI) and `mount`.

mod common;
#[path = "support/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Mounts a tmpfs and unmounts it on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs root and mount (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_refuses_registrations_keeps_pushing_and_loses_nothing() {
    let dir = TempDir::new("diskfull");
    let data = dir.path("data");
    let fs = Tmpfs::mount(&data, "2m");
    let port = free_port();
    let cfg = format!(
        "data_dir = \"{}\"\ndebugging = true\nrate_limit = 0\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         requests_per_second = 100000\n[[component]]\njid = \"push.example.org\"\n\
         server = \"127.0.0.1:{}\"\nsecret = \"{SECRET}\"\ntypes = [\"fcm\"]\n\
         [app.fcm]\nprovider = \"log\"\n",
        data.display(),
        free_port()
    );
    let mut app = AppServer::start(&dir.0, &cfg, port);

    let mut acked: Vec<(String, String)> = Vec::new();
    let mut refusal = None;
    for i in 0..20_000 {
        let node = format!("node{i}");
        let body = format!("type=fcm&node={node}&token={}", "t".repeat(1000));
        let (status, text) = app.http("POST", "/push_appserver/v1/register", &body);
        if status == 200 {
            acked.push((node, text.lines().nth(2).unwrap().to_owned()));
        } else {
            refusal = Some((status, text));
            break;
        }
    }
    let (status, text) = refusal.expect("the 2 MiB disk filled up");
    assert_eq!(status, 500);
    assert_eq!(text, "ERROR\nregistration store unavailable\n");
    assert!(acked.len() > 50, "only {} registrations fit", acked.len());

    // The server runs on: health says what is wrong, pushes still work.
    let (status, health) = app.http("GET", "/push_appserver/v1/health", "");
    assert_eq!(status, 200);
    assert!(
        health.contains("RUNNING") && health.contains("WRITES FAILING"),
        "{health}"
    );
    let (node, secret) = &acked[0];
    let (status, text) = app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node={node}&secret={secret}"),
    );
    assert_eq!((status, text.lines().next()), (200, Some("OK")), "{text}");

    // Crash, free space, restart: every acknowledged registration is there.
    app.kill();
    fs.resize("64m");
    let app = AppServer::start(&dir.0, &cfg, port);
    for (node, secret) in &acked {
        let (status, text) = app.http(
            "POST",
            "/push_appserver/v1/push",
            &format!("node={node}&secret={secret}"),
        );
        assert_eq!(status, 200, "{node}: {text}");
    }
    let (status, text) = app.http(
        "POST",
        "/push_appserver/v1/register",
        "type=fcm&node=later&token=t",
    );
    assert_eq!(status, 200, "writes work again: {text}");
    drop(app);
}
