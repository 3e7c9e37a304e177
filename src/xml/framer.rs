//! Splits the bytes of an XMPP stream into its header, whole top-level
//! stanzas and its end, without doing I/O. The socket shell feeds bytes in
//! with [`Framer::push`] and takes frames out with [`Framer::next_frame`].
//!
//! It only tracks element depth (tags, quotes, CDATA); the stanza itself is
//! parsed afterwards by [`crate::xml::parse`], so a frame is always complete
//! and bounded in size before any tree is built.

/// What the framer found next in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// The raw opening `<stream:stream ...>` tag.
    Header(Vec<u8>),
    /// One complete top-level element (a stanza, `<handshake/>`, a stream error).
    Stanza(Vec<u8>),
    /// `</stream:stream>`: the peer closed its stream.
    End,
}

/// Why the stream cannot be read further. Each maps to an RFC 6120 stream
/// error condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Syntax the framer cannot accept (garbage, text at the top level).
    NotWellFormed(&'static str),
    /// A stanza or header over the size limit, or nested too deeply.
    PolicyViolation(&'static str),
    /// A construct XMPP forbids: DTD, processing instruction, comment.
    RestrictedXml(&'static str),
}

impl FrameError {
    /// The stream error condition element name.
    pub fn condition(&self) -> &'static str {
        match self {
            FrameError::NotWellFormed(_) => "not-well-formed",
            FrameError::PolicyViolation(_) => "policy-violation",
            FrameError::RestrictedXml(_) => "restricted-xml",
        }
    }

    /// A human readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::NotWellFormed(r)
            | FrameError::PolicyViolation(r)
            | FrameError::RestrictedXml(r) => r,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.condition(), self.reason())
    }
}

impl std::error::Error for FrameError {}

/// Deepest element nesting accepted inside a stanza.
const MAX_DEPTH: usize = 32;

/// Incremental stream splitter. See the module docs.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Next byte to look at.
    pos: usize,
    /// 0 before the header, 1 inside the stream, 2+ inside a stanza.
    depth: usize,
    /// Offset where the current stanza began.
    stanza_start: usize,
    max_stanza: usize,
    failed: Option<FrameError>,
}

impl Framer {
    /// A framer refusing stanzas larger than `max_stanza` bytes.
    pub fn new(max_stanza: usize) -> Self {
        Framer {
            buf: Vec::with_capacity(4096),
            pos: 0,
            depth: 0,
            stanza_start: 0,
            max_stanza,
            failed: None,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    /// After an error every later call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.scan();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn scan(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if self.depth >= 2 && self.pos - self.stanza_start > self.max_stanza {
                return Err(FrameError::PolicyViolation("stanza exceeds the size limit"));
            }
            let Some(&b) = self.buf.get(self.pos) else {
                self.compact();
                if self.depth < 2 && self.buf.len() > self.max_stanza {
                    return Err(FrameError::PolicyViolation("stream header too large"));
                }
                return Ok(None);
            };
            if b != b'<' {
                if self.depth <= 1 && !b.is_ascii_whitespace() {
                    return Err(FrameError::NotWellFormed("text outside of a stanza"));
                }
                self.pos += 1;
                continue;
            }
            let rest = &self.buf[self.pos..];
            if rest.len() < 2 {
                return self.need_more();
            }
            match rest[1] {
                b'?' => {
                    if self.depth > 0 {
                        return Err(FrameError::RestrictedXml("processing instruction"));
                    }
                    // The XML declaration before the stream header.
                    match find(rest, b"?>") {
                        Some(end) => self.pos += end + 2,
                        None => return self.need_more(),
                    }
                }
                b'!' => {
                    if rest.starts_with(b"<![CDATA[") && self.depth >= 2 {
                        match find(rest, b"]]>") {
                            Some(end) => self.pos += end + 3,
                            None => return self.need_more(),
                        }
                    } else if rest.len() < 9 {
                        return self.need_more();
                    } else if rest.starts_with(b"<!--") {
                        return Err(FrameError::RestrictedXml("comments are not allowed"));
                    } else {
                        return Err(FrameError::RestrictedXml("DTDs are not allowed"));
                    }
                }
                b'/' => {
                    let Some(end) = find(rest, b">") else {
                        return self.need_more();
                    };
                    self.pos += end + 1;
                    match self.depth {
                        0 => return Err(FrameError::NotWellFormed("end tag before the header")),
                        1 => {
                            self.reset_after(self.pos);
                            return Ok(Some(Frame::End));
                        }
                        2 => {
                            self.depth = 1;
                            let stanza = self.buf[self.stanza_start..self.pos].to_vec();
                            self.reset_after(self.pos);
                            return Ok(Some(Frame::Stanza(stanza)));
                        }
                        _ => self.depth -= 1,
                    }
                }
                _ => {
                    let Some(end) = tag_end(rest) else {
                        return self.need_more();
                    };
                    let tag_start = self.pos;
                    self.pos += end + 1;
                    let self_closing = end > 0 && rest[end - 1] == b'/';
                    match (self.depth, self_closing) {
                        (0, true) => return Err(FrameError::NotWellFormed("empty stream header")),
                        (0, false) => {
                            self.depth = 1;
                            let header = self.buf[tag_start..self.pos].to_vec();
                            self.reset_after(self.pos);
                            return Ok(Some(Frame::Header(header)));
                        }
                        (1, true) => {
                            let stanza = self.buf[tag_start..self.pos].to_vec();
                            self.reset_after(self.pos);
                            return Ok(Some(Frame::Stanza(stanza)));
                        }
                        (1, false) => {
                            self.stanza_start = tag_start;
                            self.depth = 2;
                        }
                        (_, true) => {}
                        (d, false) => {
                            if d > MAX_DEPTH {
                                return Err(FrameError::PolicyViolation(
                                    "elements nested too deeply",
                                ));
                            }
                            self.depth += 1;
                        }
                    }
                }
            }
        }
    }

    fn need_more(&mut self) -> Result<Option<Frame>, FrameError> {
        self.compact();
        let pending = if self.depth >= 2 {
            self.buf.len() - self.stanza_start
        } else {
            self.buf.len()
        };
        if pending > self.max_stanza {
            return Err(FrameError::PolicyViolation("stanza exceeds the size limit"));
        }
        Ok(None)
    }

    /// Forgets everything before `at` (the end of a complete frame).
    fn reset_after(&mut self, at: usize) {
        self.buf.drain(..at);
        self.pos = 0;
        self.stanza_start = 0;
    }

    /// Drops consumed bytes that belong to no open stanza.
    fn compact(&mut self) {
        let keep_from = if self.depth >= 2 {
            self.stanza_start
        } else {
            self.pos
        };
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.pos -= keep_from;
            self.stanza_start = self.stanza_start.saturating_sub(keep_from);
        }
    }
}

/// Position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Position of the `>` closing a start tag, skipping quoted attribute values.
fn tag_end(tag: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in tag.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]]) -> Vec<Result<Frame, FrameError>> {
        let mut f = Framer::new(1024);
        let mut out = Vec::new();
        for chunk in input {
            f.push(chunk);
            loop {
                match f.next_frame() {
                    Ok(Some(fr)) => out.push(Ok(fr)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn splits_header_stanzas_and_end_across_chunk_boundaries() {
        let out = frames(&[
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' id='a>b'>",
            b"<handshake/> <iq id='1'><ping xmlns='urn:xmpp:ping'/></i",
            b"q>\n<message><body><![CDATA[</message>]]></body></message></stream:stream>",
        ]);
        assert_eq!(out.len(), 5, "{out:?}");
        assert!(matches!(&out[0], Ok(Frame::Header(h)) if h.ends_with(b"id='a>b'>")));
        assert_eq!(out[1], Ok(Frame::Stanza(b"<handshake/>".to_vec())));
        assert_eq!(
            out[2],
            Ok(Frame::Stanza(
                b"<iq id='1'><ping xmlns='urn:xmpp:ping'/></iq>".to_vec()
            ))
        );
        assert!(matches!(&out[3], Ok(Frame::Stanza(s)) if s.ends_with(b"</body></message>")));
        assert_eq!(out[4], Ok(Frame::End));
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let input = b"<stream:stream><iq type='get'><a><b/></a></iq><x/></stream:stream>";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let out = frames(&chunks);
        assert_eq!(out.len(), 4);
        assert_eq!(
            out[1],
            Ok(Frame::Stanza(b"<iq type='get'><a><b/></a></iq>".to_vec()))
        );
    }

    #[test]
    fn refuses_oversized_stanza_without_buffering_it_all() {
        let mut f = Framer::new(100);
        f.push(b"<stream:stream><iq>");
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Header(_)))));
        f.push(&[b'a'; 200]);
        assert_eq!(
            f.next_frame(),
            Err(FrameError::PolicyViolation("stanza exceeds the size limit"))
        );
    }

    #[test]
    fn rejects_garbage_comments_and_dtds() {
        assert!(matches!(
            frames(&[b"<stream:stream>hello"]).last(),
            Some(Err(FrameError::NotWellFormed(_)))
        ));
        assert!(matches!(
            frames(&[b"<stream:stream><!-- hi -->"]).last(),
            Some(Err(FrameError::RestrictedXml(_)))
        ));
        assert!(matches!(
            frames(&[b"<!DOCTYPE foo [ <!ENTITY x 'y'> ]>"]).last(),
            Some(Err(FrameError::RestrictedXml(_)))
        ));
    }

    #[test]
    fn refuses_deep_nesting() {
        let mut s = b"<stream:stream>".to_vec();
        for _ in 0..40 {
            s.extend_from_slice(b"<a>");
        }
        assert!(matches!(
            frames(&[&s]).last(),
            Some(Err(FrameError::PolicyViolation(_)))
        ));
    }
}
