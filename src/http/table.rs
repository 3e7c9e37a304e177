//! The bounded table of open HTTP connections. At the bound a new
//! connection evicts the oldest one still waiting for its request head,
//! so idle and slow clients can never lock real ones out; connections
//! whose request is being served are never evicted.
//!
//! Eviction drops the entry's sender; the connection's task races its
//! work against the closed channel ([`Slot::cancelled`]) and ends,
//! closing the socket.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use smol::channel::{Receiver, Sender};

#[derive(Debug)]
struct Entry {
    busy: Arc<AtomicBool>,
    _cancel: Sender<()>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// By id, which is accept order: the first idle entry is the oldest.
    conns: BTreeMap<u64, Entry>,
    closing: bool,
}

/// Open connections, bounded.
#[derive(Debug)]
pub struct ConnTable {
    max: usize,
    inner: Mutex<Inner>,
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every open connection is serving a request.
    Full,
    /// The API is shutting down.
    Closing,
}

/// What admitting a connection did.
#[derive(Debug)]
pub struct Admitted {
    /// The new connection's place in the table.
    pub slot: Slot,
    /// An idle connection was evicted to make room.
    pub evicted: bool,
}

impl ConnTable {
    /// A table for at most `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnTable {
            max: max.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a new connection, evicting the oldest idle one when full.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, Refused> {
        let mut inner = self.lock();
        if inner.closing {
            return Err(Refused::Closing);
        }
        let mut evicted = false;
        if inner.conns.len() >= self.max {
            if !evict_oldest_idle(&mut inner) {
                return Err(Refused::Full);
            }
            evicted = true;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let (tx, rx) = smol::channel::bounded(1);
        inner.conns.insert(
            id,
            Entry {
                busy: Arc::clone(&busy),
                _cancel: tx,
            },
        );
        Ok(Admitted {
            slot: Slot {
                id,
                busy,
                cancel: rx,
                table: Arc::clone(self),
            },
            evicted,
        })
    }

    /// Closes the oldest idle connection (to free a file descriptor);
    /// false when none is idle.
    pub fn evict_oldest_idle(&self) -> bool {
        evict_oldest_idle(&mut self.lock())
    }

    /// Refuses new connections and closes every idle one; connections
    /// serving a request close after their response.
    pub fn close_idle(&self) {
        let mut inner = self.lock();
        inner.closing = true;
        inner.conns.retain(|_, e| e.busy.load(Ordering::Acquire));
    }

    /// Closes every connection, busy or not.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closing = true;
        inner.conns.clear();
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_closing(&self) -> bool {
        self.lock().closing
    }
}

fn evict_oldest_idle(inner: &mut Inner) -> bool {
    let oldest = inner
        .conns
        .iter()
        .find(|(_, e)| !e.busy.load(Ordering::Acquire))
        .map(|(id, _)| *id);
    match oldest {
        Some(id) => inner.conns.remove(&id).is_some(),
        None => false,
    }
}

/// One connection's place in the table; leaving the table when dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    busy: Arc<AtomicBool>,
    cancel: Receiver<()>,
    table: Arc<ConnTable>,
}

impl Slot {
    /// Marks the connection as serving a request (not evictable) or as
    /// waiting for the next request head (evictable).
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Release);
    }

    /// Resolves when the connection was evicted or the API shut down.
    pub async fn cancelled(&self) {
        // Nothing is ever sent: this returns when the sender is dropped.
        let _ = self.cancel.recv().await;
    }

    /// True once the API is shutting down: close after this response.
    pub fn closing(&self) -> bool {
        self.table.is_closing()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.lock().conns.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    fn is_cancelled(s: &Slot) -> bool {
        future::block_on(future::poll_once(s.cancelled())).is_some()
    }

    #[test]
    fn full_table_evicts_the_oldest_idle_connection_only() {
        let t = ConnTable::new(3);
        let a = t.admit().unwrap().slot;
        let b = t.admit().unwrap().slot;
        let c = t.admit().unwrap().slot;
        a.set_busy(true);
        let d = t.admit().unwrap();
        assert!(d.evicted);
        assert!(!is_cancelled(&a), "busy connections stay");
        assert!(is_cancelled(&b), "the oldest idle one goes");
        assert!(!is_cancelled(&c));
        assert_eq!(t.len(), 3);
        drop(b);
        assert_eq!(t.len(), 3, "an evicted slot is already gone");
        c.set_busy(true);
        d.slot.set_busy(true);
        assert_eq!(t.admit().unwrap_err(), Refused::Full);
        drop(c);
        assert_eq!(t.len(), 2);
        assert!(!t.admit().unwrap().evicted);
    }

    #[test]
    fn shutdown_closes_idle_then_all() {
        let t = ConnTable::new(10);
        let a = t.admit().unwrap().slot;
        let b = t.admit().unwrap().slot;
        b.set_busy(true);
        t.close_idle();
        assert!(is_cancelled(&a) && !is_cancelled(&b));
        assert!(b.closing());
        assert_eq!(t.admit().unwrap_err(), Refused::Closing);
        t.close_all();
        assert!(is_cancelled(&b));
        drop((a, b));
        assert!(t.is_empty());
    }
}
