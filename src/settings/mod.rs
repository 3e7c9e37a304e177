//! The settings vocabulary every layer builds its own settings on: where a
//! value came from and what is wrong with it ([`ConfigContext`],
//! [`ConfigError`]), secrets that never print ([`Secret`]), and address
//! ranges ([`Cidr`], [`TrustedProxies`]). A leaf: it imports nothing of
//! the crate, so providers, the link and the HTTP API can each own their
//! settings while `config` only composes them.

mod error;
mod proxies;
pub mod suggest;

pub use error::{ConfigContext, ConfigError, Secret};
pub use proxies::{Cidr, TrustedProxies};
