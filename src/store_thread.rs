//! One thread for store writes that wait on fsync. Registration writes are
//! serialized by the store anyway, so a pool (and its per-thread memory)
//! buys nothing; async tasks hand the work over and await the answer.

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the store thread; clone freely.
#[derive(Debug, Clone)]
pub struct StoreThread {
    jobs: mpsc::Sender<Job>,
}

impl StoreThread {
    /// Starts the thread. It ends when every handle is dropped.
    pub fn start() -> StoreThread {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .expect("spawn the store thread");
        StoreThread { jobs }
    }

    /// Runs `f` on the store thread and awaits its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = smol::channel::bounded(1);
        let job: Job = Box::new(move || {
            let started = std::time::Instant::now();
            let out = f();
            crate::metrics::global().store_write(started.elapsed());
            let _ = tx.send_blocking(out);
        });
        self.jobs
            .send(job)
            .expect("the store thread lives as long as its handles");
        rx.recv().await.expect("the store thread answers every job")
    }
}
