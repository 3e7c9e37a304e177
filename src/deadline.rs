//! Coarse deadlines for waits that almost never expire: a provider's
//! answer, an HTTP/2 request. Each `async_io::Timer` registers with the
//! reactor when first polled, and every registration notifies the reactor
//! (an eventfd write and an extra `epoll_wait` round, with its re-arming
//! system calls): two of them per push was a measurable share of a push's
//! CPU through Prosody (BENCHMARKS.md, "Real path"). Here one shared
//! ticker task, running only while some deadline is pending, checks them
//! every [`TICK`]: a deadline fires at most one tick late, and a wait that
//! ends in time costs a map insert and a remove.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often pending deadlines are checked, and so how late one may fire.
pub const TICK: Duration = Duration::from_millis(100);

/// A future that completes at `at`, or up to one [`TICK`] after it.
pub fn sleep_until(at: Instant) -> Expiry {
    Expiry { at, id: None }
}

/// A future that completes after `d`, or up to one [`TICK`] later.
pub fn sleep(d: Duration) -> Expiry {
    // A limit too far away to represent never fires.
    let at = Instant::now()
        .checked_add(d)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
    sleep_until(at)
}

/// See [`sleep_until`]. Dropping it withdraws the deadline.
#[derive(Debug)]
pub struct Expiry {
    at: Instant,
    /// Set once registered with the ticker.
    id: Option<u64>,
}

#[derive(Default)]
struct Pending {
    waiting: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// The ticker task while it sleeps because nothing is pending.
    idle_ticker: Option<Waker>,
    ticker_started: bool,
}

fn pending() -> std::sync::MutexGuard<'static, Pending> {
    static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();
    PENDING
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl Future for Expiry {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.withdraw();
            return Poll::Ready(());
        }
        let mut p = pending();
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = p.next_id;
                p.next_id += 1;
                self.id = Some(id);
                id
            }
        };
        match p.waiting.get_mut(&(self.at, id)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                p.waiting.insert((self.at, id), cx.waker().clone());
            }
        }
        if let Some(ticker) = p.idle_ticker.take() {
            ticker.wake();
        }
        if !p.ticker_started {
            p.ticker_started = true;
            smol::spawn(tick()).detach();
        }
        Poll::Pending
    }
}

impl Expiry {
    fn withdraw(&mut self) {
        if let Some(id) = self.id.take() {
            pending().waiting.remove(&(self.at, id));
        }
    }
}

impl Drop for Expiry {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// The ticker: wakes what is due every tick while anything is pending,
/// and sleeps without a timer while nothing is.
async fn tick() {
    loop {
        let (due, has_pending) = {
            let mut p = pending();
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = p.waiting.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            (due, !p.waiting.is_empty())
        };
        // Woken outside the lock: a waker may run code that sets a deadline.
        due.into_iter().for_each(Waker::wake);
        if has_pending {
            async_io::Timer::after(TICK).await;
        } else {
            idle().await;
        }
    }
}

/// Pending until the ticker's waker, stored in `idle_ticker`, is woken.
async fn idle() {
    let mut first = true;
    std::future::poll_fn(|cx| {
        if first {
            first = false;
            let mut p = pending();
            if p.waiting.is_empty() {
                p.idle_ticker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::FutureExt;

    #[test]
    fn fires_at_its_deadline_never_before() {
        smol::block_on(async {
            let start = Instant::now();
            sleep(Duration::from_millis(150)).await;
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(150), "{took:?}");
            // A hang bound only: how close to the deadline it fires is a
            // figure for the benchmarks, which a busy machine can miss.
            assert!(took < Duration::from_secs(10), "{took:?}");
        });
    }

    #[test]
    fn a_wait_that_ends_first_withdraws_its_deadline() {
        smol::block_on(async {
            // Other tests share the map: look for this deadline only.
            let at = Instant::now() + Duration::from_secs(3_600 + u64::from(fastrand::u16(..)));
            let registered = || pending().waiting.keys().any(|(t, _)| *t == at);
            let won = async {
                async_io::Timer::after(Duration::from_millis(10)).await;
                registered()
            }
            .or(async {
                sleep_until(at).await;
                false
            })
            .await;
            assert!(won, "the deadline was registered while waiting");
            assert!(!registered(), "and withdrawn when the wait ended");
            // The ticker may have gone idle since; a new deadline wakes it.
            sleep(Duration::from_millis(50)).await;
        });
    }

    #[test]
    fn many_deadlines_fire_in_order_of_time() {
        smol::block_on(async {
            let start = Instant::now();
            let waits = (1..=5u64).map(|i| {
                smol::spawn(async move {
                    sleep(Duration::from_millis(60 * i)).await;
                    start.elapsed()
                })
            });
            let mut took = Vec::new();
            for w in waits.collect::<Vec<_>>() {
                took.push(w.await);
            }
            for (i, t) in took.iter().enumerate() {
                assert!(*t >= Duration::from_millis(60 * (i as u64 + 1)), "{took:?}");
            }
        });
    }
}
