//! The lexing of string and number literals, for [`super::Parser`]:
//! quoted strings with every Lua 5.1-5.4 escape (decimal `\195\188`
//! included), long brackets `[==[ ... ]==]`, and numbers.

use super::{Error, ErrorKind, Parser, Value};

impl Parser<'_> {
    /// The level of a long bracket `[==[` at the cursor.
    pub(super) fn long_level(&self) -> Option<usize> {
        let rest = self.s.get(self.i + 1..)?;
        let eq = rest.iter().take_while(|b| **b == b'=').count();
        (rest.get(eq) == Some(&b'[')).then_some(eq)
    }

    pub(super) fn long_string(&mut self) -> Result<Vec<u8>, Error> {
        let start = self.i;
        let level = self.long_level().ok_or_else(|| self.unexpected())?;
        self.i += level + 2;
        // A line break right after the opening bracket is not part of it.
        if self.peek() == Some(b'\r') {
            self.i += 1;
        }
        if self.peek() == Some(b'\n') {
            self.i += 1;
        }
        let body = self.i;
        let mut close = Vec::with_capacity(level + 2);
        close.push(b']');
        close.resize(level + 1, b'=');
        close.push(b']');
        let rest = &self.s[body..];
        match rest
            .windows(close.len())
            .position(|w| w == close.as_slice())
        {
            Some(n) => {
                self.i = body + n + close.len();
                Ok(rest[..n].to_vec())
            }
            None => Err(self.error_at(start, ErrorKind::Truncated)),
        }
    }

    pub(super) fn quoted(&mut self) -> Result<Vec<u8>, Error> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error(ErrorKind::Truncated));
            };
            self.i += 1;
            match b {
                _ if b == quote => return Ok(out),
                b'\n' | b'\r' => return Err(self.error_at(self.i - 1, ErrorKind::NewlineInString)),
                b'\\' => self.escape(&mut out)?,
                _ => out.push(b),
            }
        }
    }

    /// One escape after a backslash (Lua 5.1-5.4).
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let at = self.i - 1;
        let bad = |p: &Self| p.error_at(at, ErrorKind::BadEscape);
        let Some(c) = self.peek() else {
            return Err(self.error(ErrorKind::Truncated));
        };
        self.i += 1;
        match c {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' | b'"' | b'\'' => out.push(c),
            // `\` + line break: a line break (what `%q` writes).
            b'\n' | b'\r' => {
                let other = if c == b'\n' { b'\r' } else { b'\n' };
                if self.peek() == Some(other) {
                    self.i += 1;
                }
                out.push(b'\n');
            }
            b'0'..=b'9' => {
                let mut n = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'9') => {
                            n = n * 10 + u32::from(d - b'0');
                            self.i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(n).map_err(|_| bad(self))?);
            }
            b'x' => {
                let hi = self.hex_digit().ok_or_else(|| bad(self))?;
                let lo = self.hex_digit().ok_or_else(|| bad(self))?;
                out.push(hi << 4 | lo);
            }
            b'z' => {
                while matches!(
                    self.peek(),
                    Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
                ) {
                    self.i += 1;
                }
            }
            b'u' => {
                if self.peek() != Some(b'{') {
                    return Err(bad(self));
                }
                self.i += 1;
                let mut n: u32 = 0;
                let mut digits = 0;
                while let Some(d) = self.hex_digit() {
                    digits += 1;
                    n = n
                        .checked_mul(16)
                        .and_then(|n| n.checked_add(u32::from(d)))
                        .ok_or_else(|| bad(self))?;
                }
                if digits == 0 || self.peek() != Some(b'}') {
                    return Err(bad(self));
                }
                self.i += 1;
                let ch = char::from_u32(n).ok_or_else(|| bad(self))?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err(bad(self)),
        }
        Ok(())
    }

    fn hex_digit(&mut self) -> Option<u8> {
        let d = (self.peek()? as char).to_digit(16)?;
        self.i += 1;
        u8::try_from(d).ok()
    }

    pub(super) fn number(&mut self) -> Result<Value, Error> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
            // `--` would be a comment, i.e. not a value here.
            if !matches!(self.peek(), Some(b'0'..=b'9' | b'.')) {
                return Err(self.error_at(start, ErrorKind::BadNumber));
            }
        }
        let body_start = self.i;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'x' | b'X' | b'.' | b'p' | b'P')
        ) || (matches!(self.peek(), Some(b'+' | b'-'))
            && matches!(self.s.get(self.i - 1), Some(b'e' | b'E' | b'p' | b'P')))
        {
            self.i += 1;
            if self.i - start > 64 {
                return Err(self.error_at(start, ErrorKind::BadNumber));
            }
        }
        let text = std::str::from_utf8(&self.s[body_start..self.i])
            .map_err(|_| self.error_at(start, ErrorKind::BadNumber))?;
        let bad = || Error {
            at: start,
            kind: ErrorKind::BadNumber,
        };
        let n = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).map_err(|_| bad())? as f64
        } else {
            if text.starts_with(['e', 'E']) {
                return Err(bad());
            }
            text.parse::<f64>().map_err(|_| bad())?
        };
        if !n.is_finite() {
            return Err(bad());
        }
        Ok(Value::Num(if negative { -n } else { n }))
    }
}
