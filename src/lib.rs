//! push-appserver: a XEP-0357 push app server for XMPP.
//!
//! The flow of one push: [`link`] reads stanzas from the XMPP server,
//! [`router`] dispatches them, [`pushes`] validates and throttles a publish,
//! looks the device up in [`registrations`] and hands it to a provider in
//! [`providers`]. [`http`] serves the same services over HTTP.

#![deny(missing_docs)]

pub mod backoff;
pub mod clock;
pub mod component;
pub mod config;
pub mod deadline;
pub mod devices;
pub mod dialects;
pub mod doctor;
pub mod domains;
pub mod h2client;
pub mod http;
pub mod import;
pub mod jwt;
pub mod link;
pub mod logging;
pub mod metrics;
pub mod providers;
pub mod pushes;
pub mod ratelimit;
pub mod registrations;
pub mod reload;
pub mod router;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod stanza;
pub mod store_thread;
pub mod tcp;
pub mod text;
pub mod unifiedpush;
pub mod xml;
