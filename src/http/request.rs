//! Request heads: bytes in, the few facts the API needs out. Pure code, no
//! I/O; `httparse` does the tokenizing, this module the HTTP/1.1 rules
//! (one Content-Length, no Transfer-Encoding, bounded size).

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// Most header lines accepted in a head.
pub const MAX_HEADERS: usize = 64;

/// What the API needs from a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path of the request target, query removed, still percent-encoded.
    pub path: String,
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The announced body length (0 without `Content-Length`).
    pub content_length: u64,
    /// The client asked to close after this request (or is HTTP/1.0 without
    /// `Connection: keep-alive`).
    pub close: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// All `X-Forwarded-For` values, joined by commas.
    pub x_forwarded_for: Option<String>,
    /// All `Forwarded` values, joined by commas.
    pub forwarded: Option<String>,
    /// An `Accept` header names `application/json`.
    pub accepts_json: bool,
    /// Length of the head in bytes, the blank line included.
    pub len: usize,
}

/// Why a head is refused; each maps to a status, after which the
/// connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head exceeds [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines.
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed,
    /// `Content-Length` is not a number or is given twice differently.
    BadContentLength,
    /// A `Transfer-Encoding` (chunked bodies are not supported; send
    /// `Content-Length`).
    TransferEncoding,
}

impl HeadError {
    /// The HTTP status answering this error.
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::Malformed | HeadError::BadContentLength => 400,
            HeadError::TransferEncoding => 411,
        }
    }

    /// The reason shown to the client.
    pub fn reason(self) -> &'static str {
        match self {
            HeadError::TooLarge => "request head too large (max 8192 bytes, 64 headers)",
            HeadError::Malformed => "malformed request",
            HeadError::BadContentLength => "bad Content-Length",
            HeadError::TransferEncoding => {
                "Transfer-Encoding is not supported; send Content-Length"
            }
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is
/// incomplete (and still within [`MAX_HEAD`]).
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    let mut head = Head {
        method: method.to_owned(),
        path: target_path(target).to_owned(),
        host: None,
        content_length: 0,
        close: minor == 0,
        expect_continue: false,
        x_forwarded_for: None,
        forwarded: None,
        accepts_json: false,
        len,
    };
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = h.name;
        let value = std::str::from_utf8(h.value).ok().map(str::trim);
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(HeadError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::BadContentLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HeadError::TransferEncoding);
        } else if name.eq_ignore_ascii_case("host") {
            head.host = value.map(str::to_owned);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.unwrap_or_default().split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && minor == 0 {
                    head.close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            append(&mut head.x_forwarded_for, value.unwrap_or_default());
        } else if name.eq_ignore_ascii_case("forwarded") {
            append(&mut head.forwarded, value.unwrap_or_default());
        } else if name.eq_ignore_ascii_case("accept") {
            head.accepts_json |= value.is_some_and(accepts_json);
        }
    }
    head.content_length = length.unwrap_or(0);
    Ok(Some(head))
}

/// Later header lines of a list-valued header extend the earlier ones.
fn append(to: &mut Option<String>, value: &str) {
    match to {
        Some(s) => {
            s.push_str(", ");
            s.push_str(value);
        }
        None => *to = Some(value.to_owned()),
    }
}

/// The path of an origin-form (`/a?b`) or absolute-form
/// Whether an `Accept` value names JSON (any case) with a weight above 0.
fn accepts_json(v: &str) -> bool {
    v.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        media.eq_ignore_ascii_case("application/json") && !refused
    })
}

/// (`http://host/a?b`) request target, without its query.
fn target_path(target: &str) -> &str {
    let path = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    path.split(['?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Head>, HeadError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn a_complete_head_yields_what_the_api_needs() {
        let text =
            "POST /push_appserver/v1/register?x=1 HTTP/1.1\r\nHost: Push.example.org:5280\r\n\
                    Content-Length: 12\r\nExpect: 100-continue\r\nX-Forwarded-For: 1.2.3.4\r\n\
                    x-forwarded-for: 5.6.7.8\r\n\r\ntype=fcm&...";
        let h = parse(text).unwrap().unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/push_appserver/v1/register");
        assert_eq!(h.host.as_deref(), Some("Push.example.org:5280"));
        assert_eq!(h.content_length, 12);
        assert!(h.expect_continue && !h.close);
        assert_eq!(h.x_forwarded_for.as_deref(), Some("1.2.3.4, 5.6.7.8"));
        assert_eq!(h.len, text.len() - 12);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let close = |s: &str| parse(s).unwrap().unwrap().close;
        assert!(!close("GET / HTTP/1.1\r\n\r\n"));
        assert!(close("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(close("GET / HTTP/1.0\r\n\r\n"));
        assert!(!close("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert_eq!(
            parse("GET http://h:1/a/b?c HTTP/1.1\r\n\r\n")
                .unwrap()
                .unwrap()
                .path,
            "/a/b"
        );
    }

    #[test]
    fn incomplete_heads_wait_until_the_bound() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(""), Ok(None));
        let long = format!("GET / HTTP/1.1\r\nX-A: {}", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        assert_eq!(
            parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Err(HeadError::TooLarge)
        );
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        let e = |s: &str| parse(s).unwrap_err();
        assert_eq!(
            e("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n").status(),
            400
        );
        assert_eq!(
            e("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status(),
            400
        );
        assert_eq!(
            e("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").status(),
            400
        );
        assert_eq!(
            e("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status(),
            411
        );
        assert_eq!(e("\x16\x03\x01garbage\r\n\r\n").status(), 400);
        assert_eq!(e("GET / HTTP/2.0\r\n\r\n").status(), 400);
        let same = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse(same).unwrap().unwrap().content_length, 3);
        let huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(parse(huge).unwrap_err(), HeadError::BadContentLength);
    }

    #[test]
    fn json_is_accepted_in_any_case_unless_weighted_zero() {
        assert!(accepts_json("application/json"));
        assert!(accepts_json("text/html;q=0.9, Application/JSON"));
        assert!(!accepts_json("application/json;q=0, text/html"));
        assert!(!accepts_json("text/html, */*"));
    }
}
