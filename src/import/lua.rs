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
    /// The value of the string key `key` in a table (the last one, as in
    /// Lua, if a hand-edited file repeats a key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Table(entries) => entries
                .iter()
                .rev()
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
}

mod strings;
#[cfg(test)]
mod tests;
