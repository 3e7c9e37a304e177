//! A full disk: registrations fail with a clear error, pushes for existing
//! devices go on, health shows it; once space is freed, writes work again
//! within seconds without a restart, and every acknowledged registration is
//! still there after a `kill -9` and a restart. The data dir is a 2 MiB
//! tmpfs, so this test needs root (as in CI) and `mount`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::harness::*;

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

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        for _ in 0..1024 {
            if f.write_all(&chunk).and_then(|()| f.sync_all()).is_err() {
                return path;
            }
        }
        panic!("2 MiB tmpfs never filled up");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Registers `node` with a token of its own (`token` and the node: one
/// token serves a bounded number of registrations).
fn register(app: &AppServer, node: &str, token: &str) -> (u16, String) {
    app.http(
        "POST",
        "/push_appserver/v1/register",
        &format!("type=fcm&node={node}&token={token}-{node}"),
    )
}

fn secret_of(text: &str) -> String {
    text.lines().nth(2).unwrap().to_owned()
}

#[test]
fn full_disk_refuses_registrations_keeps_pushing_and_recovers_without_restart() {
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
    for i in 0..30 {
        let node = format!("node{i}");
        let (status, text) = register(&app, &node, "t");
        assert_eq!(status, 200, "{text}");
        acked.push((node, secret_of(&text)));
    }

    // Fill the disk: the next registrations are refused cleanly (a few may
    // still fit in pages the journal already holds).
    let filler = fs.fill();
    let mut refusal = None;
    for i in 0..500 {
        let node = format!("full{i}");
        let (status, text) = register(&app, &node, &"t".repeat(1000));
        if status == 200 {
            acked.push((node, secret_of(&text)));
        } else {
            refusal = Some((status, text));
            break;
        }
    }
    let (status, text) = refusal.expect("a full disk refuses registrations");
    assert_eq!(status, 500);
    assert_eq!(text, "ERROR\nregistration store unavailable\n");

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
    let (status, _) = register(&app, "still-full", "t");
    assert_eq!(status, 500, "refused while the disk stays full");

    // The retry runs meanwhile, finds no room and leaves the engine (and
    // the reads pushes need) alone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, health) = app.http("GET", "/push_appserver/v1/health", "");
        if health.contains("waiting for free space") {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (node, secret) = &acked[1];
    let (status, text) = app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node={node}&secret={secret}"),
    );
    assert_eq!(status, 200, "{text}");

    // Space freed: registrations work again within seconds, no restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let text = loop {
        let (status, text) = register(&app, "later", "t");
        if status == 200 {
            break text;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(60),
            "writes did not recover within 60 s: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "writes recovered {:?} after the space was freed",
        freed.elapsed()
    );
    acked.push(("later".into(), secret_of(&text)));
    let (_, health) = app.http("GET", "/push_appserver/v1/health", "");
    assert!(
        !health.contains("WRITES FAILING") && health.contains("writes ok"),
        "{health}"
    );
    for i in 0..5 {
        let node = format!("after{i}");
        let (status, text) = register(&app, &node, "t");
        assert_eq!(status, 200, "{text}");
        acked.push((node, secret_of(&text)));
    }

    // Crash and restart: every acknowledged registration is there.
    app.kill();
    let app = AppServer::start(&dir.0, &cfg, port);
    for (node, secret) in &acked {
        let (status, text) = app.http(
            "POST",
            "/push_appserver/v1/push",
            &format!("node={node}&secret={secret}"),
        );
        assert_eq!(status, 200, "{node}: {text}");
    }
    let (status, text) = register(&app, "restarted", "t");
    assert_eq!(status, 200, "writes work after the restart: {text}");
    drop(app);
}
