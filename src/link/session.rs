//! One session of a component link: connect, handshake, serve until the
//! stream ends or shutdown starts, then close. The socket shell around the
//! pure parts (framer, handshake strings, liveness, skipped stanzas).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, FutureExt};
use smol::channel::{Receiver, Sender};
use smol::lock::Semaphore;
use smol::net::TcpStream;

use super::liveness::{self, Liveness, Tick};
use super::outbox::Outbox;
use super::replier::{Outgoing, Pending, Replier};
use super::{
    connect, handshake, skipped, writer, LinkConfig, LinkError, LinkStatus, StanzaHandler,
};
use crate::backoff::Reconnect;
use crate::shutdown::Shutdown;
use crate::stanza::{quoted, IqHeader, StanzaError};
use crate::xml::{parse_element, Frame, Framer, SkipReason, NS_STREAM};

/// Longest wait for the writer to flush when a session ends.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Longest wait for the server's closing tag after ours at shutdown.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Runs one session. `Ok(())` when it was closed for shutdown.
pub(super) async fn run(
    cfg: &LinkConfig,
    handler: &Arc<dyn StanzaHandler>,
    status: &LinkStatus,
    outbox: &Outbox,
    shutdown: &Shutdown,
    policy: &mut Reconnect,
) -> Result<(), LinkError> {
    let opened = async { Some(connect::open(cfg).await) }
        .or(async {
            shutdown.wait().await;
            None
        })
        .await;
    let Some(opened) = opened else {
        return Ok(());
    };
    let (stream, framer) = opened?;
    policy.connected();
    status.connected.store(true, Ordering::Relaxed);
    status.connects.fetch_add(1, Ordering::Relaxed);
    log::info!("component {}: connected to {}", cfg.jid, cfg.server);
    serve(cfg, handler, status, outbox, shutdown, stream, framer).await
}

/// What the read side shares with the repliers and the writer.
struct Ctx<'a> {
    cfg: &'a LinkConfig,
    handler: &'a Arc<dyn StanzaHandler>,
    status: &'a LinkStatus,
    tx: &'a Sender<Outgoing>,
    permits: &'a Arc<Semaphore>,
    detached: &'a Arc<Semaphore>,
    pending: &'a Arc<Pending>,
    jid: &'a Arc<str>,
    outbox: &'a Outbox,
}

impl Ctx<'_> {
    /// Queues a stream-level write, waiting a bounded time for room.
    async fn send_bare(&self, text: impl Into<String>) {
        let out = Outgoing::bare(text);
        let _ = async {
            let _ = self.tx.send(out).await;
        }
        .or(async {
            async_io::Timer::after(FLUSH_WAIT).await;
        })
        .await;
    }

    /// A replier for `stanza` holding one in-flight slot; waits for a free
    /// slot (backpressure: reading pauses meanwhile).
    async fn replier(&self, request: Option<IqHeader>) -> Replier {
        let permit = self.permits.acquire_arc().await;
        let request = request
            .and_then(|h| self.pending.open(h))
            .map(|k| (Arc::clone(self.pending), k));
        Replier::new(
            self.tx.clone(),
            permit,
            request,
            Arc::clone(self.jid),
            Arc::clone(self.detached),
        )
    }
}

/// The read side of a session.
struct Conn {
    stream: TcpStream,
    framer: Framer,
    buf: Vec<u8>,
    live: Liveness,
    /// Fires at (or before) the liveness deadline. Armed once and re-armed
    /// only when it fires, not per read: the deadline moves with every
    /// read, and a timer per read costs a reactor round trip per stanza.
    live_timer: async_io::Timer,
    pings: u64,
}

async fn serve(
    cfg: &LinkConfig,
    handler: &Arc<dyn StanzaHandler>,
    status: &LinkStatus,
    outbox: &Outbox,
    shutdown: &Shutdown,
    stream: TcpStream,
    framer: Framer,
) -> Result<(), LinkError> {
    // Each in-flight slot, and each detached one, holds at most one queued
    // reply until it is written, so this capacity always suffices; 16 for
    // the link's own writes, and the outbox's requests have room of their
    // own (see `outbox::MAX_QUEUED`).
    let (tx, rx) =
        smol::channel::bounded::<Outgoing>(2 * cfg.max_in_flight + 16 + super::outbox::MAX_QUEUED);
    let (dead_tx, dead_rx) = smol::channel::bounded::<LinkError>(1);
    let writer = smol::spawn({
        let stream = stream.clone();
        let (keepalive, write_timeout) = (cfg.keepalive, cfg.ping_timeout);
        async move {
            if let Err(e) = writer::write_loop(stream, rx, keepalive, write_timeout).await {
                let _ = dead_tx.try_send(e);
            }
        }
    });
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    // Work that answers only on failure (see `Replier::detach`) gives its
    // slot back at once and holds one of these instead.
    let detached = Arc::new(Semaphore::new(cfg.max_in_flight));
    let pending = Arc::new(Pending::default());
    let jid: Arc<str> = cfg.jid.as_str().into();
    let ctx = Ctx {
        cfg,
        handler,
        status,
        tx: &tx,
        permits: &permits,
        detached: &detached,
        pending: &pending,
        jid: &jid,
        outbox,
    };
    outbox.attach(tx.clone());
    let live = Liveness::new(Instant::now(), cfg.ping_after, cfg.ping_timeout);
    let mut conn = Conn {
        stream,
        framer,
        buf: vec![0u8; 16 * 1024],
        live_timer: async_io::Timer::at(live.deadline()),
        live,
        pings: 0,
    };
    let ended = async {
        shutdown.wait().await;
        Ok(())
    }
    .or(async { Err(writer_failed(&dead_rx).await) })
    .or(conn.read_loop(&ctx))
    .await;
    // Requests of our own still waiting cannot be answered any more.
    outbox.detach();
    match ended {
        Ok(()) => {
            let deadline = shutdown.deadline().unwrap_or_else(Instant::now);
            close(&ctx, deadline, &dead_rx).await;
            tx.close();
            let _ = writer
                .or(async {
                    async_io::Timer::after(FLUSH_WAIT).await;
                })
                .await;
            // The server's closing tag, briefly; nothing read now is handled.
            conn.await_end()
                .or(async {
                    async_io::Timer::after(CLOSE_WAIT).await;
                })
                .await;
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        Err(e) => {
            // A stream error or our closing tag may be queued: let the
            // writer flush it. Closing the queue ends the writer even while
            // handlers still hold repliers.
            tx.close();
            let _ = writer
                .or(async {
                    async_io::Timer::after(FLUSH_WAIT).await;
                })
                .await;
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            Err(e)
        }
    }
}

/// The writer's error; never returns while the writer works.
async fn writer_failed(dead_rx: &Receiver<LinkError>) -> LinkError {
    match dead_rx.recv().await {
        Ok(e) => e,
        Err(_) => std::future::pending().await,
    }
}

/// Graceful close after reading stopped: lets requests in flight finish
/// until `deadline`, answers the rest `wait/remote-server-timeout`, then
/// queues `</stream:stream>`.
async fn close(ctx: &Ctx<'_>, deadline: Instant, dead_rx: &Receiver<LinkError>) {
    let jid = ctx.jid;
    let waiting = ctx.pending.len();
    log::info!(
        "component {jid}: shutting down; {waiting} requests in flight, waiting up to {:.1}s",
        deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    );
    // Every slot back means every reply written.
    let max = ctx.cfg.max_in_flight;
    let _ = async {
        let mut held = Vec::with_capacity(max);
        for _ in 0..max {
            held.push(ctx.permits.acquire_arc().await);
        }
    }
    .or(async {
        async_io::Timer::at(deadline).await;
    })
    .or(async {
        writer_failed(dead_rx).await;
    })
    .await;
    let late = ctx.pending.close();
    if !late.is_empty() {
        log::warn!(
            "component {jid}: answering {} requests still in flight with remote-server-timeout",
            late.len()
        );
    }
    // One write for all of them, so a full queue cannot multiply the wait.
    let err = StanzaError::remote_server_timeout("the push service is shutting down");
    let mut last = String::new();
    for h in &late {
        h.error(jid, &err)
            .write_to(&mut last, crate::xml::NS_COMPONENT);
    }
    last.push_str("</stream:stream>");
    ctx.send_bare(last).await;
}

impl Conn {
    /// Reads and dispatches stanzas until the session fails.
    async fn read_loop(&mut self, ctx: &Ctx<'_>) -> Result<(), LinkError> {
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    self.read_more(ctx).await?;
                    continue;
                }
                Err(e) => {
                    ctx.send_bare(handshake::stream_error(e.condition(), e.reason()))
                        .await;
                    return Err(LinkError::Protocol(e.to_string()));
                }
            };
            match frame {
                Frame::Stanza(b) => self.stanza(&b, ctx).await?,
                Frame::Skipped { head, why, size } => skip(ctx, head.as_deref(), why, size).await,
                Frame::End => {
                    ctx.send_bare("</stream:stream>").await;
                    return Err(LinkError::Closed);
                }
                Frame::Header(_) => {
                    return Err(LinkError::Protocol("second stream header".into()));
                }
            }
        }
    }

    async fn stanza(&mut self, bytes: &[u8], ctx: &Ctx<'_>) -> Result<(), LinkError> {
        let stanza = match parse_element(bytes) {
            Ok(el) => el,
            // Well-formed but over a parser limit: skipped like a stanza
            // over the size limit, the stream goes on.
            Err(e) if e.over_limit => {
                let head = bytes.iter().position(|&b| b == b'>').map(|i| &bytes[..=i]);
                log::debug!("component {}: {e}", ctx.jid);
                skip(ctx, head, SkipReason::TooManyAttributes, bytes.len()).await;
                return Ok(());
            }
            Err(e) => {
                ctx.send_bare(handshake::stream_error("not-well-formed", &e.to_string()))
                    .await;
                return Err(LinkError::Protocol(e.to_string()));
            }
        };
        if stanza.is("error", NS_STREAM) {
            return Err(LinkError::StreamError(handshake::error_condition(&stanza)));
        }
        if liveness::is_ping_answer(&stanza) {
            log::debug!("component {}: the server answered our ping", ctx.jid);
            return Ok(());
        }
        if ctx.outbox.answer(&stanza) {
            return Ok(());
        }
        ctx.status.stanzas.fetch_add(1, Ordering::Relaxed);
        // Backpressure: with every slot busy (handlers working or replies
        // not yet written), reading stops until one frees.
        let reply = ctx.replier(IqHeader::of_request(&stanza)).await;
        ctx.handler.handle(stanza, reply);
        Ok(())
    }

    /// Feeds the framer what one read brings; pings a silent server and
    /// gives up when the ping goes unanswered.
    async fn read_more(&mut self, ctx: &Ctx<'_>) -> Result<(), LinkError> {
        loop {
            let (stream, buf, timer) = (&mut self.stream, &mut self.buf, &mut self.live_timer);
            let read = async { Some(stream.read(buf).await) }
                .or(async {
                    timer.await;
                    None
                })
                .await;
            match read {
                Some(r) => {
                    let n = r.map_err(LinkError::Io)?;
                    if n == 0 {
                        return Err(LinkError::Closed);
                    }
                    self.live.received(Instant::now());
                    self.framer.push(&self.buf[..n]);
                    return Ok(());
                }
                None => {
                    let tick = self.live.tick(Instant::now());
                    // It fired, possibly early (reads moved the deadline
                    // on): arm it for the deadline as it is now.
                    self.live_timer.set_at(self.live.deadline());
                    match tick {
                        Tick::Wait => {}
                        Tick::Ping => {
                            self.pings += 1;
                            let cfg = ctx.cfg;
                            log::debug!(
                                "component {}: silent link, pinging {}",
                                cfg.jid,
                                cfg.ping_to
                            );
                            let ping = liveness::ping(&cfg.jid, &cfg.ping_to, self.pings);
                            let _ = ctx.tx.try_send(Outgoing::bare(ping.to_stanza_string()));
                        }
                        Tick::Dead => {
                            return Err(LinkError::Timeout(
                                "waiting for the server to answer a ping",
                            ))
                        }
                    }
                }
            }
        }
    }

    /// Reads until the server closes its stream or the connection.
    async fn await_end(&mut self) {
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::End)) | Err(_) => return,
                Ok(Some(_)) => continue,
                Ok(None) => {}
            }
            match self.stream.read(&mut self.buf).await {
                Ok(n) if n > 0 => self.framer.push(&self.buf[..n]),
                _ => return,
            }
        }
    }
}

/// A short name of plain characters as it is, anything else cut and quoted.
fn plain_or_quoted(name: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b":_.-".contains(&b);
    if name.len() <= 48 && name.bytes().all(plain) {
        name.to_owned()
    } else {
        quoted(name)
    }
}

/// The second (since the epoch) of the latest skip warning.
static LAST_SKIP_WARNING: AtomicU64 = AtomicU64::new(0);

/// A stanza the framer skipped: logged, and an iq request answered.
async fn skip(ctx: &Ctx<'_>, head: Option<&[u8]>, why: SkipReason, size: usize) {
    let cfg = ctx.cfg;
    let d = skipped::decide(head, why, size, cfg.max_stanza, &cfg.jid);
    ctx.status.stanzas.fetch_add(1, Ordering::Relaxed);
    // A flood of skipped stanzas must not become a flood of warnings: one
    // a second at warn level, the rest at debug (the metrics count all).
    let now = crate::clock::unix_millis(std::time::SystemTime::now()) / 1000;
    let level = if LAST_SKIP_WARNING.swap(now, Ordering::Relaxed) == now {
        log::Level::Debug
    } else {
        log::Level::Warn
    };
    log::log!(
        level,
        "component {}: skipped a {size}-byte <{}> from {}: {}{}",
        cfg.jid,
        plain_or_quoted(d.name.as_deref().unwrap_or("?")),
        // Cut and quoted: the sender is whatever the stanza claims.
        quoted(d.from.as_deref().unwrap_or("unknown")),
        why.text(),
        if d.reply.is_some() {
            "; answered policy-violation"
        } else {
            ""
        }
    );
    if let Some((header, stanza)) = d.reply {
        ctx.replier(Some(header)).await.send(&stanza);
    }
}
