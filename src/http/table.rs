//! The bounded table of open HTTP connections. At the bound a new
//! connection evicts the oldest one whose request is not complete yet
//! (idle, or still sending its head or body), so idle and slow clients can
//! never lock real ones out; connections whose request is being served
//! are never evicted.
//!
//! Eviction drops the entry's sender; the connection's task races its
//! work against the closed channel ([`Slot::cancelled`]) and ends,
//! closing the socket.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use smol::channel::{Receiver, Sender};

/// Where a connection is in its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for (or reading) the next request head: evictable, and
    /// closed at once at shutdown.
    Idle = 0,
    /// The head is in, the body is arriving: evictable (a client can
    /// withhold a body as long as a head), but given the grace at
    /// shutdown.
    Receiving = 1,
    /// The request is complete and being answered: never evicted.
    Serving = 2,
}

#[derive(Debug)]
struct Entry {
    phase: Arc<AtomicU8>,
    _cancel: Sender<()>,
}

impl Entry {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }
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
        let phase = Arc::new(AtomicU8::new(Phase::Idle as u8));
        let (tx, rx) = smol::channel::bounded(1);
        inner.conns.insert(
            id,
            Entry {
                phase: Arc::clone(&phase),
                _cancel: tx,
            },
        );
        Ok(Admitted {
            slot: Slot {
                id,
                phase,
                cancel: rx,
                table: Arc::clone(self),
            },
            evicted,
        })
    }

    /// Closes the oldest connection not serving a request (to free a file
    /// descriptor); false when every one is serving.
    pub fn evict_oldest_idle(&self) -> bool {
        evict_oldest_idle(&mut self.lock())
    }

    /// Refuses new connections and closes every idle one; connections
    /// receiving or serving a request close after their response.
    pub fn close_idle(&self) {
        let mut inner = self.lock();
        inner.closing = true;
        inner.conns.retain(|_, e| e.phase() != Phase::Idle as u8);
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
        .find(|(_, e)| e.phase() != Phase::Serving as u8)
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
    phase: Arc<AtomicU8>,
    cancel: Receiver<()>,
    table: Arc<ConnTable>,
}

impl Slot {
    /// Marks where the connection is in its request (see [`Phase`]).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
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
    fn full_table_evicts_the_oldest_connection_not_serving() {
        let t = ConnTable::new(3);
        let a = t.admit().unwrap().slot;
        let b = t.admit().unwrap().slot;
        let c = t.admit().unwrap().slot;
        a.set_phase(Phase::Serving);
        b.set_phase(Phase::Receiving);
        let d = t.admit().unwrap();
        assert!(d.evicted);
        assert!(!is_cancelled(&a), "connections serving a request stay");
        assert!(
            is_cancelled(&b),
            "the oldest unfinished one goes, even with its head in"
        );
        assert!(!is_cancelled(&c));
        assert_eq!(t.len(), 3);
        drop(b);
        assert_eq!(t.len(), 3, "an evicted slot is already gone");
        c.set_phase(Phase::Serving);
        d.slot.set_phase(Phase::Serving);
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
        let c = t.admit().unwrap().slot;
        b.set_phase(Phase::Serving);
        c.set_phase(Phase::Receiving);
        t.close_idle();
        assert!(is_cancelled(&a) && !is_cancelled(&b) && !is_cancelled(&c));
        assert!(b.closing());
        assert_eq!(t.admit().unwrap_err(), Refused::Closing);
        t.close_all();
        assert!(is_cancelled(&b) && is_cancelled(&c));
        drop((a, b, c));
        assert!(t.is_empty());
    }
}
