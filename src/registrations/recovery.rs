//! Writes recover by themselves after a failure (a full disk, an I/O
//! error). fjall poisons itself when a journal write or fsync fails and
//! then refuses every write until it is reopened; reads go on. So a failed
//! synced write wakes [`watch`], which retries on a timer: it waits until
//! the file system has room (a `statvfs` check, so a reopen that cannot
//! succeed never interrupts reads), then tries a synced probe write on the
//! engine as it is, and reopens the engine only if that fails. Acknowledged
//! writes were synced before they were acknowledged, and the reopen replays
//! the journal, so nothing acknowledged is lost.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fjall::{KeyspaceCreateOptions, PersistMode};

use super::{Registrations, StoreError};
use crate::backoff::Backoff;
use crate::clock::unix_millis;
use crate::store_thread::StoreThread;

/// Free space the file system needs before a retry: enough for a journal
/// segment and the engine's metadata files, small enough for a tiny disk.
pub const MIN_FREE_BYTES: u64 = 256 * 1024;

/// How often the free space is checked while the disk is full (cheap).
const ROOM_POLL: Duration = Duration::from_secs(1);

/// Retries that found room but still failed back off from 1 s to 30 s.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The retry's state, inside [`Registrations`].
#[derive(Debug)]
pub(super) struct Recovery {
    wake: smol::channel::Sender<()>,
    woken: smol::channel::Receiver<()>,
    /// What the retry waits for, for the health page.
    note: Mutex<Option<String>>,
}

impl Recovery {
    pub(super) fn new() -> Recovery {
        let (wake, woken) = smol::channel::bounded(1);
        Recovery {
            wake,
            woken,
            note: Mutex::new(None),
        }
    }

    /// A write failed: wake the retry (a wake-up already pending is enough).
    pub(super) fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    fn set_note(&self, note: Option<String>) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note;
    }
}

/// What one recovery attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Writes work; nothing to do.
    Healthy,
    /// The file system has less than [`MIN_FREE_BYTES`] free: not tried.
    NoRoom {
        /// Bytes available.
        free: u64,
    },
    /// Writes work again; `reopened`: the engine had to be reopened.
    Recovered {
        /// Whether the engine was closed and opened again.
        reopened: bool,
    },
    /// Tried and failed; the reason.
    Failed(String),
}

/// Bytes available to the server's user on the file system of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Registrations {
    /// What the retry of failed writes is waiting for, if it runs.
    pub fn recovery_note(&self) -> Option<String> {
        self.recovery
            .note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One attempt to make writes work again after a failure: checks the
    /// free space, probes the engine with a synced write, and reopens it
    /// only if the probe fails. Blocking; run it on the store thread.
    pub fn try_recover(&self) -> Step {
        if self.write_error().is_none() && self.store().is_ok() {
            self.recovery.set_note(None);
            return Step::Healthy;
        }
        match free_bytes(&self.dir) {
            Ok(free) if free < MIN_FREE_BYTES => {
                self.recovery.set_note(Some(format!(
                    "waiting for free space: {} KiB free, {} KiB needed",
                    free / 1024,
                    MIN_FREE_BYTES / 1024
                )));
                return Step::NoRoom { free };
            }
            Ok(_) => {}
            // Cannot tell: try anyway, the backoff bounds the cost.
            Err(e) => log::debug!("statvfs {}: {e}", self.dir.display()),
        }
        if self.probe().is_ok() {
            self.recovery.set_note(None);
            return Step::Recovered { reopened: false };
        }
        let result = self.reopen().and_then(|()| self.probe());
        match result {
            Ok(()) => {
                self.recovery.set_note(None);
                Step::Recovered { reopened: true }
            }
            Err(e) => {
                let reason = e.to_string();
                self.recovery
                    .set_note(Some(format!("the last retry failed: {reason}")));
                Step::Failed(reason)
            }
        }
    }

    /// A tiny synced write, through [`Registrations::commit`] so the
    /// write error is cleared when it works.
    fn probe(&self) -> Result<(), StoreError> {
        let _guard = self.lock();
        let st = self.store()?;
        let meta = st.db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let mut batch = st.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(
            &meta,
            "write_probe",
            unix_millis(SystemTime::now()).to_string(),
        );
        self.commit(batch, [])
    }
}

/// Runs for as long as the server: after each failed write, retries until
/// writes work again, checking for room every second and backing off from
/// 1 s to 30 s between attempts that fail with room available.
pub async fn watch(regs: Arc<Registrations>, store_thread: StoreThread) {
    let woken = regs.recovery.woken.clone();
    while woken.recv().await.is_ok() {
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_CAP);
        let mut wait = ROOM_POLL;
        let mut announced = false;
        loop {
            async_io::Timer::after(wait).await;
            let r = Arc::clone(&regs);
            let step = store_thread.run(move || r.try_recover()).await;
            match step {
                Step::Healthy => break,
                Step::Recovered { reopened } => {
                    log::warn!(
                        "store: writes work again{}; registrations are accepted",
                        if reopened { " (engine reopened)" } else { "" }
                    );
                    break;
                }
                Step::NoRoom { free } => {
                    if !announced {
                        log::warn!(
                            "store: writes fail and the disk has {} KiB free; retrying once \
                             {} KiB are free",
                            free / 1024,
                            MIN_FREE_BYTES / 1024
                        );
                        announced = true;
                    }
                    wait = ROOM_POLL;
                }
                Step::Failed(reason) => {
                    wait = backoff.next_delay(fastrand::f64());
                    log::warn!(
                        "store: writes still fail ({reason}); next retry in {:.1}s",
                        wait.as_secs_f64()
                    );
                }
            }
        }
    }
}
