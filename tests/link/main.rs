//! The XEP-0114 component link against a fake XMPP server on loopback: the
//! protocol, commands and errors, throttling, hostile and flaky servers,
//! shutdown.

#[path = "../support/mod.rs"]
mod support;

mod component;
mod link;
