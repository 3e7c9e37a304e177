//! The HTTP API of the running binary: the mod_push_appserver endpoints,
//! hostile and attacking clients, who owns a registration, and the record
//! cache behind pushes.

#[path = "../support/mod.rs"]
mod support;

mod http_api;
mod http_attack;
mod http_hostile;
mod ownership;
mod record_cache;
mod status_page;
