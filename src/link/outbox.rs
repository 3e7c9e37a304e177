//! Iq requests a component sends on its own (UnifiedPush relays), and the
//! answers it waits for. The open session lends the outbox its writer
//! queue; an answer is matched by its random `id` and by coming from the
//! JID the request went to, so nobody else on the network can answer for
//! it. Bounded: at most [`MAX_WAITING`] requests wait at once, each at
//! most its timeout, and a full writer queue refuses at once rather than
//! waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::FutureExt;
use smol::channel::Sender;
use smol::lock::Semaphore;

use super::replier::Outgoing;
use crate::xml::{Element, NS_COMPONENT};

/// Requests waiting for an answer at most, per component.
pub const MAX_WAITING: usize = 4096;

/// Requests queued for the writer and not yet written, at most. The
/// session's writer queue has this much room of its own on top of what
/// the replies need, so requests can never crowd out a reply.
pub const MAX_QUEUED: usize = 64;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxError {
    /// The component link is down.
    Down,
    /// Too many requests wait already, or the writer's queue is full.
    Full,
    /// No answer within the timeout.
    Timeout,
}

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutboxError::Down => "the component link is down",
            OutboxError::Full => "too many requests in flight",
            OutboxError::Timeout => "no answer in time",
        })
    }
}

impl std::error::Error for OutboxError {}

struct Waiting {
    to: String,
    answer: Sender<Element>,
}

#[derive(Default)]
struct Inner {
    writer: Option<Sender<Outgoing>>,
    waiting: HashMap<String, Waiting>,
}

/// The outbox of one component.
pub struct Outbox {
    inner: Mutex<Inner>,
    /// One permit per request in the writer's queue (see [`MAX_QUEUED`]);
    /// the writer gives it back once the request is written.
    queued: Arc<Semaphore>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            inner: Mutex::default(),
            queued: Arc::new(Semaphore::new(MAX_QUEUED)),
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `iq` (its `id` is set here) and waits at most `timeout` for
    /// its answer (an iq result or error from its `to`).
    pub async fn request(
        &self,
        mut iq: Element,
        timeout: Duration,
    ) -> Result<Element, OutboxError> {
        let to = iq.get_attr("to").unwrap_or_default().to_owned();
        let id = format!("o{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        iq.set_attr("id", &id);
        let mut text = String::new();
        iq.write_to(&mut text, NS_COMPONENT);
        let (answer, answered) = smol::channel::bounded(1);
        {
            let mut inner = self.lock();
            let writer = inner.writer.clone().ok_or(OutboxError::Down)?;
            if inner.waiting.len() >= MAX_WAITING {
                return Err(OutboxError::Full);
            }
            let permit = self.queued.try_acquire_arc().ok_or(OutboxError::Full)?;
            writer
                .try_send(Outgoing {
                    text,
                    permit: Some(permit),
                })
                .map_err(|_| OutboxError::Full)?;
            inner.waiting.insert(id.clone(), Waiting { to, answer });
        }
        let result = async { answered.recv().await.map_err(|_| OutboxError::Down) }
            .or(async {
                async_io::Timer::after(timeout).await;
                Err(OutboxError::Timeout)
            })
            .await;
        self.lock().waiting.remove(&id);
        result
    }

    /// Takes `stanza` if it answers a waiting request (the caller then
    /// hands it to nobody else).
    pub(super) fn answer(&self, stanza: &Element) -> bool {
        if stanza.name != "iq" || !matches!(stanza.get_attr("type"), Some("result" | "error")) {
            return false;
        }
        let Some(id) = stanza.get_attr("id") else {
            return false;
        };
        let mut inner = self.lock();
        let from = stanza.get_attr("from").unwrap_or_default();
        match inner.waiting.get(id) {
            // A server answering for an offline or unknown full JID may
            // answer from the bare JID.
            Some(w) if from == w.to || w.to.split('/').next() == Some(from) => {
                if let Some(w) = inner.waiting.remove(id) {
                    let _ = w.answer.try_send(stanza.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// A session is up: requests go to its writer.
    pub(super) fn attach(&self, writer: Sender<Outgoing>) {
        self.lock().writer = Some(writer);
    }

    /// The session ended: requests still waiting fail as `Down`.
    pub(super) fn detach(&self) {
        let mut inner = self.lock();
        inner.writer = None;
        inner.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    fn el(xml: &str) -> Element {
        parse_element(xml.as_bytes()).unwrap()
    }

    #[test]
    fn an_answer_is_taken_only_from_the_jid_asked() {
        smol::block_on(async {
            let outbox = std::sync::Arc::new(Outbox::default());
            assert_eq!(
                outbox
                    .request(el("<iq type='set' to='a@x/r'/>"), Duration::from_secs(1))
                    .await,
                Err(OutboxError::Down)
            );
            let (tx, rx) = smol::channel::bounded(4);
            outbox.attach(tx);
            let asking = {
                let outbox = std::sync::Arc::clone(&outbox);
                smol::spawn(async move {
                    outbox
                        .request(el("<iq type='set' to='a@x/r'/>"), Duration::from_secs(10))
                        .await
                })
            };
            let sent = rx.recv().await.unwrap().text;
            let id = sent
                .split("id='")
                .nth(1)
                .unwrap()
                .split('\'')
                .next()
                .unwrap();
            assert!(!outbox.answer(&el(&format!("<iq type='result' id='{id}' from='m@x/r'/>"))));
            assert!(!outbox.answer(&el(&format!("<iq type='get' id='{id}' from='a@x/r'/>"))));
            assert!(outbox.answer(&el(&format!("<iq type='error' id='{id}' from='a@x'/>"))));
            let answer = asking.await.unwrap();
            assert_eq!(answer.get_attr("type"), Some("error"));
            assert!(!outbox.answer(&el(&format!("<iq type='result' id='{id}' from='a@x/r'/>"))));
        });
    }

    #[test]
    fn requests_not_yet_written_are_bounded() {
        smol::block_on(async {
            let outbox = Outbox::default();
            let (tx, rx) = smol::channel::bounded(MAX_QUEUED + 8);
            outbox.attach(tx);
            let quick = Duration::from_millis(1);
            for _ in 0..MAX_QUEUED {
                let r = outbox
                    .request(el("<iq type='set' to='a@x/r'/>"), quick)
                    .await;
                assert_eq!(r, Err(OutboxError::Timeout));
            }
            // Nothing was written: the writer's share of the queue is full.
            let r = outbox
                .request(el("<iq type='set' to='a@x/r'/>"), quick)
                .await;
            assert_eq!(r, Err(OutboxError::Full));
            // The writer writes one: room for one more.
            drop(rx.recv().await.unwrap());
            let r = outbox
                .request(el("<iq type='set' to='a@x/r'/>"), quick)
                .await;
            assert_eq!(r, Err(OutboxError::Timeout));
        });
    }

    #[test]
    fn unanswered_requests_time_out_and_are_forgotten() {
        smol::block_on(async {
            let outbox = Outbox::default();
            let (tx, _rx) = smol::channel::bounded(4);
            outbox.attach(tx);
            let r = outbox
                .request(el("<iq type='set' to='a@x/r'/>"), Duration::from_millis(10))
                .await;
            assert_eq!(r, Err(OutboxError::Timeout));
            assert!(outbox.lock().waiting.is_empty());
        });
    }
}
