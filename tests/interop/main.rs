//! Interop against real XMPP servers run as child processes: Prosody 0.12
//! (mod_cloud_notify) and ejabberd (mod_push), with slixmpp clients
//! (`tests/interop/*.py`). Needs prosody, prosody-modules, ejabberd and
//! python3-slixmpp (`scripts/test` installs them); a missing one is a
//! failure, not a skip.

#[path = "../support/mod.rs"]
mod support;

mod dialects;
mod ejabberd;
mod monal;
mod prosody;
mod prosody_restart;
mod unifiedpush;
