//! Accept loops: each accepted connection gets a place in the bounded
//! [`ConnTable`] and a task on the executor. Accept errors never end the
//! loop: running out of descriptors or memory is logged (at most every few
//! seconds), an idle connection is closed to free a descriptor, and the
//! loop sleeps briefly (50 ms growing to 1 s).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use futures_rustls::TlsAcceptor;
use smol::Async;

use crate::backoff::Backoff;

use super::conn::{self, Timeouts};
use super::routes::Shared;
use super::table::{ConnTable, Refused};

/// Pending connections the kernel queues for us (capped by somaxconn).
const BACKLOG: i32 = 1024;
/// Least time between two log lines about the same accept trouble.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Binds `addr` with a deep accept queue, so a burst of connections is
/// queued rather than dropped (a dropped SYN costs a client a second).
pub fn bind(addr: SocketAddr) -> io::Result<Async<TcpListener>> {
    let listener = TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket we own; calling it again on a listening
    // socket only changes the queue length.
    #[cfg(unix)]
    unsafe {
        use std::os::fd::AsRawFd;
        libc::listen(listener.as_raw_fd(), BACKLOG);
    }
    Async::new(listener)
}

/// Raises the soft limit of open files to the hard limit, as daemons do,
/// so the connection bound rather than the default 1024 descriptors
/// limits the API.
pub fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return None;
        }
        if r.rlim_cur < r.rlim_max {
            let want = if r.rlim_max == libc::RLIM_INFINITY {
                1 << 20
            } else {
                r.rlim_max
            };
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                r.rlim_cur = want;
            }
        }
        log::debug!("open files limit: {}", r.rlim_cur);
        Some(r.rlim_cur)
    }
}

/// Descriptors kept for everything but the API's connections: the store's
/// files, the component links, provider connections, the metrics
/// listener's few connections, the reactor's own.
pub const FD_RESERVE: u64 = 48;

/// `max_connections` as the open files limit allows it: connections past
/// the limit would meet EMFILE at accept instead of the table's eviction.
/// `None` when it fits.
pub fn clamp_connections(max_connections: usize, fd_limit: Option<u64>) -> Option<usize> {
    let room = fd_limit?.saturating_sub(FD_RESERVE).max(8);
    (max_connections as u64 > room).then_some(room as usize)
}

/// What an accept error means for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceptTrouble {
    /// Out of descriptors, buffers or memory: free one, back off.
    Resources,
    /// The client went away before we took it: nothing to do.
    ClientGone,
    /// Anything else: back off and retry.
    Other,
}

fn classify(e: &io::Error) -> AcceptTrouble {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            AcceptTrouble::Resources
        }
        Some(libc::ECONNABORTED | libc::ECONNRESET | libc::EPROTO | libc::EINTR) => {
            AcceptTrouble::ClientGone
        }
        _ => AcceptTrouble::Other,
    }
}

/// A log line at most every [`LOG_EVERY`], counting what was left out.
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttled {
    /// `Some(skipped since the last line)` when a line may be written now.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|l| now.duration_since(l) < LOG_EVERY) {
            self.skipped += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

/// Plain HTTP or HTTPS.
#[derive(Clone)]
pub enum Scheme {
    /// Plain HTTP.
    Plain,
    /// HTTPS with this acceptor.
    Tls(TlsAcceptor),
}

/// What an accept loop needs.
#[derive(Clone)]
pub struct Context {
    /// Shared by all connections.
    pub shared: Arc<Shared>,
    /// Open connections.
    pub table: Arc<ConnTable>,
    /// Connection deadlines.
    pub timeouts: Timeouts,
}

/// Accepts connections until the task is cancelled.
pub async fn accept_loop(listener: Async<TcpListener>, scheme: Scheme, ctx: Context) {
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let (mut full_log, mut trouble_log, mut gone_log): (Throttled, Throttled, Throttled) =
        Default::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff.reset();
                match ctx.table.admit() {
                    Ok(admitted) => {
                        if admitted.evicted {
                            if let Some(skipped) = full_log.due(Instant::now()) {
                                log::warn!(
                                    "HTTP: {} connections open (http.max_connections): closing \
                                     the oldest idle ones ({skipped} more since the last message)",
                                    ctx.table.len()
                                );
                            }
                        }
                        let (scheme, ctx, slot) = (scheme.clone(), ctx.clone(), admitted.slot);
                        let accepted = Instant::now();
                        smol::spawn(async move {
                            let work = connection(stream, peer, accepted, scheme, &ctx, &slot);
                            work.or(slot.cancelled()).await;
                        })
                        .detach();
                    }
                    Err(Refused::Full) => {
                        if let Some(skipped) = full_log.due(Instant::now()) {
                            log::warn!(
                                "HTTP: all {} connections are serving requests: refusing new \
                                 ones ({skipped} more since the last message)",
                                ctx.table.len()
                            );
                        }
                    }
                    Err(Refused::Closing) => return,
                }
                // Let the new connection's task run before the next accept,
                // so a burst of connects cannot starve served clients.
                futures_lite::future::yield_now().await;
            }
            Err(e) => {
                let trouble = classify(&e);
                if trouble == AcceptTrouble::ClientGone {
                    if let Some(skipped) = gone_log.due(Instant::now()) {
                        log::debug!("HTTP accept: {e} ({skipped} more since the last message)");
                    }
                    continue;
                }
                // Out of descriptors: close the oldest idle connection and
                // accept again as soon as its task has closed it, without
                // a back-off; only with nothing to close, back off.
                if trouble == AcceptTrouble::Resources && ctx.table.evict_oldest_idle() {
                    if let Some(skipped) = trouble_log.due(Instant::now()) {
                        log::warn!(
                            "HTTP accept failed: {e}; closed the oldest idle connection \
                             ({skipped} more since the last message)"
                        );
                    }
                    for _ in 0..4 {
                        futures_lite::future::yield_now().await;
                    }
                    continue;
                }
                let delay = backoff.next_delay(fastrand::f64());
                if let Some(skipped) = trouble_log.due(Instant::now()) {
                    log::error!(
                        "HTTP accept failed: {e}; retrying in {delay:?} \
                         ({skipped} more failures since the last message)"
                    );
                }
                smol::Timer::after(delay).await;
            }
        }
    }
}

/// One accepted connection: TLS handshake if any, then HTTP.
async fn connection(
    stream: Async<TcpStream>,
    peer: SocketAddr,
    accepted: Instant,
    scheme: Scheme,
    ctx: &Context,
    slot: &super::table::Slot,
) {
    let t = &ctx.timeouts;
    match scheme {
        Scheme::Plain => {
            let mut stream = stream;
            conn::serve(&mut stream, peer, accepted, slot, &ctx.shared, t).await;
        }
        // Boxed: TLS state is large and only HTTPS connections need it.
        Scheme::Tls(acceptor) => {
            Box::pin(async move {
                let handshake = async { acceptor.accept(stream).await.ok() }
                    .or(async {
                        smol::Timer::at(accepted + t.request).await;
                        None
                    })
                    .await;
                if let Some(mut tls) = handshake {
                    conn::serve(&mut tls, peer, accepted, slot, &ctx.shared, t).await;
                }
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_fit_the_open_files_limit() {
        assert_eq!(clamp_connections(1024, Some(65_536)), None);
        assert_eq!(clamp_connections(1024, None), None);
        assert_eq!(
            clamp_connections(1024, Some(1024)),
            Some(1024 - FD_RESERVE as usize)
        );
        assert_eq!(clamp_connections(1024, Some(64)), Some(16));
        assert_eq!(
            clamp_connections(1024, Some(10)),
            Some(8),
            "never none at all"
        );
    }

    #[test]
    fn accept_errors_are_classified() {
        let e = |n| classify(&io::Error::from_raw_os_error(n));
        assert_eq!(e(libc::EMFILE), AcceptTrouble::Resources);
        assert_eq!(e(libc::ENFILE), AcceptTrouble::Resources);
        assert_eq!(e(libc::ECONNABORTED), AcceptTrouble::ClientGone);
        assert_eq!(e(libc::EBADF), AcceptTrouble::Other);
    }

    #[test]
    fn trouble_is_logged_at_most_every_few_seconds() {
        let t0 = Instant::now();
        let mut t = Throttled::default();
        assert_eq!(t.due(t0), Some(0));
        assert_eq!(t.due(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.due(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.due(t0 + LOG_EVERY), Some(2));
    }
}
