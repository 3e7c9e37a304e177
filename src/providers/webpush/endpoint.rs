//! Pure: a device-supplied `https://` endpoint URL, split into the parts
//! an HTTP request needs. Anything unusual is refused rather than guessed.

use std::fmt;

/// Longest endpoint URL accepted.
pub const MAX_URL: usize = 2048;

/// A parsed `https://host[:port]/path[?query]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Lowercase host name, or an IP address without brackets.
    pub host: String,
    /// TCP port (443 unless given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `https://` (plain HTTP is never used).
    NotHttps,
    /// Longer than [`MAX_URL`].
    TooLong,
    /// Broken host, port or characters.
    Malformed(&'static str),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::NotHttps => f.write_str("endpoint is not an https:// URL"),
            EndpointError::TooLong => write!(f, "endpoint URL longer than {MAX_URL} bytes"),
            EndpointError::Malformed(why) => write!(f, "endpoint URL: {why}"),
        }
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses an endpoint URL; the fragment is dropped.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        if url.len() > MAX_URL {
            return Err(EndpointError::TooLong);
        }
        let rest = match url.get(..8) {
            Some(s) if s.eq_ignore_ascii_case("https://") => &url[8..],
            _ => return Err(EndpointError::NotHttps),
        };
        // Only printable ASCII: no spaces, CR/LF or other header injection.
        if !rest.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(EndpointError::Malformed(
                "characters outside printable ASCII",
            ));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(EndpointError::Malformed("user info is not allowed"));
        }
        let (host, port) = split_host_port(authority)?;
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Endpoint { host, port, path })
    }

    /// `Host` header value.
    pub fn authority(&self) -> String {
        crate::h2client::authority(&self.host, self.port)
    }
}

fn split_host_port(authority: &str) -> Result<(String, u16), EndpointError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or(EndpointError::Malformed("unclosed [ in host"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(EndpointError::Malformed("bad IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(EndpointError::Malformed("junk after ]"))?,
            ),
        };
        (h.to_owned(), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if !valid_name {
        return Err(EndpointError::Malformed("bad host"));
    }
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && !p.starts_with('+') => n,
            _ => return Err(EndpointError::Malformed("bad port")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16, String) {
        let e = Endpoint::parse(url).unwrap();
        (e.host, e.port, e.path)
    }

    #[test]
    fn parses_hosts_ports_and_paths() {
        assert_eq!(
            ok("https://Up.Example.org/wpush/abc?x=1#frag"),
            ("up.example.org".into(), 443, "/wpush/abc?x=1".into())
        );
        assert_eq!(
            ok("https://127.0.0.1:8443"),
            ("127.0.0.1".into(), 8443, "/".into())
        );
        assert_eq!(ok("HTTPS://[::1]:9/p"), ("::1".into(), 9, "/p".into()));
        assert_eq!(ok("https://h?q"), ("h".into(), 443, "/?q".into()));
        assert_eq!(
            Endpoint::parse("https://[::1]:9/").unwrap().authority(),
            "[::1]:9"
        );
        assert_eq!(Endpoint::parse("https://h/").unwrap().authority(), "h");
    }

    #[test]
    fn refuses_odd_urls() {
        assert_eq!(Endpoint::parse("http://h/"), Err(EndpointError::NotHttps));
        assert_eq!(Endpoint::parse("ftp://h/"), Err(EndpointError::NotHttps));
        assert_eq!(Endpoint::parse("h"), Err(EndpointError::NotHttps));
        assert_eq!(
            Endpoint::parse(&format!("https://h/{}", "a".repeat(MAX_URL))),
            Err(EndpointError::TooLong)
        );
        for bad in [
            "https://user@h/",
            "https://h:0/",
            "https://h:99999/",
            "https://h:+1/",
            "https:///p",
            "https://h p/",
            "https://h/\r\nX: y",
            "https://[::1/",
            "https://[zz]/",
            "https://h_x/",
            "https://hé/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
