//! The store opened in the background, after the listeners: fjall replays
//! its whole active journal at every open (up to its 64 MB rotation, about
//! 1.5 s on a small host; BENCHMARKS.md, "Start-up profile"), and a start
//! that waited for that would keep `/health` and the component links down
//! for as long. Pushes and registrations that arrive meanwhile wait at
//! this gate (bounded by [`OPEN_WAIT`]); a failed open ends the server
//! with the same error a failed start gave before.
//!
//! Only a store with a server key on disk opens this way: the key is read
//! at once (the services derive their keys from it at start) and checked
//! against the store when it is open. A first start opens in the
//! foreground (there is nothing to replay), and so does `--reset-secrets`'
//! recording of a new key, which flushes and closes the store before the
//! server opens it as usual.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::StoreError;

/// Longest a push or registration waits for the store to open before it
/// is answered with [`StoreError::Opening`].
pub const OPEN_WAIT: Duration = Duration::from_secs(30);

/// Where the open stands.
#[derive(Debug)]
enum State {
    Opening,
    Open,
    /// The error, until [`Gate::failure`] takes it for the exit.
    Failed(Option<StoreError>),
}

/// The gate: closed while the store opens, then open or failed for good.
#[derive(Debug)]
pub(super) struct Gate {
    /// Set once the store is open: the check every push makes, without
    /// the lock.
    open: AtomicBool,
    state: Mutex<State>,
    /// Closed (its sender dropped) when the open ends either way.
    ended: smol::channel::Receiver<()>,
}

/// Held by the opener; dropping it wakes every waiter.
#[derive(Debug)]
pub(super) struct Opener(#[allow(dead_code)] smol::channel::Sender<()>);

impl Gate {
    /// A gate for a store already open.
    pub(super) fn open() -> Gate {
        let (_, ended) = smol::channel::bounded(1);
        Gate {
            open: AtomicBool::new(true),
            state: Mutex::new(State::Open),
            ended,
        }
    }

    /// A gate for a store being opened; the opener ends it with
    /// [`Gate::finish`].
    pub(super) fn opening() -> (Gate, Opener) {
        let (tx, ended) = smol::channel::bounded(1);
        let gate = Gate {
            open: AtomicBool::new(false),
            state: Mutex::new(State::Opening),
            ended,
        };
        (gate, Opener(tx))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how the open ended and wakes every waiter.
    pub(super) fn finish(&self, opener: Opener, result: Result<(), StoreError>) {
        let open = result.is_ok();
        *self.state() = match result {
            Ok(()) => State::Open,
            Err(e) => State::Failed(Some(e)),
        };
        self.open.store(open, Ordering::Release);
        drop(opener);
    }

    /// True while the store is being opened.
    pub(super) fn is_opening(&self) -> bool {
        matches!(*self.state(), State::Opening)
    }

    /// The error for an operation tried now, if the store is not open.
    pub(super) fn refusal(&self) -> Option<StoreError> {
        if self.open.load(Ordering::Acquire) {
            return None;
        }
        match &*self.state() {
            State::Open => None,
            State::Opening => Some(StoreError::Opening),
            State::Failed(_) => Some(StoreError::Unavailable),
        }
    }

    /// Waits until the open has ended, at most `limit`.
    async fn ended_within(&self, limit: Duration) {
        async {
            let _ = self.ended.recv().await;
        }
        .or(async {
            async_io::Timer::after(limit).await;
        })
        .await;
    }

    /// Waits until the store is open, at most `limit`.
    pub(super) async fn ready(&self, limit: Duration) -> Result<(), StoreError> {
        if let Some(e) = self.refusal() {
            if !matches!(e, StoreError::Opening) {
                return Err(e);
            }
            self.ended_within(limit).await;
        }
        self.refusal().map_or(Ok(()), Err)
    }

    /// Blocks the calling thread until the open has ended, at most
    /// `limit` (for the final sync of a server stopped while its store was
    /// still opening); whether it ended.
    pub(super) fn wait_blocking(&self, limit: Duration) -> bool {
        futures_lite::future::block_on(self.ended_within(limit));
        !self.is_opening()
    }

    /// Resolves with the open's error if it fails; never if it succeeds.
    pub(super) async fn failure(&self) -> StoreError {
        let _ = self.ended.recv().await;
        match &mut *self.state() {
            State::Failed(e) => return e.take().unwrap_or(StoreError::Unavailable),
            // The opener ended without a word: it panicked.
            State::Opening => return StoreError::Unavailable,
            State::Open => {}
        }
        futures_lite::future::pending().await
    }
}

/// Debug builds only: a test holds the background open until the file
/// named by `PA_TEST_HOLD_STORE_OPEN` exists (at most a minute), to see
/// the server while its store opens. Release builds have no such hook.
#[cfg(debug_assertions)]
pub(super) fn hold_for_tests() {
    let Some(release) = std::env::var_os("PA_TEST_HOLD_STORE_OPEN") else {
        return;
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(&release).exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Logs how long an open took and why: fjall reads its whole active
/// journal (its file is preallocated, so its size says little) and keeps
/// in memtables (`in_memory` bytes) what was not yet in the disk tables.
pub(super) fn log_opened(started: Instant, in_memory: u64, in_background: bool) {
    let ms = started.elapsed().as_millis();
    let in_memory = in_memory as f64 / (1024.0 * 1024.0);
    let meanwhile = if in_background {
        "; /health and the links answered meanwhile, pushes and registrations waited"
    } else {
        ""
    };
    log::info!(
        "store: open in {ms} ms (its journal read, {in_memory:.1} MiB of it replayed into \
         memory{meanwhile})"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_when_the_open_ends() {
        let (gate, opener) = Gate::opening();
        let gate = std::sync::Arc::new(gate);
        assert!(gate.is_opening());
        assert!(matches!(gate.refusal(), Some(StoreError::Opening)));
        let g = std::sync::Arc::clone(&gate);
        let waiter = std::thread::spawn(move || {
            futures_lite::future::block_on(g.ready(Duration::from_secs(60)))
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "a waiter waits while the store opens"
        );
        gate.finish(opener, Ok(()));
        assert!(waiter.join().unwrap().is_ok());
        assert!(!gate.is_opening());
        assert!(gate.refusal().is_none());
    }

    #[test]
    fn a_wait_is_bounded() {
        let (gate, _opener) = Gate::opening();
        let r = futures_lite::future::block_on(gate.ready(Duration::from_millis(20)));
        assert!(matches!(r, Err(StoreError::Opening)));
    }

    #[test]
    fn a_failed_open_is_reported_once_then_unavailable() {
        let (gate, opener) = Gate::opening();
        gate.finish(opener, Err(StoreError::SchemaTooNew(99)));
        let e = futures_lite::future::block_on(gate.failure());
        assert!(matches!(e, StoreError::SchemaTooNew(99)));
        let r = futures_lite::future::block_on(gate.ready(Duration::from_secs(1)));
        assert!(matches!(r, Err(StoreError::Unavailable)));
    }

    #[test]
    fn an_open_store_never_reports_a_failure() {
        let gate = Gate::open();
        let r = futures_lite::future::block_on(async { Some(gate.failure().await) }.or(async {
            async_io::Timer::after(Duration::from_millis(30)).await;
            None
        }));
        assert!(r.is_none());
    }
}
