//! Client dialects: how each family of XMPP apps asks for pushes and which
//! payload its app expects. The stateless ones here keep no registration.

pub mod monal;
mod profiles;
pub mod push2;
