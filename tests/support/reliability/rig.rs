//! The app server under the power-loss shim (`powerloss.c`): a data dir,
//! its durable image, a fake XMPP server that stays up across restarts,
//! and the simulated power loss.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::harness::*;

/// Compiles the shim once per test binary; its path.
pub fn shim() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reliability/powerloss.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libpowerloss.so");
        let tmp = out.with_extension(format!("so.{}", std::process::id()));
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = Command::new(&cc)
            .args([
                "-shared",
                "-fPIC",
                "-O2",
                "-Wall",
                "-Wno-format-truncation",
                "-o",
            ])
            .arg(&tmp)
            .arg(&src)
            .arg("-ldl")
            .status()
            .unwrap_or_else(|e| panic!("{cc} (a C compiler builds the power-loss shim): {e}"));
        assert!(status.success(), "compiling {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
    .clone()
}

/// What the shim lets through to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Every fsync, as the server does it.
    On,
    /// The store's fsyncs (files and directories) are no-ops.
    StoreOff,
    /// Directory fsyncs are no-ops: new names never become durable.
    DirsOff,
}

/// One app server setup: a data dir, its durable image, a fake XMPP server
/// that stays up across restarts.
pub struct Rig {
    pub dir: TempDir,
    pub xmpp: FakeXmpp,
    pub data: PathBuf,
    pub image: PathBuf,
}

impl Rig {
    pub fn new(tag: &str) -> Rig {
        let dir = TempDir::new(tag);
        let data = dir.path("data");
        let image = dir.path("image");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&image).unwrap();
        Rig {
            data: data.canonicalize().unwrap(),
            image: image.canonicalize().unwrap(),
            dir,
            xmpp: FakeXmpp::new(),
        }
    }

    /// Starts the server under the shim and accepts its component
    /// connection.
    pub fn start(&self, sync: Sync) -> (AppServer, Conn) {
        let app = self.spawn(sync);
        let conn = self.xmpp.accept(Duration::from_secs(20));
        (app, conn)
    }

    /// Starts the server and kills it within `ms` milliseconds, while it
    /// opens (or recovers) the store; drops any connection it made.
    pub fn crash_while_starting(&self, ms: u64) {
        let mut app = self.spawn(Sync::On);
        std::thread::sleep(Duration::from_millis(ms));
        app.child.kill().unwrap();
        app.child.wait().unwrap();
        self.xmpp.listener.set_nonblocking(true).unwrap();
        while self.xmpp.listener.accept().is_ok() {}
    }

    fn spawn(&self, sync: Sync) -> AppServer {
        let http_port = free_port();
        let cfg = self.dir.write(
            "config.toml",
            format!(
                "data_dir = \"{data}\"\nrate_limit = 0\nlog_level = \"info\"\n\
                 [http]\nlisten = \"127.0.0.1:{http_port}\"\nrequests_per_second = 100000\n\
                 [[component]]\njid = \"push.example.org\"\nserver = \"127.0.0.1:{xmpp}\"\n\
                 secret = \"{SECRET}\"\ntypes = [\"fcm\"]\n\
                 [app.fcm]\nprovider = \"log\"\nfile = \"{pushes}\"\n\
                 [registrations]\nmax_per_jid = 1000\nmax_per_domain = 1000000\n\
                 commands_per_minute_per_jid = 1000000\ncommands_per_minute_per_domain = 16000000\n\
                 new_per_minute = 16000000\n",
                data = self.data.display(),
                xmpp = self.xmpp.port,
                pushes = self.dir.path("pushes.jsonl").display(),
            ),
        );
        let stderr_path = self.dir.path(&format!("stderr-{}.log", fastrand::u32(..)));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_push-appserver"));
        cmd.args(["run", "--config"])
            .arg(&cfg)
            .env("LD_PRELOAD", shim())
            .env("POWERLOSS_ROOT", &self.data)
            .env("POWERLOSS_IMAGE", &self.image)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        match sync {
            Sync::On => {}
            Sync::StoreOff => {
                cmd.env("POWERLOSS_NOSYNC_UNDER", self.data.join("store"));
            }
            Sync::DirsOff => {
                cmd.env("POWERLOSS_NODIRSYNC", "1");
            }
        }
        AppServer {
            child: cmd.spawn().unwrap(),
            dir: self.dir.0.clone(),
            http_port,
            stderr_path,
        }
    }

    /// After a `kill -9`: the machine loses power too, so the data dir
    /// becomes what was made durable. (`cp` keeps the 64 MiB preallocated
    /// journal sparse; the shim's unfinished copies are dropped.)
    pub fn lose_power(&self) {
        std::fs::remove_dir_all(&self.data).unwrap();
        // Synced files that never got a durable name are orphans now.
        let _ = std::fs::remove_dir_all(self.image.with_extension("pending"));
        let status = Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(&self.image)
            .arg(&self.data)
            .status()
            .expect("cp");
        assert!(status.success());
        let status = Command::new("find")
            .arg(&self.data)
            .args(["-name", "*.powerloss-tmp", "-delete"])
            .status()
            .expect("find");
        assert!(status.success());
    }
}
