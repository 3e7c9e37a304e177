//! Replies on their way to the writer, and the bookkeeping that gives every
//! iq request exactly one answer: the handler's, the link's fallback when a
//! handler drops its [`Replier`], or the link's timeout at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use smol::channel::Sender;
use smol::lock::{Semaphore, SemaphoreGuardArc};

use crate::stanza::{IqHeader, StanzaError};
use crate::xml::Element;

/// A serialized stanza for the writer, with the in-flight slot of the
/// stanza it answers. The writer frees the slot once the bytes are
/// written, so replies waiting for the socket count as in flight and
/// reading pauses when the writer falls behind.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) text: String,
    pub(super) permit: Option<SemaphoreGuardArc>,
}

impl Outgoing {
    /// A stream-level write that holds no slot.
    pub(super) fn bare(text: impl Into<String>) -> Self {
        Outgoing {
            text: text.into(),
            permit: None,
        }
    }
}

/// The iq requests of one session that are not answered yet.
#[derive(Debug, Default)]
pub(super) struct Pending {
    inner: Mutex<PendingInner>,
}

#[derive(Debug, Default)]
struct PendingInner {
    next: u64,
    open: HashMap<u64, IqHeader>,
    closed: bool,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request; `None` once closed.
    pub(super) fn open(&self, header: IqHeader) -> Option<u64> {
        let mut p = self.lock();
        if p.closed {
            return None;
        }
        let key = p.next;
        p.next += 1;
        p.open.insert(key, header);
        Some(key)
    }

    /// Runs `answer` if the request is still open, and closes it. The
    /// answer is queued under the lock, so it is queued before anything
    /// queued after [`Pending::close`].
    fn answer(&self, key: u64, answer: impl FnOnce(&IqHeader)) -> bool {
        let mut p = self.lock();
        match p.open.remove(&key) {
            Some(h) => {
                answer(&h);
                true
            }
            None => false,
        }
    }

    /// Closes the table and returns the requests still open: the caller
    /// answers them; later answers from handlers are discarded.
    pub(super) fn close(&self) -> Vec<IqHeader> {
        let mut p = self.lock();
        p.closed = true;
        let mut open: Vec<(u64, IqHeader)> = p.open.drain().collect();
        open.sort_by_key(|(k, _)| *k);
        open.into_iter().map(|(_, h)| h).collect()
    }

    /// Requests not answered yet.
    pub(super) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

/// Sends the reply to one stanza, possibly later from another task. For an
/// iq request, dropping it without sending answers
/// `wait/internal-server-error`, so the request is never left unanswered;
/// a reply after the link answered at shutdown is discarded.
#[derive(Debug)]
pub struct Replier {
    tx: Sender<Outgoing>,
    permit: Option<SemaphoreGuardArc>,
    request: Option<(Arc<Pending>, u64)>,
    jid: Arc<str>,
    /// The link's budget of detached work (see [`Replier::detach`]).
    detached: Arc<Semaphore>,
}

/// The answer to a stanza that expects none on success (a Push 2.0
/// `<message>`), sent later if at all. It holds one of the link's detached
/// slots instead of an in-flight one, until its answer is written or it
/// is dropped, so slow work behind such stanzas never pauses the link's
/// reading, and is still bounded.
#[derive(Debug)]
pub struct Detached {
    tx: Sender<Outgoing>,
    permit: SemaphoreGuardArc,
}

impl Detached {
    /// Queues the stanza (an error message) for the XMPP server.
    pub fn send(self, stanza: &Element) {
        queue(
            &self.tx,
            Outgoing {
                text: stanza.to_stanza_string(),
                permit: Some(self.permit),
            },
        );
    }
}

impl Replier {
    pub(super) fn new(
        tx: Sender<Outgoing>,
        permit: SemaphoreGuardArc,
        request: Option<(Arc<Pending>, u64)>,
        jid: Arc<str>,
        detached: Arc<Semaphore>,
    ) -> Self {
        Replier {
            tx,
            permit: Some(permit),
            request,
            jid,
            detached,
        }
    }

    /// Gives the in-flight slot back at once, for a stanza that is answered
    /// only on failure, in exchange for one of the link's detached slots.
    /// `Err(self)` for an iq request (it must be answered) and when every
    /// detached slot is taken: answer that one now, it is over budget.
    pub fn detach(mut self) -> Result<Detached, Replier> {
        if self.request.is_some() {
            return Err(self);
        }
        let Some(permit) = self.detached.try_acquire_arc() else {
            return Err(self);
        };
        drop(self.permit.take());
        Ok(Detached {
            tx: self.tx.clone(),
            permit,
        })
    }

    /// Queues a stanza for the XMPP server. Never blocks: the queue has
    /// room for one reply per in-flight slot, and a slot is freed only
    /// after its reply is written. Dropped if the link went down.
    pub fn send(mut self, stanza: &Element) {
        let text = stanza.to_stanza_string();
        let out = Outgoing {
            text,
            permit: self.permit.take(),
        };
        match self.request.take() {
            Some((pending, key)) => {
                pending.answer(key, |_| queue(&self.tx, out));
            }
            None => queue(&self.tx, out),
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        let Some((pending, key)) = self.request.take() else {
            return;
        };
        let (tx, jid, permit) = (&self.tx, &self.jid, self.permit.take());
        pending.answer(key, |h| {
            log::warn!(
                "component {jid}: no answer produced for iq {} from {}; answering internal-server-error",
                h.id,
                h.from
            );
            let err = StanzaError::internal("no answer was produced");
            queue(
                tx,
                Outgoing {
                    text: h.error(jid, &err).to_stanza_string(),
                    permit,
                },
            );
        });
    }
}

/// Queues without waiting. The queue's capacity covers every slot plus the
/// link's few own writes, so it is full only through a bug.
fn queue(tx: &Sender<Outgoing>, out: Outgoing) {
    if let Err(smol::channel::TrySendError::Full(_)) = tx.try_send(out) {
        log::error!("reply queue full: a reply was dropped (this is a bug)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (
        Sender<Outgoing>,
        smol::channel::Receiver<Outgoing>,
        Arc<Semaphore>,
    ) {
        let (tx, rx) = smol::channel::bounded(8);
        (tx, rx, Arc::new(Semaphore::new(4)))
    }

    fn header(id: &str) -> IqHeader {
        IqHeader {
            from: "u@example.com".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_dropped_request_replier_answers_internal_server_error_once() {
        let (tx, rx, sem) = setup();
        let pending = Arc::new(Pending::default());
        let key = pending.open(header("a")).unwrap();
        let r = Replier::new(
            tx,
            sem.try_acquire_arc().unwrap(),
            Some((Arc::clone(&pending), key)),
            "push.example.org".into(),
            Arc::new(Semaphore::new(1)),
        );
        drop(r);
        let out = rx.try_recv().unwrap();
        assert!(out.text.contains("id='a'") && out.text.contains("internal-server-error"));
        assert!(out.permit.is_some(), "the slot travels with the reply");
        assert!(rx.try_recv().is_err());
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn after_close_handler_replies_are_discarded() {
        let (tx, rx, sem) = setup();
        let pending = Arc::new(Pending::default());
        let key = pending.open(header("b")).unwrap();
        let r = Replier::new(
            tx.clone(),
            sem.try_acquire_arc().unwrap(),
            Some((Arc::clone(&pending), key)),
            "push.example.org".into(),
            Arc::new(Semaphore::new(1)),
        );
        let open = pending.close();
        assert_eq!(open, vec![header("b")]);
        assert!(pending.open(header("c")).is_none());
        r.send(&Element::new("iq", crate::xml::NS_COMPONENT));
        assert!(rx.try_recv().is_err(), "answered by the link already");
        // A non-request replier always sends.
        let r = Replier::new(
            tx,
            sem.try_acquire_arc().unwrap(),
            None,
            "j".into(),
            Arc::new(Semaphore::new(1)),
        );
        r.send(&Element::new("message", crate::xml::NS_COMPONENT));
        assert_eq!(rx.try_recv().unwrap().text, "<message/>");
    }

    #[test]
    fn detached_work_gives_its_slot_back_and_is_bounded_on_its_own() {
        let (tx, rx, sem) = setup();
        let budget = Arc::new(Semaphore::new(1));
        let new = |sem: &Arc<Semaphore>| {
            Replier::new(
                tx.clone(),
                sem.try_acquire_arc().unwrap(),
                None,
                "j".into(),
                Arc::clone(&budget),
            )
        };
        let d = new(&sem).detach().expect("a message detaches");
        assert_eq!(
            sem.try_acquire_arc().map(drop),
            Some(()),
            "in-flight slot back"
        );
        let over = new(&sem)
            .detach()
            .expect_err("the detached budget is spent");
        drop(over);
        d.send(&Element::new("message", crate::xml::NS_COMPONENT));
        let out = rx.try_recv().unwrap();
        assert!(
            out.permit.is_some(),
            "the detached slot travels with the answer"
        );
        assert!(budget.try_acquire_arc().is_none(), "held until written");
        drop(out);
        assert!(budget.try_acquire_arc().is_some(), "freed once written");
        // An iq request never detaches: it must be answered.
        let pending = Arc::new(Pending::default());
        let key = pending.open(header("q")).unwrap();
        let r = Replier::new(
            tx.clone(),
            sem.try_acquire_arc().unwrap(),
            Some((Arc::clone(&pending), key)),
            "j".into(),
            Arc::clone(&budget),
        );
        assert!(r.detach().is_err());
    }
}
