//! Operating the binary from the outside: the command line, `/metrics` and
//! SIGHUP, the server key, store migration and the Prosody import, a full
//! disk.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod disk_full;
mod import_prosody;
mod migration;
mod operating;
mod server_key;
mod store_open;
