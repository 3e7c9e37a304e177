//! Arbitrary text as a configuration file: an error or settings, never a
//! panic. Relative paths resolve in a folder that does not exist, so file
//! keys (secret_file, service_account, key files) fail cleanly.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use push_appserver::config::{ConfigContext, Settings};

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = ConfigContext::for_file(Path::new("/nonexistent/push-appserver-fuzz/push.toml"));
    match Settings::parse(text, &ctx) {
        Ok(settings) => {
            // check-config prints it; that must work for any accepted file.
            let shown = settings.to_string();
            assert!(!shown.is_empty());
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("/nonexistent/push-appserver-fuzz/push.toml"),
                "{msg}"
            );
        }
    }
});
