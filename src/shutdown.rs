//! A shutdown signal shared by the parts that serve peers (component links,
//! the HTTP API): one side triggers it with a grace period, every clone can
//! check it or await it, and read the deadline by which work in flight
//! must be finished or answered.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};

/// Cloneable trigger and awaitable. Nothing is ever sent on the channel:
/// closing it wakes every waiter at once, and stays visible afterwards.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Sender<()>,
    rx: Receiver<()>,
    deadline: Arc<OnceLock<Instant>>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        let (tx, rx) = smol::channel::bounded(1);
        Shutdown {
            tx,
            rx,
            deadline: Arc::new(OnceLock::new()),
        }
    }

    /// Starts the shutdown: work in flight has `grace` to finish. Later
    /// calls change nothing.
    pub fn trigger(&self, grace: Duration) {
        // The deadline is set before waiters wake, so they always see it.
        let _ = self.deadline.set(Instant::now() + grace);
        self.tx.close();
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.rx.is_closed()
    }

    /// Returns once the shutdown has started.
    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }

    /// When work in flight must be finished, once triggered.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::FutureExt;

    #[test]
    fn every_clone_sees_the_trigger_and_the_deadline() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.is_triggered());
        assert_eq!(c.deadline(), None);
        let waited = smol::block_on(
            async {
                c.wait().await;
                true
            }
            .or(async {
                async_io::Timer::after(Duration::from_millis(20)).await;
                false
            }),
        );
        assert!(!waited, "wait returns only after the trigger");
        let before = Instant::now();
        s.trigger(Duration::from_secs(5));
        s.trigger(Duration::from_secs(50));
        assert!(c.is_triggered());
        smol::block_on(c.wait());
        let d = c.deadline().unwrap();
        assert!(d >= before + Duration::from_secs(5) && d < before + Duration::from_secs(6));
    }
}
