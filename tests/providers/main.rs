//! The push providers: APNS, FCM and the shared HTTP/2 client against mock
//! servers in this process, and through the binary end to end.

#[path = "../support/mod.rs"]
mod support;

mod apns;
mod doctor;
mod e2e;
mod fcm;
mod h2client;
mod push_outcomes;
mod reload_apns;
