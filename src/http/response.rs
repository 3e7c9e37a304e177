//! Responses: status, content type and body serialized as HTTP/1.1.

/// Sent before reading a body the client waits to be invited for.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// Close the connection after this response.
    pub close: bool,
    /// Never stored by a cache, and told apart by `Accept` (the health and
    /// status answers: the same path answers HTML or JSON, and is live).
    pub live: bool,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            close: false,
            live: false,
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response {
            content_type: "text/html; charset=utf-8",
            ..Response::text(status, body)
        }
    }

    /// A JSON document.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response {
            content_type: "application/json",
            ..Response::text(status, body)
        }
    }

    /// mod_push_appserver's `ERROR\n<reason>\n` answer.
    pub fn error(status: u16, why: &str) -> Self {
        Response::text(status, format!("ERROR\n{why}\n"))
    }

    /// The same response, marked live (see [`Response::live`]).
    pub fn live(self) -> Self {
        Response { live: true, ..self }
    }

    /// The same response, closing the connection afterwards.
    pub fn closing(self) -> Self {
        Response {
            close: true,
            ..self
        }
    }

    /// The response as bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ctype = self.content_type;
        let mut out = format!(
            // nosniff: a browser must not read a text answer that echoes
            // a client's input as anything but text.
            "HTTP/1.1 {} {}\r\nContent-Type: {ctype}\r\nX-Content-Type-Options: nosniff\r\n\
             Content-Length: {}\r\n{}{}\r\n",
            self.status,
            reason(self.status),
            self.body.len(),
            if self.close {
                "Connection: close\r\n"
            } else {
                ""
            },
            if self.live {
                "Cache-Control: no-store\r\nVary: Accept\r\n"
            } else {
                ""
            },
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_status_headers_and_body() {
        let r = Response::error(413, "too large").closing();
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n\
             X-Content-Type-Options: nosniff\r\n\
             Content-Length: 16\r\nConnection: close\r\n\r\nERROR\ntoo large\n"
        );
        let h = String::from_utf8(Response::html(200, "<p>").to_bytes()).unwrap();
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"),
            "{h}"
        );
        assert!(!h.contains("Connection"), "{h}");
    }
}
