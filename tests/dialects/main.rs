//! The client dialects end to end through the binary: Conversations and
//! Siskin registrations, Monal and Push 2.0 stateless pushes.

#[path = "../support/mod.rs"]
mod support;

mod dialects;
mod pipeline;
mod stateless;
mod unifiedpush;
