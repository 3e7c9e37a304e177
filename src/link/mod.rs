//! The component link (XEP-0114): one task per configured component. Owns
//! the TCP stream, the handshake, keepalive and liveness pings, reconnect
//! with backoff, the stanza limits and the graceful close at shutdown. It
//! knows nothing about pushes: it hands parsed stanzas to a
//! [`StanzaHandler`] and writes the replies it is given, and it makes sure
//! every iq request gets exactly one answer (see [`Replier`]).

mod connect;
pub mod handshake;
pub mod liveness;
pub mod outbox;
mod replier;
mod session;
pub mod skipped;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use crate::backoff::Reconnect;
use crate::settings::Secret;
use crate::shutdown::Shutdown;
use crate::xml::Element;

pub use outbox::{Outbox, OutboxError};
pub use replier::{Detached, Replier};

/// Receives every stanza of a link. Implementations reply through the
/// [`Replier`], possibly later from another task; the link bounds how many
/// stanzas are in flight by the repliers alive and the replies not yet
/// written.
pub trait StanzaHandler: Send + Sync + 'static {
    /// Handles one stanza.
    fn handle(&self, stanza: Element, reply: Replier);
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
    /// Largest stanza accepted; larger ones are skipped.
    pub max_stanza: usize,
    /// Stanzas in flight (being handled, or their reply not yet written)
    /// before reading pauses.
    pub max_in_flight: usize,
    /// Whitespace keepalive after this much silence.
    pub keepalive: Duration,
    /// Limit for connect and handshake.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_cap: Duration,
    /// Silence from the server before the link pings it.
    pub ping_after: Duration,
    /// Wait for anything from the server after a ping before reconnecting;
    /// also the longest a single write may take.
    pub ping_timeout: Duration,
    /// The domain pinged (the XMPP server's).
    pub ping_to: String,
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
            ping_after: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(20),
            ping_to: liveness::default_ping_to(jid).to_owned(),
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

/// Whether a link down since `since`, last warned about at `last`, is
/// warned about again at `now`: at once, then every minute for ten
/// minutes, then every ten minutes.
fn warn_now(since: Instant, last: Option<Instant>, now: Instant) -> bool {
    let Some(last) = last else {
        return true;
    };
    let every = if now.duration_since(since) < Duration::from_secs(600) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(600)
    };
    now.duration_since(last) >= every
}

/// What usually causes `err`, as a hint for the operator (empty when
/// nothing useful can be said).
fn likely_cause(err: &LinkError, jid: &str, server: &str) -> String {
    match err {
        LinkError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("; is the XMPP server running, and is {server} its component port?")
        }
        LinkError::Rejected(_) => format!(
            "; the XMPP server refused the handshake: check that it has a component {jid} \
             with the same secret (Prosody: Component \"{jid}\" and component_secret; \
             ejabberd: an ejabberd_service listener with hosts: {jid}: password)"
        ),
        LinkError::StreamError(c) if c == "host-unknown" => format!(
            "; the XMPP server does not know the component {jid}: add it to its configuration"
        ),
        LinkError::Timeout(_) => format!(
            "; is {server} the XMPP server's component port (not its client or server port)?"
        ),
        _ => String::new(),
    }
}

/// Runs the link until `shutdown`: connect, handshake, serve, and
/// reconnect whenever the session ends (see [`Reconnect`] for when). On
/// shutdown the open session is closed gracefully (see [`session`]).
pub async fn run(
    cfg: LinkConfig,
    handler: Arc<dyn StanzaHandler>,
    status: Arc<LinkStatus>,
    outbox: Arc<Outbox>,
    shutdown: Shutdown,
) {
    let mut policy = Reconnect::new(cfg.backoff_base, cfg.backoff_cap);
    // When the link went down (this run of failures), and the last warning.
    let mut down: Option<(Instant, Option<Instant>)> = None;
    while !shutdown.is_triggered() {
        let result = session::run(&cfg, &handler, &status, &outbox, &shutdown, &mut policy).await;
        status.connected.store(false, Ordering::Relaxed);
        let err = match result {
            Ok(()) => break,
            Err(e) => e,
        };
        status.set_error(&err);
        let now = Instant::now();
        let delay = policy.next_delay(now, fastrand::f64());
        let failures = policy.failures();
        if failures == 1 {
            down = Some((now, None));
        }
        let (since, last_warning) = down.get_or_insert((now, None));
        // Loud when the link goes down and while it stays down, every
        // minute at first, then every ten; the attempts in between only at
        // debug level.
        let warn = warn_now(*since, *last_warning, now);
        if warn {
            *last_warning = Some(now);
        }
        log::log!(
            if warn {
                log::Level::Warn
            } else {
                log::Level::Debug
            },
            "component {}: {err}; reconnecting to {} in {:.1}s (attempt {failures}, down {}s){}",
            cfg.jid,
            cfg.server,
            delay.as_secs_f64(),
            now.duration_since(*since).as_secs(),
            likely_cause(&err, &cfg.jid, &cfg.server)
        );
        async {
            async_io::Timer::after(delay).await;
        }
        .or(shutdown.wait())
        .await;
    }
    log::info!("component {}: link closed", cfg.jid);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_down_is_warned_about_every_minute_then_every_ten() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        assert!(warn_now(t0, None, t0));
        assert!(!warn_now(t0, Some(t0), s(59)));
        assert!(warn_now(t0, Some(t0), s(60)));
        assert!(
            !warn_now(t0, Some(s(600)), s(1100)),
            "after ten minutes, every ten"
        );
        assert!(warn_now(t0, Some(s(600)), s(1200)));
    }

    #[test]
    fn the_likely_cause_is_named() {
        let refused = LinkError::Connect(std::io::ErrorKind::ConnectionRefused.into());
        assert!(likely_cause(&refused, "push.x", "127.0.0.1:5347").contains("127.0.0.1:5347"));
        let rejected = LinkError::Rejected("not-authorized".into());
        assert!(likely_cause(&rejected, "push.x", "s").contains("same secret"));
        assert_eq!(likely_cause(&LinkError::Closed, "push.x", "s"), "");
    }
}
