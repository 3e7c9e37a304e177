//! Splits the bytes of an XMPP stream into its header, whole top-level
//! stanzas and its end, without doing I/O. The socket shell feeds bytes in
//! with [`Framer::push`] and takes frames out with [`Framer::next_frame`].
//!
//! It only tracks element depth (tags, quotes, CDATA); the stanza itself is
//! parsed afterwards by [`crate::xml::parse`], so a frame is always complete
//! and bounded in size before any tree is built.
//!
//! A stanza over the size limit or nested too deeply does not end the
//! stream: any user can address the component, and the XMPP server forwards
//! larger stanzas than we want to hold. The framer switches to discard mode
//! ([`super::discard`]), follows the stanza's depth without keeping its
//! bytes, and yields [`Frame::Skipped`] with the opening tag (when small)
//! so the caller can answer an iq. Only malformed XML is an error.

use super::discard::Discard;

/// What the framer found next in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// The raw opening `<stream:stream ...>` tag.
    Header(Vec<u8>),
    /// One complete top-level element (a stanza, `<handshake/>`, a stream error).
    Stanza(Vec<u8>),
    /// `</stream:stream>`: the peer closed its stream.
    End,
    /// A stanza that was dropped unread because of a limit.
    Skipped {
        /// Its opening tag (e.g. `<iq type='set' id='1' from='a@b'>`), when
        /// that tag alone fits in [`MAX_HEAD`] bytes and the size limit.
        head: Option<Vec<u8>>,
        /// Which limit it broke.
        why: SkipReason,
        /// Its full size in bytes.
        size: usize,
    },
}

/// Why a stanza was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Larger than the size limit.
    TooLarge,
    /// Elements nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An element with more attributes, or a stanza with more namespace
    /// declarations, than the parser takes (found when parsing it).
    TooManyAttributes,
}

impl SkipReason {
    /// A short explanation for logs and error texts.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "stanza too large",
            SkipReason::TooDeep => "elements nested too deeply",
            SkipReason::TooManyAttributes => "too many attributes or namespace declarations",
        }
    }
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
pub const MAX_DEPTH: usize = 32;

/// Largest opening tag kept from a skipped stanza.
pub const MAX_HEAD: usize = 4096;

/// A stanza being skipped.
#[derive(Debug)]
struct Skipping {
    scan: Discard,
    head: Option<Vec<u8>>,
    why: SkipReason,
}

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
    /// Set while discarding an over-limit stanza.
    skipping: Option<Skipping>,
}

impl Framer {
    /// A framer skipping stanzas larger than `max_stanza` bytes.
    pub fn new(max_stanza: usize) -> Self {
        Framer {
            buf: Vec::with_capacity(4096),
            pos: 0,
            depth: 0,
            stanza_start: 0,
            max_stanza,
            failed: None,
            skipping: None,
        }
    }

    /// Bytes held in the buffer (bounded by the size limit plus one push).
    pub fn buffered(&self) -> usize {
        self.buf.len()
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
            if self.skipping.is_some() {
                return self.scan_discard();
            }
            if self.depth >= 2 && self.pos - self.stanza_start > self.max_stanza {
                self.start_discard(SkipReason::TooLarge);
                continue;
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
                            return Ok(Some(self.complete(self.stanza_start)));
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
                        (1, true) => return Ok(Some(self.complete(tag_start))),
                        (1, false) => {
                            self.stanza_start = tag_start;
                            self.depth = 2;
                        }
                        (_, true) => {}
                        (d, false) => {
                            if d > MAX_DEPTH {
                                self.start_discard(SkipReason::TooDeep);
                                continue;
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
        if pending <= self.max_stanza {
            return Ok(None);
        }
        match self.depth {
            0 => Err(FrameError::PolicyViolation("stream header too large")),
            // An unfinished start tag of a stanza (after compact it is at
            // `pos`): the stanza is over the limit before its first `>`.
            1 if self
                .buf
                .get(self.pos + 1)
                .is_some_and(|b| !b"/!?".contains(b)) =>
            {
                self.stanza_start = self.pos;
                self.start_discard(SkipReason::TooLarge);
                self.scan_discard()
            }
            1 => Err(FrameError::NotWellFormed("end tag too long")),
            _ => {
                self.start_discard(SkipReason::TooLarge);
                self.scan_discard()
            }
        }
    }

    /// The frame of a stanza from `start` that ended at `pos`. The size
    /// check before each tag cannot see a last tag (or a lone `<x/>`) that
    /// arrived whole in one push, so it is checked here too: over the limit
    /// it is skipped like any other large stanza.
    fn complete(&mut self, start: usize) -> Frame {
        let bytes = &self.buf[start..self.pos];
        let frame = if bytes.len() > self.max_stanza {
            let head =
                tag_end(&bytes[..bytes.len().min(MAX_HEAD)]).map(|end| bytes[..=end].to_vec());
            Frame::Skipped {
                head,
                why: SkipReason::TooLarge,
                size: bytes.len(),
            }
        } else {
            Frame::Stanza(bytes.to_vec())
        };
        self.reset_after(self.pos);
        frame
    }

    /// Enters discard mode for the stanza starting at `stanza_start`,
    /// keeping its opening tag if small. The discard scanner re-reads the
    /// buffered part of the stanza from its start, so it knows the depth.
    fn start_discard(&mut self, why: SkipReason) {
        let rest = &self.buf[self.stanza_start..];
        let head = tag_end(&rest[..rest.len().min(MAX_HEAD)]).map(|end| rest[..=end].to_vec());
        self.skipping = Some(Skipping {
            scan: Discard::new(),
            head,
            why,
        });
        self.pos = self.stanza_start;
        self.depth = 1;
    }

    /// Feeds what is buffered to the discard scanner; drops those bytes.
    fn scan_discard(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(sk) = self.skipping.as_mut() else {
            return Ok(None);
        };
        match sk.scan.feed(&self.buf[self.pos..])? {
            Some(n) => {
                self.pos += n;
                let size = sk.scan.size();
                let (head, why) = (sk.head.take(), sk.why);
                self.skipping = None;
                self.reset_after(self.pos);
                Ok(Some(Frame::Skipped { head, why, size }))
            }
            None => {
                self.buf.clear();
                self.pos = 0;
                self.stanza_start = 0;
                Ok(None)
            }
        }
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
mod tests;
