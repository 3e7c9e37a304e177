//! push-appserver: a XEP-0357 push app server for XMPP.
//!
//! The flow of one push: [`link`] reads stanzas from the XMPP server,
//! [`router`] dispatches them, [`pushes`] validates and throttles a publish,
//! looks the device up in [`registrations`] and hands it to a provider in
//! [`providers`]. [`http`] serves the same services over HTTP.

pub mod clock;
pub mod config;
pub mod providers;
pub mod registrations;
pub mod stanza;
pub mod xml;
