//! A parser for the Lua subset Prosody's file storage writes:
//! `return { ["key"] = value; ... };` with strings, numbers, booleans,
//! `nil` and nested tables. Nothing is evaluated: anything outside the
//! subset (names other than `true`/`false`/`nil`, operators, calls) is an
//! error. Bounded: nesting depth, entries per table and the input size
//! (the caller caps the file) limit the work; no recursion past
//! [`MAX_DEPTH`] and no panics on any input.

/// Deepest table nesting accepted (a registration has none).
pub const MAX_DEPTH: usize = 16;
/// Most entries in one table.
pub const MAX_ENTRIES: usize = 4096;

/// A Lua value of the subset.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A number (Lua's integers and floats alike).
    Num(f64),
    /// A string: raw bytes, as Lua strings are.
    Str(Vec<u8>),
    /// A table: its entries in file order (positional ones keyed 1, 2, ...).
    Table(Vec<(Value, Value)>),
}

impl Value {
    /// The value of the string key `key` in a table.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Table(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The Lua type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Table(_) => "table",
        }
    }
}

/// What is wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends inside a value.
    Truncated,
    /// A byte that cannot start or continue what is expected.
    Unexpected(String),
    /// A string escape Lua does not know, or a decimal escape over 255.
    BadEscape,
    /// A line break inside a quoted string.
    NewlineInString,
    /// A number that does not parse.
    BadNumber,
    /// Tables nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A table with more than [`MAX_ENTRIES`] entries.
    TooManyEntries,
    /// The file does not start with `return`.
    NoReturn,
    /// Something follows the returned value.
    TrailingData,
}

/// A parse error and the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Byte offset in the input.
    pub at: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.kind {
            ErrorKind::Truncated => "truncated".to_owned(),
            ErrorKind::Unexpected(s) => format!("unexpected {s}"),
            ErrorKind::BadEscape => "invalid string escape".to_owned(),
            ErrorKind::NewlineInString => "line break in a string".to_owned(),
            ErrorKind::BadNumber => "invalid number".to_owned(),
            ErrorKind::TooDeep => format!("tables nested deeper than {MAX_DEPTH}"),
            ErrorKind::TooManyEntries => format!("a table with over {MAX_ENTRIES} entries"),
            ErrorKind::NoReturn => "not a Lua data file (no `return`)".to_owned(),
            ErrorKind::TrailingData => "data after the returned value".to_owned(),
        };
        write!(f, "{what} at byte {}", self.at)
    }
}

impl std::error::Error for Error {}

/// Parses a whole data file: `return <value>` with an optional `;`.
pub fn parse_file(input: &[u8]) -> Result<Value, Error> {
    let mut p = Parser { s: input, i: 0 };
    p.skip_space()?;
    if p.word() != Some(b"return".as_slice()) {
        return Err(p.error_at(0, ErrorKind::NoReturn));
    }
    p.i += b"return".len();
    let v = p.value(0)?;
    p.skip_space()?;
    if p.peek() == Some(b';') {
        p.i += 1;
        p.skip_space()?;
    }
    if p.i < p.s.len() {
        return Err(p.error(ErrorKind::TrailingData));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, kind: ErrorKind) -> Error {
        self.error_at(self.i, kind)
    }

    fn error_at(&self, at: usize, kind: ErrorKind) -> Error {
        Error { at, kind }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn unexpected(&self) -> Error {
        match self.peek() {
            None => self.error(ErrorKind::Truncated),
            Some(b) if b.is_ascii_graphic() => {
                self.error(ErrorKind::Unexpected(format!("'{}'", b as char)))
            }
            Some(b) => self.error(ErrorKind::Unexpected(format!("byte 0x{b:02x}"))),
        }
    }

    /// Skips white space and `--` comments (line and long).
    fn skip_space(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c') => self.i += 1,
                Some(b'-') if self.s.get(self.i + 1) == Some(&b'-') => {
                    self.i += 2;
                    if self.peek() == Some(b'[') && self.long_level().is_some() {
                        self.long_string()?;
                    } else {
                        while !matches!(self.peek(), None | Some(b'\n')) {
                            self.i += 1;
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The identifier-like word at the cursor, if any.
    fn word(&self) -> Option<&[u8]> {
        let rest = self.s.get(self.i..)?;
        let first = *rest.first()?;
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        Some(&rest[..n])
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        self.skip_space()?;
        match self.peek() {
            None => Err(self.error(ErrorKind::Truncated)),
            Some(b'{') => self.table(depth + 1),
            Some(b'"' | b'\'') => self.quoted().map(Value::Str),
            Some(b'[') if self.long_level().is_some() => self.long_string().map(Value::Str),
            Some(b'-' | b'.' | b'0'..=b'9') => self.number(),
            Some(_) => match self.word() {
                Some(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b"nil") => {
                    self.i += 3;
                    Ok(Value::Nil)
                }
                _ => Err(self.unexpected()),
            },
        }
    }

    fn table(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.error(ErrorKind::TooDeep));
        }
        self.i += 1; // '{'
        let mut entries = Vec::new();
        let mut next_index = 1.0;
        loop {
            self.skip_space()?;
            match self.peek() {
                None => return Err(self.error(ErrorKind::Truncated)),
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Table(entries));
                }
                _ => {}
            }
            if entries.len() >= MAX_ENTRIES {
                return Err(self.error(ErrorKind::TooManyEntries));
            }
            let entry = if self.peek() == Some(b'[') && self.long_level().is_none() {
                self.i += 1;
                let key = self.value(depth)?;
                self.expect(b']')?;
                self.expect(b'=')?;
                (key, self.value(depth)?)
            } else if let Some(name) = self.named_key() {
                (Value::Str(name), self.value(depth)?)
            } else {
                let key = Value::Num(next_index);
                next_index += 1.0;
                (key, self.value(depth)?)
            };
            entries.push(entry);
            self.skip_space()?;
            match self.peek() {
                Some(b',' | b';') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// `name =` (not `name ==`, and not the keywords that are values).
    fn named_key(&mut self) -> Option<Vec<u8>> {
        let word = self.word()?;
        if matches!(word, b"true" | b"false" | b"nil") {
            return None;
        }
        let name = word.to_vec();
        let mut j = self.i + name.len();
        while matches!(self.s.get(j), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            j += 1;
        }
        if self.s.get(j) == Some(&b'=') && self.s.get(j + 1) != Some(&b'=') {
            self.i = j + 1;
            Some(name)
        } else {
            None
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), Error> {
        self.skip_space()?;
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// The level of a long bracket `[==[` at the cursor.
    fn long_level(&self) -> Option<usize> {
        let rest = self.s.get(self.i + 1..)?;
        let eq = rest.iter().take_while(|b| **b == b'=').count();
        (rest.get(eq) == Some(&b'[')).then_some(eq)
    }

    fn long_string(&mut self) -> Result<Vec<u8>, Error> {
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

    fn quoted(&mut self) -> Result<Vec<u8>, Error> {
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

    fn number(&mut self) -> Result<Value, Error> {
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

#[cfg(test)]
mod tests;
