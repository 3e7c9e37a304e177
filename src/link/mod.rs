//! The component link (XEP-0114): one task per configured component. Owns
//! the TCP stream, the handshake, keepalive, reconnect with backoff and the
//! stanza size limit. It knows nothing about pushes: it hands parsed
//! stanzas to a [`StanzaHandler`] and writes the replies it is given.

pub mod handshake;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::channel::{Receiver, Sender};
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::net::TcpStream;

use crate::backoff::Backoff;
use crate::config::Secret;
use crate::xml::{parse_element, parse_header, Element, Frame, FrameError, Framer, NS_STREAM};

/// Receives every stanza of a link. Implementations reply through the
/// [`Replier`], possibly later from another task; the link bounds how many
/// stanzas are in flight by the repliers alive.
pub trait StanzaHandler: Send + Sync + 'static {
    /// Handles one stanza.
    fn handle(&self, stanza: Element, reply: Replier);
}

/// Sends the reply to one stanza. Dropping it without sending frees the
/// in-flight slot all the same.
#[derive(Debug)]
pub struct Replier {
    tx: Sender<String>,
    _permit: Option<SemaphoreGuardArc>,
}

impl Replier {
    /// Queues a stanza for the XMPP server. Never blocks: the queue has room
    /// for one reply per in-flight slot. Dropped if the link went down.
    pub fn send(self, stanza: &Element) {
        let _ = self.tx.try_send(stanza.to_stanza_string());
    }

    /// A replier writing into `tx` (tests and benchmarks).
    pub fn detached(tx: Sender<String>) -> Replier {
        Replier { tx, _permit: None }
    }
}

/// Settings of one link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The component JID.
    pub jid: String,
    /// `host:port` of the XMPP server.
    pub server: String,
    /// Handshake secret.
    pub secret: Secret,
    /// Largest stanza accepted.
    pub max_stanza: usize,
    /// Stanzas in flight before reading pauses.
    pub max_in_flight: usize,
    /// Whitespace keepalive after this much silence.
    pub keepalive: Duration,
    /// Limit for connect and handshake.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_cap: Duration,
}

impl LinkConfig {
    /// Production defaults for a component.
    pub fn new(
        jid: &str,
        server: &str,
        secret: Secret,
        max_stanza: usize,
        max_in_flight: usize,
    ) -> Self {
        LinkConfig {
            jid: jid.to_owned(),
            server: server.to_owned(),
            secret,
            max_stanza,
            max_in_flight,
            keepalive: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

/// Observable state of a link, for health and logs.
#[derive(Debug, Default)]
pub struct LinkStatus {
    connected: AtomicBool,
    connects: AtomicU64,
    stanzas: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl LinkStatus {
    /// Whether the handshake succeeded and the stream is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Successful handshakes so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Stanzas received so far.
    pub fn stanzas(&self) -> u64 {
        self.stanzas.load(Ordering::Relaxed)
    }

    /// Why the link last went down.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_error(&self, e: &LinkError) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
    }
}

/// Why a link session ended.
#[derive(Debug)]
pub enum LinkError {
    /// TCP connect failed.
    Connect(std::io::Error),
    /// Reading or writing failed.
    Io(std::io::Error),
    /// A step took too long.
    Timeout(&'static str),
    /// The server refused the handshake (stream error condition).
    Rejected(String),
    /// The server sent a stream error.
    StreamError(String),
    /// The server closed the stream or the connection.
    Closed,
    /// The server sent something we cannot read; a stream error was sent.
    Protocol(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Connect(e) => write!(f, "connect failed: {e}"),
            LinkError::Io(e) => write!(f, "connection error: {e}"),
            LinkError::Timeout(what) => write!(f, "timed out {what}"),
            LinkError::Rejected(c) => write!(f, "handshake rejected by the server: {c}"),
            LinkError::StreamError(c) => write!(f, "stream error from the server: {c}"),
            LinkError::Closed => f.write_str("the server closed the stream"),
            LinkError::Protocol(r) => write!(f, "unreadable stream from the server: {r}"),
        }
    }
}

/// Runs the link forever: connect, handshake, serve, and reconnect with
/// capped exponential backoff plus jitter whenever the session ends.
pub async fn run(cfg: LinkConfig, handler: Arc<dyn StanzaHandler>, status: Arc<LinkStatus>) {
    let mut backoff = Backoff::new(cfg.backoff_base, cfg.backoff_cap);
    let mut failures: u32 = 0;
    loop {
        let connects_before = status.connects();
        let started = Instant::now();
        let result = session(&cfg, &handler, &status).await;
        status.connected.store(false, Ordering::Relaxed);
        let err = match result {
            Ok(()) => LinkError::Closed,
            Err(e) => e,
        };
        status.set_error(&err);
        // A session that lasted a while was healthy: start over from short delays.
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        failures = if status.connects() > connects_before {
            1
        } else {
            failures + 1
        };
        let delay = backoff.next_delay(fastrand::f64());
        // Loud when the link goes down and now and then while it stays
        // down; the attempts in between only at debug level.
        let level = if failures == 1 || failures % 20 == 0 {
            log::Level::Warn
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "component {}: {err}; reconnecting to {} in {:.1}s (attempt {failures})",
            cfg.jid,
            cfg.server,
            delay.as_secs_f64()
        );
        async_io::Timer::after(delay).await;
    }
}

async fn timeout<T>(
    d: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    f.or(async {
        async_io::Timer::after(d).await;
        Err(LinkError::Timeout(what))
    })
    .await
}

/// Reads until the framer yields a frame.
async fn read_frame(
    stream: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut [u8],
) -> Result<Frame, LinkError> {
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(protocol_error(stream, &e).await),
        }
        read_more(stream, framer, buf).await?;
    }
}

/// Feeds the framer what one read brings; `Closed` at end of stream.
async fn read_more(
    stream: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut [u8],
) -> Result<(), LinkError> {
    let n = stream.read(buf).await.map_err(LinkError::Io)?;
    if n == 0 {
        return Err(LinkError::Closed);
    }
    framer.push(&buf[..n]);
    Ok(())
}

/// Tells the server why we give up on its stream, then reports it.
async fn protocol_error(stream: &mut TcpStream, e: &FrameError) -> LinkError {
    let msg = handshake::stream_error(e.condition(), e.reason());
    let _ = stream.write_all(msg.as_bytes()).await;
    let _ = stream.flush().await;
    LinkError::Protocol(e.to_string())
}

async fn session(
    cfg: &LinkConfig,
    handler: &Arc<dyn StanzaHandler>,
    status: &LinkStatus,
) -> Result<(), LinkError> {
    let mut stream = timeout(cfg.connect_timeout, "connecting", async {
        TcpStream::connect(cfg.server.as_str())
            .await
            .map_err(LinkError::Connect)
    })
    .await?;
    let _ = stream.set_nodelay(true);
    let mut framer = Framer::new(cfg.max_stanza);
    let mut buf = vec![0u8; 16 * 1024];

    timeout(cfg.connect_timeout, "during the handshake", async {
        stream
            .write_all(handshake::stream_header(&cfg.jid).as_bytes())
            .await
            .map_err(LinkError::Io)?;
        let header = match read_frame(&mut stream, &mut framer, &mut buf).await? {
            Frame::Header(h) => parse_header(&h).map_err(|e| LinkError::Protocol(e.to_string()))?,
            _ => return Err(LinkError::Protocol("expected a stream header".into())),
        };
        let id = header
            .get_attr("id")
            .ok_or_else(|| LinkError::Protocol("stream header without an id".into()))?
            .to_owned();
        stream
            .write_all(handshake::handshake(&id, cfg.secret.expose()).as_bytes())
            .await
            .map_err(LinkError::Io)?;
        match read_frame(&mut stream, &mut framer, &mut buf).await? {
            Frame::Stanza(b) => {
                let el = parse_element(&b).map_err(|e| LinkError::Protocol(e.to_string()))?;
                if el.name == "handshake" {
                    Ok(())
                } else if el.is("error", NS_STREAM) {
                    Err(LinkError::Rejected(handshake::error_condition(&el)))
                } else {
                    Err(LinkError::Protocol(format!(
                        "expected <handshake/>, got <{}>",
                        el.name
                    )))
                }
            }
            Frame::End => Err(LinkError::Rejected("stream closed".into())),
            Frame::Header(_) => Err(LinkError::Protocol("second stream header".into())),
        }
    })
    .await?;

    status.connected.store(true, Ordering::Relaxed);
    status.connects.fetch_add(1, Ordering::Relaxed);
    log::info!("component {}: connected to {}", cfg.jid, cfg.server);

    // One reply slot per in-flight permit, plus room for stream-level writes.
    let (tx, rx) = smol::channel::bounded::<String>(cfg.max_in_flight + 16);
    let writer = smol::spawn(write_loop(stream.clone(), rx, cfg.keepalive));
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    let result = read_loop(
        &mut stream,
        &mut framer,
        &mut buf,
        handler,
        status,
        &tx,
        &permits,
    )
    .await;
    // A stream error or our closing tag may be queued: let the writer flush it.
    drop(tx);
    let _ = writer
        .or(async {
            async_io::Timer::after(Duration::from_secs(2)).await;
            Ok(())
        })
        .await;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    result
}

async fn read_loop(
    stream: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut [u8],
    handler: &Arc<dyn StanzaHandler>,
    status: &LinkStatus,
    tx: &Sender<String>,
    permits: &Arc<Semaphore>,
) -> Result<(), LinkError> {
    loop {
        let frame = match framer.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                read_more(stream, framer, buf).await?;
                continue;
            }
            Err(e) => {
                let _ = tx.try_send(handshake::stream_error(e.condition(), e.reason()));
                return Err(LinkError::Protocol(e.to_string()));
            }
        };
        let bytes = match frame {
            Frame::Stanza(b) => b,
            Frame::End => {
                let _ = tx.try_send("</stream:stream>".to_owned());
                return Err(LinkError::Closed);
            }
            Frame::Header(_) => unreachable!("the framer yields one header per stream"),
        };
        let stanza = match parse_element(&bytes) {
            Ok(el) => el,
            Err(e) => {
                let _ = tx.try_send(handshake::stream_error("not-well-formed", &e.to_string()));
                return Err(LinkError::Protocol(e.to_string()));
            }
        };
        if stanza.is("error", NS_STREAM) {
            return Err(LinkError::StreamError(handshake::error_condition(&stanza)));
        }
        status.stanzas.fetch_add(1, Ordering::Relaxed);
        // Backpressure: with every slot busy, stop reading until one frees.
        let permit = permits.acquire_arc().await;
        handler.handle(
            stanza,
            Replier {
                tx: tx.clone(),
                _permit: Some(permit),
            },
        );
    }
}

/// Writes queued stanzas, batching what is ready into one write, and a
/// whitespace keepalive after `keepalive` of silence.
async fn write_loop(
    mut stream: TcpStream,
    rx: Receiver<String>,
    keepalive: Duration,
) -> std::io::Result<()> {
    let mut out = String::with_capacity(16 * 1024);
    loop {
        let next = async { rx.recv().await.ok().map(Some) }
            .or(async {
                async_io::Timer::after(keepalive).await;
                Some(None)
            })
            .await;
        match next {
            None => return stream.flush().await,
            Some(None) => out.push(' '),
            Some(Some(s)) => {
                out.push_str(&s);
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(s) => out.push_str(&s),
                        Err(_) => break,
                    }
                }
            }
        }
        stream.write_all(out.as_bytes()).await?;
        out.clear();
    }
}
