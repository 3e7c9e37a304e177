//! A small HTTP/2 client for one origin, shared by the APNS and FCM
//! providers. It runs on smol (no tokio runtime): smol TCP, futures-rustls,
//! and the `h2` crate bridged with `tokio_util::compat`.
//!
//! Connections are long-lived and multiplexed: requests share a connection
//! until the server's concurrent stream limit is reached, then more
//! connections open, up to [`H2Options::max_connections`]. Lost
//! connections are replaced on the next request; idle ones are kept alive
//! with PINGs. Requests in flight are bounded, each has a timeout, and a
//! request the server did not process (refused, or cut off by GOAWAY) is
//! reported as [`H2Error::NotProcessed`] so the caller can resend it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use push_appserver::h2client::{tls, H2Client, H2Options, Origin};
//! let origin = Origin::from_https_url("https://api.push.apple.com")?;
//! let client = H2Client::new(origin, tls::client_config(None, None)?, H2Options::default());
//! let req = http::Request::post("/3/device/abcd").body(())?;
//! let response = client.send(req, bytes::Bytes::from_static(b"{}")).await?;
//! println!("{}", response.status);
//! # Ok(()) }
//! ```

mod conn;
mod error;
pub mod tls;
mod x509;

pub use error::{ConnectError, H2Error};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use bytes::Bytes;
use futures_lite::FutureExt;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;

use conn::{Assigned, Conn};
use error::breaks_connection;

/// Where requests go: host, port and the TLS server name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Name sent as SNI and checked against the server certificate.
    pub server_name: ServerName<'static>,
}

/// An origin that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginError {
    /// Not of the form `https://host[:port]`.
    NotHttpsUrl(String),
    /// The host is not a valid DNS name or IP address.
    BadHost(String),
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginError::NotHttpsUrl(s) => {
                write!(f, "{s:?} is not of the form https://host[:port]")
            }
            OriginError::BadHost(h) => write!(f, "{h:?} is not a valid host name"),
        }
    }
}

impl std::error::Error for OriginError {}

impl Origin {
    /// `host:port`, with the host also used as TLS server name.
    pub fn new(host: &str, port: u16) -> Result<Origin, OriginError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| OriginError::BadHost(host.to_owned()))?;
        Ok(Origin {
            host: host.to_owned(),
            port,
            server_name,
        })
    }

    /// Parses `https://host[:port]` (a trailing `/` allowed; no path).
    pub fn from_https_url(url: &str) -> Result<Origin, OriginError> {
        let bad = || OriginError::NotHttpsUrl(url.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS)
            || !matches!(uri.path(), "" | "/")
            || uri.query().is_some()
        {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Origin::new(host, authority.port_u16().unwrap_or(443))
    }

    /// `host` or `host:port` (port omitted when 443), as in URLs.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host` or `host:port` as in an https URL: an IPv6 address in brackets,
/// the port omitted when it is 443.
pub fn authority(host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == 443 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// Tuning of an [`H2Client`]; the defaults suit APNS and FCM.
#[derive(Clone, Debug)]
pub struct H2Options {
    /// Most connections open at once (more open only when the server's
    /// concurrent stream limit is reached on all of them).
    pub max_connections: usize,
    /// Most requests in flight at once; more wait for a slot.
    pub max_in_flight: usize,
    /// Time for one request, from the call until the full response,
    /// including waiting for a slot or a connection.
    pub request_timeout: Duration,
    /// Time to open a connection (TCP, TLS and the HTTP/2 preface).
    pub connect_timeout: Duration,
    /// A connection idle this long is checked with a PING.
    pub keepalive_interval: Duration,
    /// A PING unanswered this long closes the connection.
    pub ping_timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Until a connection has had one successful response, send only one
    /// request at a time on it (APNS token auth needs this).
    pub one_request_first: bool,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            max_connections: 4,
            max_in_flight: 2000,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            one_request_first: false,
        }
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct H2Response {
    /// HTTP status.
    pub status: http::StatusCode,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Connection attempts and their backoff.
#[derive(Debug, Default)]
struct ConnectState {
    failures: u32,
    retry_at: Option<Instant>,
}

/// An HTTP/2 client for one origin. Cheap to share behind an `Arc`;
/// dropping it closes its connections.
pub struct H2Client {
    origin: Origin,
    tls: TlsConnector,
    opts: H2Options,
    pool: Mutex<Vec<Arc<Conn>>>,
    connecting: smol::lock::Mutex<ConnectState>,
    slots: smol::lock::Semaphore,
    opened: AtomicU64,
}

impl fmt::Debug for H2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H2Client")
            .field("origin", &self.origin)
            .field("connections_open", &self.connections_open())
            .field("connections_opened", &self.connections_opened())
            .finish()
    }
}

impl H2Client {
    /// A client for `origin`; connects lazily on the first request.
    pub fn new(origin: Origin, tls: Arc<rustls::ClientConfig>, opts: H2Options) -> H2Client {
        H2Client {
            origin,
            tls: TlsConnector::from(tls),
            slots: smol::lock::Semaphore::new(opts.max_in_flight.max(1)),
            opts,
            pool: Mutex::new(Vec::new()),
            connecting: smol::lock::Mutex::new(ConnectState::default()),
            opened: AtomicU64::new(0),
        }
    }

    /// The origin requests go to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Connections currently usable.
    pub fn connections_open(&self) -> usize {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter().filter(|c| c.usable()).count()
    }

    /// Connections opened since the client was made.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sends one request with `body` and reads the whole response. A URI
    /// without scheme and authority (just a path) is completed with the
    /// origin's; the version is always HTTP/2.
    pub async fn send(
        &self,
        mut req: http::Request<()>,
        body: Bytes,
    ) -> Result<H2Response, H2Error> {
        complete_uri(&mut req, &self.origin)?;
        let exchange = async {
            let _slot = self.slots.acquire().await;
            let conn = self.checkout().await.map_err(|e| (e, None))?;
            let mut _gate = None;
            if self.opts.one_request_first && !conn.confirmed() {
                let gate = conn.first_gate.lock().await;
                // Whoever held the gate may have confirmed the connection.
                if !conn.confirmed() {
                    _gate = Some(gate);
                }
            }
            let result = conn.exchange(req, body, self.opts.max_response_bytes).await;
            match &result {
                Ok(r) if confirms_connection(r.status) => conn.confirm(),
                Err(e) if breaks_connection(e) => conn.retire(),
                _ => {}
            }
            let id = conn.id;
            drop(_gate);
            result.map_err(|e| (e, Some(id)))
        };
        let timeout = async {
            // Coarse: it almost never fires, and a reactor timer per
            // request costs an extra reactor round (see crate::deadline).
            crate::deadline::sleep(self.opts.request_timeout).await;
            Err((H2Error::Timeout, None))
        };
        match exchange.or(timeout).await {
            Ok(response) => Ok(response),
            Err((e, conn)) => {
                if let Some(id) = conn {
                    log::debug!("h2 request on connection {id} failed: {e}");
                }
                if matches!(e, H2Error::Timeout) {
                    self.check_connections();
                }
                Err(e)
            }
        }
    }

    /// Asks every connection to prove it is alive (after a timeout).
    fn check_connections(&self) {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for conn in pool.iter() {
            conn.check_soon();
        }
    }

    /// A connection for one request: the least loaded one below the
    /// server's stream limit, a new one if all are full and the pool has
    /// room, else the least loaded (h2 queues the stream).
    async fn checkout(&self) -> Result<Assigned, H2Error> {
        if let Some(conn) = self.pick(false) {
            return Ok(conn);
        }
        let mut state = self.connecting.lock().await;
        // Someone else may have connected while we waited.
        if let Some(conn) = self.pick(false) {
            return Ok(conn);
        }
        let now = Instant::now();
        if let Some(at) = state.retry_at.filter(|at| *at > now) {
            if let Some(conn) = self.pick(true) {
                return Ok(conn);
            }
            return Err(H2Error::Connect(ConnectError::BackingOff {
                retry_in: at - now,
            }));
        }
        // Connects are serialized by `connecting`, so ids are unique.
        let id = self.opened.load(Ordering::Relaxed) + 1;
        let open = Conn::open(id, &self.origin, &self.tls, &self.opts).or(async {
            Timer::after(self.opts.connect_timeout).await;
            Err(ConnectError::Timeout)
        });
        match open.await {
            Ok(conn) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                state.failures = 0;
                state.retry_at = None;
                let conn = Arc::new(conn);
                let assigned = conn.assign();
                self.lock_pool().push(conn);
                Ok(assigned)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                state.retry_at = Some(Instant::now() + connect_backoff(state.failures));
                log::warn!(
                    "cannot connect to {}:{}: {e}",
                    self.origin.host,
                    self.origin.port
                );
                Err(H2Error::Connect(e))
            }
        }
    }

    /// Picks a connection; `overflow` allows a saturated one even when the
    /// pool has room.
    fn pick(&self, overflow: bool) -> Option<Assigned> {
        let mut pool = self.lock_pool();
        pool.retain(|c| c.usable());
        let one_first = self.opts.one_request_first;
        // An unconfirmed connection in one-request-first mode takes
        // everything: its real stream limit is not known yet.
        let open_more = pool.len() < self.opts.max_connections.max(1) && !overflow;
        let best = pool
            .iter()
            .filter(|c| (one_first && !c.confirmed()) || !c.saturated() || !open_more)
            .min_by_key(|c| c.in_flight())?;
        Some(best.assign())
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A response that shows the server accepts our requests on this
/// connection: a success or a client error other than authentication or
/// rate limiting.
fn confirms_connection(status: http::StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 407 | 429))
}

/// 250 ms doubling per failure, at most 30 s.
fn connect_backoff(failures: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(30_000))
}

fn complete_uri(req: &mut http::Request<()>, origin: &Origin) -> Result<(), H2Error> {
    *req.version_mut() = http::Version::HTTP_2;
    if req.uri().authority().is_some() {
        return Ok(());
    }
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTPS);
    parts.authority = Some(
        origin
            .authority()
            .parse()
            .map_err(|e: http::uri::InvalidUri| H2Error::InvalidRequest(e.into()))?,
    );
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = http::Uri::from_parts(parts)
        .map_err(|e: http::uri::InvalidUriParts| H2Error::InvalidRequest(e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_from_urls() {
        let o = Origin::from_https_url("https://api.push.apple.com").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("api.push.apple.com", 443));
        assert_eq!(o.authority(), "api.push.apple.com");
        let o = Origin::from_https_url("https://127.0.0.1:2197/").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 2197));
        assert_eq!(o.authority(), "127.0.0.1:2197");
        for bad in [
            "http://api.push.apple.com",
            "https://api.push.apple.com/3/device",
            "api.push.apple.com",
            "https://user@host",
            "https://host?x=1",
        ] {
            assert!(Origin::from_https_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_get_the_origin() {
        let origin = Origin::new("localhost", 8443).unwrap();
        let mut req = http::Request::post("/3/device/ab").body(()).unwrap();
        complete_uri(&mut req, &origin).unwrap();
        assert_eq!(req.uri(), "https://localhost:8443/3/device/ab");
        assert_eq!(req.version(), http::Version::HTTP_2);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(connect_backoff(1), Duration::from_millis(250));
        assert_eq!(connect_backoff(2), Duration::from_millis(500));
        assert_eq!(connect_backoff(30), Duration::from_secs(30));
    }

    #[test]
    fn auth_failures_do_not_confirm_a_connection() {
        assert!(confirms_connection(http::StatusCode::OK));
        assert!(confirms_connection(http::StatusCode::GONE));
        assert!(!confirms_connection(http::StatusCode::FORBIDDEN));
        assert!(!confirms_connection(http::StatusCode::TOO_MANY_REQUESTS));
        assert!(!confirms_connection(http::StatusCode::SERVICE_UNAVAILABLE));
    }
}
