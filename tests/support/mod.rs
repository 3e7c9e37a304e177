//! The one support module of the integration tests, included by every test
//! binary (`tests/<binary>/main.rs`) as `#[path = "../support/mod.rs"] mod
//! support;`:
//!
//! - [`browser`]: headless Chromium loading a page and running its scripts;
//! - [`pki`]: a throwaway CA, server and client certificates, temp dirs;
//! - [`h2_mock`], [`apple`], [`fcm_mock`]: HTTP/2 + TLS mocks of APNS and of
//!   Google's FCM and OAuth endpoints, in the test process;
//! - [`webpush_mock`]: a Web Push endpoint over TLS;
//! - [`harness`]: a fake XMPP server speaking XEP-0114 and the
//!   `push-appserver` binary run with a generated config;
//! - [`interop`]: real Prosody and ejabberd servers and the slixmpp clients;
//! - [`reliability`]: a flooding component, a fault proxy, the power-loss
//!   rig and the durability model.

// Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod apple;
pub mod browser;
pub mod fcm_mock;
pub mod h2_mock;
pub mod harness;
pub mod interop;
pub mod pki;
pub mod reliability;
pub mod webpush_mock;
