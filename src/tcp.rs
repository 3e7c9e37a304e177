//! A TCP stream for the provider connections (HTTP/2 over TLS) that skips
//! the read which can only say "nothing more".
//!
//! `smol::net::TcpStream` tries every read first and waits for readiness
//! only when the read says `WouldBlock`. A response from APNS or FCM
//! usually arrives in one segment, and h2 polls its connection (so reads)
//! again after every request it queues: at a few pushes in flight that was
//! four reads per push that could only say `WouldBlock`. Here a read that
//! did not fill the buffer marks the stream drained, and a drained stream
//! waits for the reactor's readiness event before it reads again. Nothing
//! is missed: interest is registered level-triggered, so data that arrived
//! in between is reported at once.
//!
//! Not for the component links: there stanzas stream in continuously at
//! high rates, and a read that often finds more data is cheaper than a
//! reactor round (five system calls with async-io) before each.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

/// See the module documentation. Clones share the socket; each clone
/// tracks its own reads.
#[derive(Debug, Clone)]
pub struct TcpStream {
    io: Arc<Async<std::net::TcpStream>>,
    drained: bool,
}

impl From<smol::net::TcpStream> for TcpStream {
    fn from(s: smol::net::TcpStream) -> TcpStream {
        TcpStream {
            io: s.into(),
            drained: false,
        }
    }
}

impl TcpStream {
    /// Shuts down the read, write or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.drained {
                ready!(self.io.poll_readable(cx))?;
                self.drained = false;
            }
            match self.io.get_ref().read(buf) {
                Ok(n) => {
                    // A short read emptied the socket's buffer (as far as
                    // anyone can tell without another read).
                    self.drained = n > 0 && n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Retries `op` until it does not block, waiting for writability between.
fn poll_write_with<T>(
    io: &Async<std::net::TcpStream>,
    cx: &mut Context<'_>,
    mut op: impl FnMut(&std::net::TcpStream) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match op(io.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return Poll::Ready(res),
        }
        ready!(io.poll_writable(cx))?;
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_with(&self.io, cx, |mut s| s.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // One writev for TLS's queued records, not one write each.
        poll_write_with(&self.io, cx, |mut s| s.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // TCP has no user-space buffer here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = futures_lite::future::zip(smol::net::TcpStream::connect(addr), async {
            listener.accept().await.map(|(s, _)| s)
        })
        .await;
        (a.unwrap().into(), b.unwrap().into())
    }

    #[test]
    fn data_that_arrives_after_a_short_read_is_read() {
        smol::block_on(async {
            let (mut a, mut b) = pair().await;
            let mut buf = [0u8; 64];
            a.write_all(b"one").await.unwrap();
            assert_eq!(b.read(&mut buf).await.unwrap(), 3);
            assert!(b.drained, "a short read marks the stream drained");
            // Written before the reader waits again, and after: both seen.
            a.write_all(b"two").await.unwrap();
            assert_eq!(b.read(&mut buf).await.unwrap(), 3);
            let reader = smol::spawn(async move {
                let n = b.read(&mut buf).await.unwrap();
                buf[..n].to_vec()
            });
            smol::Timer::after(Duration::from_millis(20)).await;
            a.write_all(b"three").await.unwrap();
            assert_eq!(reader.await, b"three");
        });
    }

    #[test]
    fn a_full_read_reads_again_at_once_and_eof_is_seen() {
        smol::block_on(async {
            let (mut a, mut b) = pair().await;
            a.write_all(&[7u8; 100]).await.unwrap();
            a.close().await.unwrap();
            let mut buf = [0u8; 40];
            let mut total = 0;
            loop {
                let n = b.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, 100);
        });
    }

    #[test]
    fn vectored_writes_send_every_slice() {
        smol::block_on(async {
            let (mut a, mut b) = pair().await;
            let bufs = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
            let n =
                futures_lite::future::poll_fn(|cx| Pin::new(&mut a).poll_write_vectored(cx, &bufs))
                    .await
                    .unwrap();
            assert_eq!(n, 4);
            let mut buf = [0u8; 8];
            let mut got = Vec::new();
            while got.len() < 4 {
                let n = b.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"abcd");
        });
    }
}
