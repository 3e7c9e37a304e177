//! Discard mode of the framer: follows the element depth of a stanza that
//! is too large or too deep, byte by byte, keeping nothing, until the
//! stanza closes. Memory stays constant however long the stanza is.

use super::framer::FrameError;

/// Where the scanner is inside the markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data.
    Text,
    /// Just after `<`.
    Open,
    /// Inside a start tag; `quote` is the open attribute quote, `slash`
    /// whether the last byte outside quotes was `/`.
    StartTag { quote: Option<u8>, slash: bool },
    /// Inside an end tag.
    EndTag,
    /// After `<!`, having matched this many bytes of `[CDATA[`.
    Bang(u8),
    /// Inside CDATA, having seen this many `]` in a row (at most 2 kept).
    CData(u8),
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

/// Follows one stanza being skipped. Starts just before the `<` of the
/// stanza's opening tag (depth 1, inside the stream).
#[derive(Debug, Clone)]
pub struct Discard {
    state: State,
    /// 1 inside the stream, 2+ inside the stanza.
    depth: usize,
    /// Bytes of the stanza seen so far.
    size: usize,
}

impl Discard {
    /// A scanner positioned at the start of a stanza.
    pub fn new() -> Self {
        Discard {
            state: State::Text,
            depth: 1,
            size: 0,
        }
    }

    /// Bytes of the stanza consumed so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Consumes `bytes`; `Ok(Some(n))` when the stanza ended after the
    /// first `n` of them, `Ok(None)` when all were consumed and it goes on.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, FrameError> {
        for (i, &b) in bytes.iter().enumerate() {
            self.size += 1;
            if self.step(b)? {
                return Ok(Some(i + 1));
            }
        }
        Ok(None)
    }

    /// One byte; true when it closed the stanza.
    fn step(&mut self, b: u8) -> Result<bool, FrameError> {
        self.state = match (self.state, b) {
            (State::Text, b'<') => State::Open,
            (State::Text, _) => State::Text,
            (State::Open, b'/') => State::EndTag,
            (State::Open, b'!') => State::Bang(0),
            (State::Open, b'?') => return Err(FrameError::RestrictedXml("processing instruction")),
            (State::Open, b'>') => return Err(FrameError::NotWellFormed("empty tag")),
            (State::Open, _) => State::StartTag {
                quote: None,
                slash: false,
            },
            (State::StartTag { quote: None, .. }, b'"' | b'\'') => State::StartTag {
                quote: Some(b),
                slash: false,
            },
            (State::StartTag { quote: Some(q), .. }, _) => State::StartTag {
                quote: if b == q { None } else { Some(q) },
                slash: false,
            },
            (State::StartTag { quote: None, slash }, b'>') => {
                if !slash {
                    self.depth += 1;
                } else if self.depth == 1 {
                    return Ok(true);
                }
                State::Text
            }
            (State::StartTag { quote: None, .. }, _) => State::StartTag {
                quote: None,
                slash: b == b'/',
            },
            (State::EndTag, b'>') => {
                if self.depth <= 1 {
                    return Err(FrameError::NotWellFormed("end tag outside of a stanza"));
                }
                self.depth -= 1;
                self.state = State::Text;
                if self.depth == 1 {
                    return Ok(true);
                }
                State::Text
            }
            (State::EndTag, _) => State::EndTag,
            (State::Bang(n), _)
                if self.depth >= 2 && CDATA_OPEN.get(usize::from(n)) == Some(&b) =>
            {
                if usize::from(n) + 1 == CDATA_OPEN.len() {
                    State::CData(0)
                } else {
                    State::Bang(n + 1)
                }
            }
            (State::Bang(0), b'-') => {
                return Err(FrameError::RestrictedXml("comments are not allowed"))
            }
            (State::Bang(_), _) => return Err(FrameError::RestrictedXml("DTDs are not allowed")),
            (State::CData(n), b']') => State::CData((n + 1).min(2)),
            (State::CData(2), b'>') => State::Text,
            (State::CData(_), _) => State::CData(0),
        };
        Ok(false)
    }
}

impl Default for Discard {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(input: &[u8]) -> Result<Option<usize>, FrameError> {
        Discard::new().feed(input)
    }

    #[test]
    fn finds_the_end_of_a_stanza_through_quotes_and_cdata() {
        let s = b"<iq a='>' b=\"/>\"><x><![CDATA[</iq>]]]></x><y/></iq><next/>";
        let end = s.len() - "<next/>".len();
        assert_eq!(end_of(s), Ok(Some(end)));
        assert_eq!(end_of(b"<message/>rest"), Ok(Some(10)));
    }

    #[test]
    fn same_result_byte_by_byte() {
        let s = b"<iq><a><b/></a><![CDATA[]]>]]></iq>";
        let mut d = Discard::new();
        let mut ended = None;
        for (i, b) in s.iter().enumerate() {
            if let Some(n) = d.feed(&[*b]).unwrap() {
                assert_eq!(n, 1);
                ended = Some(i + 1);
                break;
            }
        }
        assert_eq!(ended, Some(s.len()));
        assert_eq!(d.size(), s.len());
    }

    #[test]
    fn restricted_xml_inside_is_still_an_error() {
        assert!(matches!(
            end_of(b"<iq><!-- x --></iq>"),
            Err(FrameError::RestrictedXml(_))
        ));
        assert!(matches!(
            end_of(b"<iq><?pi?></iq>"),
            Err(FrameError::RestrictedXml(_))
        ));
    }
}
