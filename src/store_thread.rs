//! One thread for store writes that wait on fsync, and one for the reads
//! of pushes that miss the record cache. Registration writes are
//! serialized by the store anyway, so a pool (and its per-thread memory)
//! buys nothing; async tasks hand the work over and await the answer.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_lite::FutureExt;

type Job = Box<dyn FnOnce() + Send>;

/// Jobs waiting at most for [`StoreThread::run_within`]: past them a
/// request is refused at once instead of queued behind a slow disk.
pub const MAX_QUEUED: usize = 1024;

/// The store thread could not take a job in time: too many were waiting,
/// or the deadline passed before it started (then it never runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Handle to the store thread; clone freely.
#[derive(Debug, Clone)]
pub struct StoreThread {
    jobs: mpsc::Sender<Job>,
    /// Jobs queued and not started yet.
    queued: Arc<AtomicUsize>,
    /// Its jobs are writes, timed in the store-write metric.
    writes: bool,
}

impl StoreThread {
    /// Starts the thread for store writes. It ends when every handle is
    /// dropped.
    pub fn start() -> StoreThread {
        Self::spawn("store-writer", true)
    }

    /// Starts a thread for store reads that may wait on the disk (a
    /// record not in the record cache), so that they never hold the
    /// executor: on an SD card such a read takes milliseconds.
    pub fn reader() -> StoreThread {
        Self::spawn("store-reader", false)
    }

    fn spawn(name: &str, writes: bool) -> StoreThread {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .expect("spawn the store thread");
        StoreThread {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            writes,
        }
    }

    /// Runs `f` on the store thread and awaits its result, unless
    /// [`MAX_QUEUED`] jobs wait already or `deadline` passes before `f`
    /// starts (then `f` never runs). Once started, `f` is awaited to its
    /// end: a started write is never left unanswered.
    pub async fn run_within<T: Send + 'static>(
        &self,
        deadline: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        if self.queued.load(Ordering::Acquire) >= MAX_QUEUED {
            return Err(Busy);
        }
        let (tx, rx) = smol::channel::bounded(1);
        let abandoned = Arc::new(AtomicBool::new(false));
        let (queued, gave_up) = (Arc::clone(&self.queued), Arc::clone(&abandoned));
        let writes = self.writes;
        self.queued.fetch_add(1, Ordering::AcqRel);
        let job: Job = Box::new(move || {
            queued.fetch_sub(1, Ordering::AcqRel);
            // Decided under the same flag the caller reads: either the
            // caller gave up first and this never runs, or it runs and the
            // caller waits for it.
            if gave_up.swap(true, Ordering::AcqRel) {
                return;
            }
            let t = std::time::Instant::now();
            let out = f();
            if writes {
                crate::metrics::global().store_write(t.elapsed());
            }
            let _ = tx.send_blocking(out);
        });
        self.jobs
            .send(job)
            .expect("the store thread lives as long as its handles");
        let answer = async { rx.recv().await.ok() }
            .or(async {
                async_io::Timer::after(deadline).await;
                if abandoned.swap(true, Ordering::AcqRel) {
                    // It started meanwhile: wait for its answer.
                    rx.recv().await.ok()
                } else {
                    None
                }
            })
            .await;
        answer.ok_or(Busy)
    }

    /// Runs `f` on the store thread and awaits its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = smol::channel::bounded(1);
        let writes = self.writes;
        let job: Job = Box::new(move || {
            let started = std::time::Instant::now();
            let out = f();
            if writes {
                crate::metrics::global().store_write(started.elapsed());
            }
            let _ = tx.send_blocking(out);
        });
        self.jobs
            .send(job)
            .expect("the store thread lives as long as its handles");
        rx.recv().await.expect("the store thread answers every job")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_cannot_start_in_time_is_refused_and_never_runs() {
        smol::block_on(async {
            let t = StoreThread::start();
            let (release, wait) = std::sync::mpsc::channel::<()>();
            // Hold the thread.
            let holder = t.clone();
            let hold = smol::spawn(async move {
                holder
                    .run(move || {
                        let _ = wait.recv_timeout(Duration::from_secs(10));
                    })
                    .await
            });
            async_io::Timer::after(Duration::from_millis(50)).await;
            let ran = Arc::new(AtomicBool::new(false));
            let r = Arc::clone(&ran);
            let got = t
                .run_within(Duration::from_millis(100), move || {
                    r.store(true, Ordering::SeqCst)
                })
                .await;
            assert_eq!(got, Err(Busy));
            release.send(()).unwrap();
            hold.await;
            // The thread is free again: a later job runs, the refused one never did.
            assert_eq!(t.run_within(Duration::from_secs(10), || 7).await, Ok(7));
            assert!(!ran.load(Ordering::SeqCst));
        });
    }
}
