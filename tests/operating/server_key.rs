//! The server key from the outside: a lost or swapped `data_dir/server.key`
//! next to a store with registrations refuses the start (and is not
//! recreated), the original key brings everything back, and
//! `--reset-secrets` starts with a new key only when asked, loudly.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::harness::*;

/// Runs `push-appserver run --config ... <extra>` and expects it to exit
/// by itself within 10 s; returns (exit code, stderr).
fn run_to_exit(dir: &Path, extra: &[&str]) -> (i32, String) {
    let err_path = dir.join(format!("refused-{}.log", fastrand::u32(..)));
    let mut child = Command::new(env!("CARGO_BIN_EXE_push-appserver"))
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not refuse to start: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn register(app: &AppServer, node: &str) -> String {
    let (s, b) = app.http(
        "POST",
        "/push_appserver/v1/register",
        &format!("type=fcm&node={node}&token=tok-{node}"),
    );
    assert_eq!(s, 200, "{b}");
    b.lines().nth(2).unwrap().to_owned()
}

fn push(app: &AppServer, node: &str, secret: &str) -> (u16, String) {
    app.http(
        "POST",
        "/push_appserver/v1/push",
        &format!("node={node}&secret={secret}"),
    )
}

#[test]
fn a_lost_or_swapped_server_key_refuses_the_start_until_restored_or_reset() {
    let dir = TempDir::new("serverkey");
    let port = free_port();
    let cfg = config(&dir.0, free_port(), port, "", "");
    let key_path = dir.0.join("data").join("server.key");

    // A fresh data dir: the key is created, 32 bytes, mode 0600.
    let mut app = AppServer::start(&dir.0, &cfg, port);
    let secret = register(&app, "n1");
    let original = std::fs::read(&key_path).unwrap();
    assert_eq!(original.len(), 32);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    app.kill();

    // A backup that restored only the store: refused, key not recreated.
    std::fs::remove_file(&key_path).unwrap();
    let (code, err) = run_to_exit(&dir.0, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("server.key") && err.contains("missing") && err.contains("--reset-secrets"),
        "the message says what happened and how to recover: {err}"
    );
    assert!(!key_path.exists(), "server.key was not silently recreated");

    // Another key: refused too, and left as it is.
    std::fs::write(&key_path, [9u8; 32]).unwrap();
    let (code, err) = run_to_exit(&dir.0, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("server.key")
            && err.contains("not the key")
            && err.contains("--reset-secrets"),
        "{err}"
    );
    assert_eq!(std::fs::read(&key_path).unwrap(), [9u8; 32]);

    // The original key restored: the old secret pushes again.
    std::fs::write(&key_path, &original).unwrap();
    let mut app = AppServer::start(&dir.0, &cfg, port);
    let (s, b) = push(&app, "n1", &secret);
    assert_eq!((s, b.lines().next()), (200, Some("OK")), "{b}");
    app.kill();

    // Lost again, and reset on purpose: starts with a new key, says so
    // loudly, and the old secret no longer verifies.
    std::fs::remove_file(&key_path).unwrap();
    let mut app = AppServer::start_with(&dir.0, &cfg, port, &["--reset-secrets"]);
    let (s, b) = push(&app, "n1", &secret);
    assert_eq!((s, b.lines().next()), (403, Some("ERROR")), "{b}");
    let err = app.stderr();
    assert!(
        err.contains("WARN") && err.contains("EVERY EXISTING PUSH SECRET IS NOW INVALID"),
        "{err}"
    );
    let new_key = std::fs::read(&key_path).unwrap();
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, original);
    let fresh = register(&app, "n1");
    assert_ne!(fresh, secret);
    app.kill();

    // The reset is recorded: an ordinary start accepts the new key.
    let app = AppServer::start(&dir.0, &cfg, port);
    let (s, b) = push(&app, "n1", &fresh);
    assert_eq!(s, 200, "{b}");
}
