//! Web Push (RFC 8030/8292) and UnifiedPush: one HTTP/1.1 POST over TLS to
//! a URL the device chose. The body is already encrypted (RFC 8291) and the
//! VAPID token already signed by the XMPP server; this module only carries
//! them, behind the [`guard`]: https only, checked resolved addresses,
//! optional host allow-list, no redirects followed, bounded body, response
//! head and time, and a cap on concurrent requests.

pub mod endpoint;
pub mod guard;
pub mod hosts;

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use smol::lock::Semaphore;

pub use endpoint::{Endpoint, EndpointError};
pub use guard::{GuardError, GuardPolicy};

use super::{FailureKind, Outcome};

/// Largest response head read.
const MAX_RESPONSE_HEAD: usize = 8192;

/// Settings of the sender.
#[derive(Debug, Clone)]
pub struct WebPushSettings {
    /// Which targets are allowed.
    pub policy: GuardPolicy,
    /// Time for DNS, connect, TLS, request and response together.
    pub timeout: Duration,
    /// Requests in flight at most; more wait for a place. One host may
    /// have half of them (see [`hosts`]).
    pub max_concurrent: usize,
    /// Largest body sent (UnifiedPush allows 4096 bytes).
    pub max_body: usize,
    /// Extra trusted CA (PEM file or folder), e.g. a private CA.
    pub extra_ca: Option<std::path::PathBuf>,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushRequest {
    /// Where.
    pub endpoint: Endpoint,
    /// The encrypted body (`aes128gcm`).
    pub body: Vec<u8>,
    /// `TTL` in seconds.
    pub ttl: u32,
    /// `Urgency`: `very-low`, `low`, `normal` or `high`.
    pub urgency: &'static str,
    /// `Authorization` value, e.g. `vapid t=...,k=...`.
    pub authorization: Option<String>,
}

/// The outcome of a request's result.
pub fn outcome_of(result: Result<u16, WebPushError>) -> Outcome {
    match result {
        Ok(200..=299) => Outcome::Delivered,
        Ok(404 | 410) => Outcome::DeadToken {
            since: SystemTime::now(),
        },
        Ok(s @ 300..=399) => Outcome::failed(
            FailureKind::Unavailable,
            format!("the endpoint redirects ({s}); redirects are not followed"),
        ),
        Ok(s) => Outcome::failed(
            FailureKind::Unavailable,
            format!("the endpoint answered {s}"),
        ),
        // Generic texts: what is answered goes back to whoever chose the
        // endpoint, and the details (a refused connection, an address the
        // name resolved to) would make the server a scanner's oracle. The
        // details are logged at debug. A name that does not resolve (now)
        // is a transient failure, not a refusal: a refusal can make the
        // XMPP server disable push for the device.
        Err(WebPushError::Refused(GuardError::Resolve(_))) => Outcome::failed(
            FailureKind::Unavailable,
            "the endpoint could not be reached",
        ),
        Err(WebPushError::Refused(_)) => Outcome::failed(
            FailureKind::Refused,
            "this service does not push to that endpoint",
        ),
        Err(WebPushError::Body(n)) => Outcome::failed(
            FailureKind::Unacceptable,
            format!("payload of {n} bytes is empty or too large"),
        ),
        Err(WebPushError::Timeout) => {
            Outcome::failed(FailureKind::Timeout, "the endpoint did not answer in time")
        }
        Err(WebPushError::HostBusy) => Outcome::failed(
            FailureKind::Unavailable,
            "too many pushes to that endpoint's host at once; try again later",
        ),
        Err(_) => Outcome::failed(
            FailureKind::Unavailable,
            "the endpoint could not be reached",
        ),
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum WebPushError {
    /// The guard refused the target.
    Refused(GuardError),
    /// The body is empty or too large.
    Body(usize),
    /// No answer in time.
    Timeout,
    /// Connect, TLS or I/O failure.
    Io(String),
    /// The answer was not HTTP we understand.
    Protocol(&'static str),
    /// The TLS settings could not be built.
    Tls(String),
    /// The endpoint's host has all the requests in flight it may have.
    HostBusy,
}

impl fmt::Display for WebPushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebPushError::Refused(e) => write!(f, "refused: {e}"),
            WebPushError::Body(n) => write!(f, "body of {n} bytes is empty or too large"),
            WebPushError::Timeout => f.write_str("endpoint did not answer in time"),
            WebPushError::Io(e) => write!(f, "endpoint: {e}"),
            WebPushError::Protocol(e) => write!(f, "endpoint answered badly: {e}"),
            WebPushError::Tls(e) => write!(f, "TLS settings: {e}"),
            WebPushError::HostBusy => f.write_str("too many requests to this host at once"),
        }
    }
}

impl std::error::Error for WebPushError {}

/// Sends Web Push requests; cheap to share.
pub struct WebPushSender {
    settings: WebPushSettings,
    tls: TlsConnector,
    slots: Semaphore,
    hosts: hosts::Hosts,
}

impl fmt::Debug for WebPushSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPushSender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WebPushSender {
    /// A sender trusting Mozilla's roots plus `settings.extra_ca`.
    pub fn new(settings: WebPushSettings) -> Result<Self, WebPushError> {
        let base = crate::h2client::tls::client_config(settings.extra_ca.as_deref(), None)
            .map_err(|e| WebPushError::Tls(e.to_string()))?;
        let mut config: ClientConfig = (*base).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(WebPushSender {
            slots: Semaphore::new(settings.max_concurrent.max(1)),
            hosts: hosts::Hosts::new(settings.max_concurrent.max(1)),
            tls: TlsConnector::from(Arc::new(config)),
            settings,
        })
    }

    /// Sends one request as a provider does: the endpoint's answer as an
    /// [`Outcome`]. 404 and 410 mean the subscription is gone; a target
    /// the guard refuses and a body that cannot be sent are final; the
    /// rest may pass.
    pub async fn deliver(&self, req: &WebPushRequest) -> Outcome {
        let result = self.send(req).await;
        if let Err(e) = &result {
            log::debug!("Web Push to {} failed: {e}", req.endpoint.host);
        }
        outcome_of(result)
    }

    /// POSTs one request; returns the HTTP status. Redirects are returned
    /// as their status, never followed.
    pub async fn send(&self, req: &WebPushRequest) -> Result<u16, WebPushError> {
        if req.body.is_empty() || req.body.len() > self.settings.max_body {
            return Err(WebPushError::Body(req.body.len()));
        }
        let timeout = self.settings.timeout;
        let place: Mutex<Option<hosts::HostPlace>> = Mutex::new(None);
        let serving = AtomicBool::new(false);
        // The waits for a place at the host and for a shared slot count
        // towards the timeout too.
        let result = async {
            let at_host = self
                .hosts
                .enter(&req.endpoint.host)
                .await
                .ok_or(WebPushError::HostBusy)?;
            *place.lock().unwrap_or_else(|e| e.into_inner()) = Some(at_host);
            let _slot = self.slots.acquire().await;
            serving.store(true, Ordering::Relaxed);
            let addr = self
                .settings
                .policy
                .resolve(&req.endpoint.host, req.endpoint.port, timeout)
                .await
                .map_err(WebPushError::Refused)?;
            self.post(addr, req).await
        }
        .or(async {
            async_io::Timer::after(timeout).await;
            Err(WebPushError::Timeout)
        })
        .await;
        if let Some(at_host) = place.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match &result {
                // Slow only if it was being served: a request that waited
                // behind others says nothing about its host.
                Err(WebPushError::Timeout) if serving.load(Ordering::Relaxed) => {
                    at_host.timed_out(Instant::now())
                }
                Ok(_) => at_host.answered(),
                _ => {}
            }
            self.hosts.leave(at_host);
        }
        result
    }

    async fn post(&self, addr: SocketAddr, req: &WebPushRequest) -> Result<u16, WebPushError> {
        let io = |e: std::io::Error| WebPushError::Io(e.to_string());
        let tcp = Async::<TcpStream>::connect(addr).await.map_err(io)?;
        let name = ServerName::try_from(req.endpoint.host.clone())
            .map_err(|_| WebPushError::Protocol("host is not a TLS server name"))?;
        let mut tls = self.tls.connect(name, tcp).await.map_err(io)?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
             Content-Encoding: aes128gcm\r\nContent-Length: {}\r\nTTL: {}\r\nUrgency: {}\r\n",
            req.endpoint.path,
            req.endpoint.authority(),
            req.body.len(),
            req.ttl,
            req.urgency,
        );
        if let Some(auth) = &req.authorization {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&req.body);
        tls.write_all(&out).await.map_err(io)?;
        tls.flush().await.map_err(io)?;
        read_status(&mut tls).await
    }
}

/// Reads the response head (bounded) and returns its status; the body is
/// not read.
async fn read_status<R: futures_lite::AsyncRead + Unpin>(r: &mut R) -> Result<u16, WebPushError> {
    let mut buf = vec![0u8; MAX_RESPONSE_HEAD];
    let mut len = 0;
    loop {
        let n = r
            .read(&mut buf[len..])
            .await
            .map_err(|e| WebPushError::Io(e.to_string()))?;
        if n == 0 {
            return Err(WebPushError::Protocol(
                "connection closed before the status",
            ));
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                return resp.code.ok_or(WebPushError::Protocol("no status"))
            }
            Ok(httparse::Status::Partial) if len < buf.len() => continue,
            Ok(httparse::Status::Partial) => {
                return Err(WebPushError::Protocol("response head too large"))
            }
            Err(_) => return Err(WebPushError::Protocol("not an HTTP/1.1 response")),
        }
    }
}

/// The `Authorization` value for a VAPID JWT and the server's public key
/// (given in standard base64 by XMPP, sent as base64url).
pub fn vapid_authorization(jwt: &str, key_base64: &str) -> String {
    format!("vapid t={jwt},k={}", to_base64url(key_base64))
}

/// Standard base64 to unpadded base64url.
pub fn to_base64url(s: &str) -> String {
    s.trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// Decodes standard or url-safe base64, padded or not; `None` if broken.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    crate::jwt::base64url_decode(&to_base64url(&clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vapid_header_uses_base64url() {
        assert_eq!(
            vapid_authorization("a.b.c", "BP+/x9=="),
            "vapid t=a.b.c,k=BP-_x9"
        );
        assert_eq!(decode_base64("aGk=\n"), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("+/8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("a*b"), None);
    }

    #[test]
    fn status_is_read_from_a_bounded_head() {
        smol::block_on(async {
            let mut ok: &[u8] = b"HTTP/1.1 201 Created\r\nLocation: x\r\n\r\nbody";
            assert_eq!(read_status(&mut ok).await.unwrap(), 201);
            let mut redirect: &[u8] = b"HTTP/1.1 301 Moved\r\nLocation: https://10.0.0.1/\r\n\r\n";
            assert_eq!(read_status(&mut redirect).await.unwrap(), 301);
            let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(9000));
            let mut long = long.as_bytes();
            assert!(matches!(
                read_status(&mut long).await,
                Err(WebPushError::Protocol(_))
            ));
            let mut junk: &[u8] = b"SSH-2.0-x\r\n\r\n";
            assert!(read_status(&mut junk).await.is_err());
            let mut cut: &[u8] = b"HTTP/1.1 20";
            assert!(read_status(&mut cut).await.is_err());
        });
    }
}
