//! One HTTP/2 connection: TCP + TLS + h2, driven by a smol task that also
//! keeps it alive with PINGs, and the per-request exchange on it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use bytes::{Bytes, BytesMut};
use futures_lite::FutureExt;
use futures_rustls::TlsConnector;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::error::{classify_stream_error, ConnectError, H2Error};
use super::{H2Options, H2Response, Origin};

/// Largest window we grant the server for a response body.
const WINDOW: u32 = 1 << 20;

/// State shared between a connection's users and its driver task.
#[derive(Debug)]
struct Shared {
    /// False once the connection closed or is going away.
    usable: AtomicBool,
    /// Requests currently assigned to this connection.
    in_flight: AtomicUsize,
    /// Milliseconds since `born` of the last completed exchange.
    last_active_ms: AtomicU64,
    born: Instant,
    /// True once a response proved the server accepts our requests.
    confirmed: AtomicBool,
}

impl Shared {
    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

/// An open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Sequence number, for logs.
    pub id: u64,
    send: h2::client::SendRequest<Bytes>,
    shared: Arc<Shared>,
    /// Admits one request at a time until the connection is confirmed.
    pub first_gate: smol::lock::Mutex<()>,
    /// Wakes the keepalive for an early PING (after a timeout).
    ping_now: smol::channel::Sender<()>,
    _driver: smol::Task<()>,
}

impl Conn {
    /// Opens a connection to `origin` and spawns its driver.
    pub async fn open(
        id: u64,
        origin: &Origin,
        tls: &TlsConnector,
        opts: &H2Options,
    ) -> Result<Conn, ConnectError> {
        let tcp = smol::net::TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(ConnectError::Tcp)?;
        tcp.set_nodelay(true).map_err(ConnectError::Tcp)?;
        let stream = tls
            .connect(origin.server_name.clone(), crate::tcp::TcpStream::from(tcp))
            .await
            .map_err(ConnectError::Tls)?;
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(ConnectError::NoHttp2);
        }
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(WINDOW)
            .initial_connection_window_size(WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(stream.compat())
            .await
            .map_err(ConnectError::Handshake)?;
        let shared = Arc::new(Shared {
            usable: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            born: Instant::now(),
            confirmed: AtomicBool::new(false),
        });
        let (ping_now, ping_rx) = smol::channel::bounded(1);
        let (ready_tx, ready_rx) = smol::channel::bounded(1);
        let keepalive = keepalive(
            connection.ping_pong(),
            shared.clone(),
            ready_tx,
            ping_rx,
            opts.keepalive_interval,
            opts.ping_timeout,
        );
        let driver_shared = shared.clone();
        let host = origin.host.clone();
        let driver = smol::spawn(async move {
            let end = async { connection.await.map_err(|e| e.to_string()) }
                .or(keepalive)
                .await;
            driver_shared.usable.store(false, Ordering::Release);
            match end {
                Ok(()) => log::debug!("h2 connection {id} to {host} closed"),
                Err(e) => log::info!("h2 connection {id} to {host} ended: {e}"),
            }
        });
        // The server's SETTINGS come before its first PONG: once the PONG
        // is in, h2 knows the stream limit and never exceeds it.
        ready_rx.recv().await.map_err(|_| ConnectError::Closed)?;
        log::debug!("h2 connection {id} to {} opened", origin.host);
        Ok(Conn {
            id,
            send,
            shared,
            first_gate: smol::lock::Mutex::new(()),
            ping_now,
            _driver: driver,
        })
    }

    /// Whether new requests may use this connection.
    pub fn usable(&self) -> bool {
        self.shared.usable.load(Ordering::Acquire)
    }

    /// Stops new requests from using this connection; those in flight
    /// finish (or fail) on their own.
    pub fn retire(&self) {
        self.shared.usable.store(false, Ordering::Release);
    }

    /// Whether a response proved the server accepts our requests here.
    pub fn confirmed(&self) -> bool {
        self.shared.confirmed.load(Ordering::Acquire)
    }

    /// Marks the connection as confirmed (see [`Conn::confirmed`]).
    pub fn confirm(&self) {
        self.shared.confirmed.store(true, Ordering::Release);
    }

    /// Requests currently assigned here.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Whether the server's concurrent stream limit is reached.
    pub fn saturated(&self) -> bool {
        self.in_flight() >= self.send.current_max_send_streams()
    }

    /// Counts a request as assigned here until the guard drops.
    pub fn assign(self: &Arc<Self>) -> Assigned {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Assigned(self.clone())
    }

    /// Asks the keepalive to check the connection now.
    pub fn check_soon(&self) {
        let _ = self.ping_now.try_send(());
    }

    /// One request/response exchange on this connection.
    pub async fn exchange(
        &self,
        req: http::Request<()>,
        body: Bytes,
        max_body: usize,
    ) -> Result<H2Response, H2Error> {
        // Errors before the stream opens mean nothing was sent.
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(H2Error::NotProcessed)?;
        let end_of_stream = body.is_empty();
        let (response, mut stream) = send
            .send_request(req, end_of_stream)
            .map_err(H2Error::NotProcessed)?;
        if !end_of_stream {
            stream
                .send_data(body, true)
                .map_err(classify_stream_error)?;
        }
        let response = response.await.map_err(classify_stream_error)?;
        let (parts, mut recv) = response.into_parts();
        let mut buf = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(classify_stream_error)?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            if buf.len() + chunk.len() > max_body {
                return Err(H2Error::ResponseTooLarge { limit: max_body });
            }
            buf.extend_from_slice(&chunk);
        }
        self.shared.touch();
        Ok(H2Response {
            status: parts.status,
            headers: parts.headers,
            body: buf.freeze(),
        })
    }
}

/// A request's claim on a connection; releases it on drop.
#[derive(Debug)]
pub(crate) struct Assigned(Arc<Conn>);

impl std::ops::Deref for Assigned {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl Drop for Assigned {
    fn drop(&mut self) {
        self.0.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// PINGs the server once at the start (then signals `ready`), then
/// whenever the connection has been idle for `interval` or when asked to;
/// ends with an error when no PONG comes back in time.
async fn keepalive(
    ping_pong: Option<h2::PingPong>,
    shared: Arc<Shared>,
    ready: smol::channel::Sender<()>,
    asked: smol::channel::Receiver<()>,
    interval: Duration,
    ping_timeout: Duration,
) -> Result<(), String> {
    let Some(mut ping_pong) = ping_pong else {
        return Err("no PING handle".to_owned());
    };
    ping(&mut ping_pong, ping_timeout).await?;
    let _ = ready.try_send(());
    loop {
        let early = async {
            let _ = asked.recv().await;
            true
        }
        .or(async {
            Timer::after(interval).await;
            false
        })
        .await;
        if !early && shared.idle_for() < interval {
            continue;
        }
        ping(&mut ping_pong, ping_timeout).await?;
    }
}

/// One PING and its PONG, within `timeout`.
async fn ping(ping_pong: &mut h2::PingPong, timeout: Duration) -> Result<(), String> {
    ping_pong
        .send_ping(h2::Ping::opaque())
        .map_err(|e| format!("cannot send PING: {e}"))?;
    async {
        std::future::poll_fn(|cx| ping_pong.poll_pong(cx))
            .await
            .map(|_| ())
            .map_err(|e| format!("PING failed: {e}"))
    }
    .or(async {
        Timer::after(timeout).await;
        Err(format!("no PONG within {} ms", timeout.as_millis()))
    })
    .await
}
