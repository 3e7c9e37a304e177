//! One HTTP/1.1 connection: read a head and a body within the request
//! deadline, answer, write within the write deadline, and keep the
//! connection for further requests while it is used. Every wait on the
//! client has a deadline and every buffer a bound (head 8 KiB, body
//! 4 KiB), so a connection costs a few KiB however the client behaves.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};

use super::request::{self, Head};
use super::response::{Response, CONTINUE};
use super::routes::{self, Shared};
use super::table::{Phase, Slot};
use super::MAX_BODY;

/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS: usize = 100;
/// How long a body may take once its head has arrived (within the request
/// deadline): 4 KiB take milliseconds, so a client that sends a head and
/// then trickles or withholds the body is cut off soon.
pub const BODY_WAIT: Duration = Duration::from_secs(5);
/// Bytes read and dropped after an error response, so the response is not
/// lost to a TCP reset caused by unread input.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// The deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accept (first request) or first byte (later ones) until the
    /// head and body have arrived; also bounds the TLS handshake.
    pub request: Duration,
    /// How long an idle keep-alive connection is kept.
    pub idle: Duration,
    /// How long writing a response may take.
    pub write: Duration,
}

/// `value` after `d`: the losing side of a race with a deadline.
async fn after<T>(d: Duration, value: T) -> T {
    smol::Timer::after(d).await;
    value
}

/// How reading a request ended without one.
enum ReadEnd {
    /// The client closed or the socket failed.
    Closed,
    /// The deadline passed.
    TimedOut,
}

/// Reads more bytes into `buf` before `deadline`.
async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), ReadEnd> {
    let mut chunk = [0u8; 1024];
    let read = async { io.read(&mut chunk).await.map_err(|_| ReadEnd::Closed) };
    let timeout = async {
        smol::Timer::at(deadline).await;
        Err(ReadEnd::TimedOut)
    };
    match read.or(timeout).await? {
        0 => Err(ReadEnd::Closed),
        n => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Writes all of `bytes` within `timeout`.
async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    async {
        io.write_all(bytes).await?;
        io.flush().await
    }
    .or(async {
        smol::Timer::after(timeout).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
}

/// Sends a final error response, then closes gracefully: our side is shut
/// down and input is drained for a moment.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, resp: Response, t: &Timeouts) {
    if write(io, &resp.closing().to_bytes(), t.write)
        .await
        .is_err()
    {
        return;
    }
    let _ = io.close().or(after(t.write, Ok(()))).await;
    let drain = async {
        let mut chunk = [0u8; 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    drain.or(after(LINGER_TIME, ())).await;
}

/// Reads the next request head; `None` when the connection should end.
async fn read_head<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
    t: &Timeouts,
) -> Option<Head> {
    loop {
        match request::parse_head(buf) {
            Ok(Some(head)) => return Some(head),
            Ok(None) => {}
            Err(e) => {
                refuse(io, Response::error(e.status(), e.reason()), t).await;
                return None;
            }
        }
        match read_more(io, buf, deadline).await {
            Ok(()) => {}
            Err(ReadEnd::TimedOut) if !buf.is_empty() => {
                refuse(io, Response::error(408, "request timeout"), t).await;
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// Serves requests on `io` from `peer`, accepted at `accepted`, until the
/// client is done, a deadline passes or [`MAX_REQUESTS`] were served. The
/// caller races this with [`Slot::cancelled`].
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    peer: SocketAddr,
    accepted: Instant,
    slot: &Slot,
    shared: &Shared,
    t: &Timeouts,
) {
    let mut buf: Vec<u8> = Vec::new();
    for n in 0..MAX_REQUESTS {
        slot.set_phase(Phase::Idle);
        let deadline = if n == 0 {
            accepted + t.request
        } else {
            if buf.is_empty() {
                // Keep-alive: the next request must start within the idle time.
                buf = Vec::new();
                if read_more(io, &mut buf, Instant::now() + t.idle)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Instant::now() + t.request
        };
        let Some(head) = read_head(io, &mut buf, deadline, t).await else {
            return;
        };
        slot.set_phase(Phase::Receiving);
        if head.content_length > MAX_BODY as u64 {
            let resp = Response::error(413, "request body too large (max 4096 bytes)");
            return refuse(io, resp, t).await;
        }
        let end = head.len + head.content_length as usize;
        if head.expect_continue && buf.len() < end && write(io, CONTINUE, t.write).await.is_err() {
            return;
        }
        let body_deadline = deadline.min(Instant::now() + BODY_WAIT);
        while buf.len() < end {
            match read_more(io, &mut buf, body_deadline).await {
                Ok(()) => {}
                Err(ReadEnd::TimedOut) => {
                    return refuse(io, Response::error(408, "request timeout"), t).await;
                }
                Err(ReadEnd::Closed) => return,
            }
        }
        // Never evicted only once the request is complete: a client that
        // sends a head and withholds its body holds nothing a real client
        // needs.
        slot.set_phase(Phase::Serving);
        let client = shared.client(peer.ip(), &head);
        // Boxed: the answer's state exists only while a request is served,
        // not in every idle connection's task.
        let mut resp = Box::pin(routes::route(shared, &head, &buf[head.len..end], client)).await;
        log::debug!(
            "HTTP {client} {} {} -> {}",
            head.method,
            head.path.get(..80).unwrap_or(&head.path),
            resp.status
        );
        buf.drain(..end);
        if head.close || slot.closing() || n + 1 == MAX_REQUESTS {
            resp = resp.closing();
        }
        if let Err(e) = write(io, &resp.to_bytes(), t.write).await {
            log::debug!("HTTP {peer}: closing, response not sent: {e}");
            return;
        }
        if resp.close {
            let _ = io.close().or(after(t.write, Ok(()))).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A peer that never takes a byte.
    struct Stuck;

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    #[test]
    fn a_reader_that_takes_nothing_is_cut_off_at_the_write_deadline() {
        let t0 = Instant::now();
        let r = smol::block_on(write(
            &mut Stuck,
            b"HTTP/1.1 200 OK\r\n",
            Duration::from_millis(100),
        ));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // Cut off rather than held: a hang bound, sized for a busy machine.
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn reads_end_at_the_deadline() {
        let mut buf = Vec::new();
        let r = smol::block_on(read_more(
            &mut futures_lite::io::empty(),
            &mut buf,
            Instant::now() + Duration::from_secs(5),
        ));
        assert!(matches!(r, Err(ReadEnd::Closed)));
        let r = smol::block_on(read_more(
            &mut PendingRead,
            &mut buf,
            Instant::now() + Duration::from_millis(50),
        ));
        assert!(matches!(r, Err(ReadEnd::TimedOut)));
    }

    /// A peer that never sends.
    struct PendingRead;

    impl AsyncRead for PendingRead {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }
}
