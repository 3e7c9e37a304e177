//! The import of mod_push_appserver's Prosody files on arbitrary bytes:
//! the Lua-subset parser, the mapping of a record to a registration and
//! the `%xx` file-name decoding never panic and stay bounded.
//!
//! Input: a file name, a NUL byte, then the file's bytes.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use push_appserver::import::entry::{decode_name, encode_name, to_item};
use push_appserver::import::lua::parse_file;
use push_appserver::registrations::MAX_FIELD_BYTES;

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

fuzz_target!(|data: &[u8]| {
    let (name, file) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let name = String::from_utf8_lossy(name);
    if let Some(node) = decode_name(&name) {
        assert_eq!(
            decode_name(&encode_name(&node)).as_deref(),
            Some(node.as_str())
        );
    }
    let _ = parse_file(file);
    let types: BTreeMap<String, String> = [("fcm".to_owned(), "fcm".to_owned())].into();
    if let Ok(item) = to_item("node", file, &types, 0) {
        assert_eq!(item.push_type, "fcm");
        assert!(item.token.len() <= MAX_FIELD_BYTES && item.secret.len() <= MAX_FIELD_BYTES);
    }
});
