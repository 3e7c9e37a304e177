//! One file of mod_push_appserver's store, mapped to an [`ImportItem`]:
//! Prosody's file name encoding, the record's fields and its timestamps.
//! Pure: bytes and a name in, an item or the reason to skip out.

use std::collections::BTreeMap;

use super::lua::{self, Value};
use crate::registrations::{check_field, ImportItem, PushStats, MAX_FIELD_BYTES};

/// Why a file is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The file name is not Prosody's `%xx` encoding of a node.
    BadName,
    /// The file is not the Lua subset (truncated, malformed).
    Parse(lua::Error),
    /// The file returns something other than a table.
    NotATable,
    /// A required field is missing.
    Missing(&'static str),
    /// A field has the wrong Lua type.
    WrongType(&'static str, &'static str),
    /// A field is not UTF-8, is too long, or has control characters.
    Invalid(&'static str),
    /// A timestamp is not `YYYY-MM-DDThh:mm:ssZ`.
    BadTimestamp(&'static str),
    /// The push type is not one of the component's app profiles.
    TypeNotConfigured(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::BadName => f.write_str("file name is not a %xx-encoded node"),
            Skip::Parse(e) => write!(f, "not a Lua data file: {}", e.kind_text()),
            Skip::NotATable => f.write_str("the file does not return a table"),
            Skip::Missing(k) => write!(f, "field '{k}' is missing"),
            Skip::WrongType(k, t) => write!(f, "field '{k}' is a {t}, not a string"),
            Skip::Invalid(k) => write!(
                f,
                "field '{k}' is not UTF-8, is empty, longer than {MAX_FIELD_BYTES} bytes, or has control characters"
            ),
            Skip::BadTimestamp(k) => write!(f, "field '{k}' is not a YYYY-MM-DDThh:mm:ssZ timestamp"),
            Skip::TypeNotConfigured(t) => write!(
                f,
                "push type '{t}' is not one of the component's types (see --map-type)"
            ),
        }
    }
}

impl lua::Error {
    /// The error without its offset, so skips group by kind in a report.
    fn kind_text(&self) -> String {
        let full = self.to_string();
        match full.rfind(" at byte ") {
            Some(cut) => full[..cut].to_owned(),
            None => full,
        }
    }
}

/// Decodes a Prosody file-storage name: every byte outside `[A-Za-z0-9]`
/// was written as `%xx` (lowercase hex; either case is accepted here).
/// `None` for anything else, including a result that is not UTF-8.
pub fn decode_name(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Prosody's file-storage encoding of a name (for the host directory).
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Maps a parsed file to an item. The node is the decoded file name: the
/// module looked registrations up by it (its `node` field is a copy).
/// `types` maps the module's type names to this server's app profiles.
pub fn to_item(
    node: &str,
    bytes: &[u8],
    types: &BTreeMap<String, String>,
    now_ms: u64,
) -> Result<ImportItem, Skip> {
    let v = lua::parse_file(bytes).map_err(Skip::Parse)?;
    if !matches!(v, Value::Table(_)) {
        return Err(Skip::NotATable);
    }
    let module_type = text(&v, "type")?.ok_or(Skip::Missing("type"))?;
    let secret = text(&v, "secret")?.ok_or(Skip::Missing("secret"))?;
    let token = text(&v, "token")?.ok_or(Skip::Missing("token"))?;
    if check_field("node", node).is_err() {
        return Err(Skip::Invalid("node"));
    }
    check_field("token", &token).map_err(|_| Skip::Invalid("token"))?;
    check_field("secret", &secret).map_err(|_| Skip::Invalid("secret"))?;
    let push_type = types
        .get(&module_type)
        .cloned()
        .ok_or(Skip::TypeNotConfigured(module_type))?;
    let registered = time(&v, "registered")?;
    let renewed = time(&v, "renewed")?;
    let registered_ms = registered.or(renewed).unwrap_or(now_ms);
    Ok(ImportItem {
        push_type,
        node: node.to_owned(),
        token,
        secret,
        registered_ms,
        renewed_ms: renewed.unwrap_or(registered_ms),
        stats: PushStats {
            last_successful_push_ms: time(&v, "last_successful_push")?,
            last_push_error_ms: time(&v, "last_push_error")?,
            last_push_error_reason: None,
        },
    })
}

/// A string field; `None` when absent (or `nil`).
fn text(v: &Value, key: &'static str) -> Result<Option<String>, Skip> {
    match v.get(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(b)) => String::from_utf8(b.clone())
            .map(Some)
            .map_err(|_| Skip::Invalid(key)),
        Some(other) => Err(Skip::WrongType(key, other.type_name())),
    }
}

/// A timestamp field as ms since the epoch; `None` when absent.
fn time(v: &Value, key: &'static str) -> Result<Option<u64>, Skip> {
    match text(v, key)? {
        None => Ok(None),
        Some(t) => parse_timestamp(&t).map(Some).ok_or(Skip::BadTimestamp(key)),
    }
}

/// A Prosody `util.datetime` timestamp to ms since the epoch; `None` if
/// malformed or before 1970 (see [`crate::clock::parse_rfc3339`]).
pub fn parse_timestamp(s: &str) -> Option<u64> {
    crate::clock::parse_rfc3339(s).map(crate::clock::unix_millis)
}

#[cfg(test)]
mod tests;
