//! Errors of the HTTP/2 client, typed so callers can decide whether to
//! resend: [`H2Error::NotProcessed`] is always safe to resend,
//! [`H2Error::ConnectionLost`] and [`H2Error::Timeout`] may have reached the
//! server.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a request got no response.
#[derive(Debug)]
#[non_exhaustive]
pub enum H2Error {
    /// No connection could be opened; the request was not sent.
    Connect(ConnectError),
    /// The server did not process the request (it refused the stream, the
    /// stream was above a GOAWAY's last stream id, or the connection was
    /// already going away): resend it, it goes out on a fresh connection.
    NotProcessed(h2::Error),
    /// The connection broke while the request was in flight; the server
    /// may or may not have processed it.
    ConnectionLost(h2::Error),
    /// No complete response within the request timeout.
    Timeout,
    /// The server reset the stream, or another HTTP/2 error.
    Protocol(h2::Error),
    /// The response body exceeded the client's limit.
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request could not be encoded (for example an invalid URI).
    InvalidRequest(http::Error),
}

impl H2Error {
    /// Whether resending the same request is safe and sensible now: the
    /// server certainly did not process it.
    pub fn is_not_processed(&self) -> bool {
        matches!(self, H2Error::NotProcessed(_))
    }
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H2Error::Connect(e) => write!(f, "cannot connect: {e}"),
            H2Error::NotProcessed(e) => write!(f, "not processed by the server: {e}"),
            H2Error::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            H2Error::Timeout => f.write_str("no response in time"),
            H2Error::Protocol(e) => write!(f, "HTTP/2 error: {e}"),
            H2Error::ResponseTooLarge { limit } => {
                write!(f, "response body larger than {limit} bytes")
            }
            H2Error::InvalidRequest(e) => write!(f, "invalid request: {e}"),
        }
    }
}

impl std::error::Error for H2Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            H2Error::Connect(e) => Some(e),
            H2Error::NotProcessed(e) | H2Error::ConnectionLost(e) | H2Error::Protocol(e) => Some(e),
            H2Error::InvalidRequest(e) => Some(e),
            H2Error::Timeout | H2Error::ResponseTooLarge { .. } => None,
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// Name resolution or the TCP connection failed.
    Tcp(io::Error),
    /// The TLS handshake failed (certificate not trusted, client
    /// certificate refused, ...).
    Tls(io::Error),
    /// The server did not agree to HTTP/2 (ALPN `h2`).
    NoHttp2,
    /// The HTTP/2 preface exchange failed.
    Handshake(h2::Error),
    /// Connecting took longer than the connect timeout.
    Timeout,
    /// The server closed the connection before it was ready (no answer
    /// to the first PING).
    Closed,
    /// Recent attempts failed; the next is allowed after `retry_in`.
    BackingOff {
        /// Time until the next attempt.
        retry_in: Duration,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "TCP: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS: {e}"),
            ConnectError::NoHttp2 => f.write_str("server did not negotiate HTTP/2"),
            ConnectError::Handshake(e) => write!(f, "HTTP/2 handshake: {e}"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Closed => f.write_str("connection closed during setup"),
            ConnectError::BackingOff { retry_in } => write!(
                f,
                "recent connection attempts failed, next one in {} ms",
                retry_in.as_millis()
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Tcp(e) | ConnectError::Tls(e) => Some(e),
            ConnectError::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

/// Sorts an error of an open stream: refused or above the GOAWAY line
/// means not processed; a broken connection means the outcome is unknown.
pub(crate) fn classify_stream_error(e: h2::Error) -> H2Error {
    if e.reason() == Some(h2::Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote()) {
        H2Error::NotProcessed(e)
    } else if e.is_io() || e.is_go_away() {
        H2Error::ConnectionLost(e)
    } else {
        H2Error::Protocol(e)
    }
}

/// Whether a stream error means the connection is unusable for new
/// requests.
pub(crate) fn breaks_connection(e: &H2Error) -> bool {
    match e {
        H2Error::NotProcessed(e) => e.is_go_away() || e.is_io(),
        H2Error::ConnectionLost(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_streams_are_not_processed_other_resets_are_protocol_errors() {
        let refused = classify_stream_error(h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert!(refused.is_not_processed());
        assert!(!breaks_connection(&refused));
        let other = classify_stream_error(h2::Error::from(h2::Reason::INTERNAL_ERROR));
        assert!(matches!(other, H2Error::Protocol(_)));
    }
}
