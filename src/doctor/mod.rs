//! `push-appserver doctor`: proves what a configuration needs before a
//! user's missing notification does. One line per check, exit 0 only when
//! none failed:
//!
//! - [`listeners`]: the HTTP listeners can be bound, or a running
//!   push-appserver already serves them (then its own health is read);
//! - [`handshake`]: each component's handshake with the XMPP server (or
//!   the running server's link state, since a second connection could
//!   take the running one's place);
//! - [`verdict`]: each app's credentials against the real provider, with
//!   a push to a made-up device token (APNS) or a `validate_only` send
//!   (FCM), so no device is reached; `--send` sends one visible push.

pub mod handshake;
pub mod listeners;
pub mod verdict;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_escape_sequences_cannot_rewrite_the_report() {
        let c = Check::new(
            Level::Fail,
            "app apns",
            "x\u{1b}]0;pwned\u{7}\rok    app apns: fine",
        );
        let line = c.to_string();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.starts_with("FAIL") && line.contains("\\u{1b}"),
            "{line}"
        );
    }
}

use std::fmt;

use crate::config::Settings;
use crate::providers::apns::ApnsProvider;
use crate::providers::fcm::FcmProvider;
use crate::providers::ProviderSettings;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Works.
    Ok,
    /// Works, but not as a production server would want (the log provider).
    Warn,
    /// Does not work: the line says why.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The outcome.
    pub level: Level,
    /// What was checked (`app apns`, `component push.example.org`).
    pub what: String,
    /// What was found, and what to do when it failed.
    pub detail: String,
}

impl Check {
    /// A check at `level`.
    pub fn new(level: Level, what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            level,
            what: what.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        // Peers' answers reach the terminal: no escape sequence of theirs
        // may rewrite it (or forge an `ok` line).
        write!(
            f,
            "{tag}  {}: {}",
            printable(&self.what),
            printable(&self.detail)
        )
    }
}

/// `s` with control characters shown escaped (`\u{1b}`).
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}

/// A visible test push for one app (`--send TOKEN --app NAME`).
#[derive(Debug, Clone)]
pub struct SendTo {
    /// The app profile.
    pub app: String,
    /// The device token.
    pub token: String,
}

/// A well-formed APNS device token that belongs to no device.
pub const FAKE_APNS_TOKEN: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";
/// An FCM registration token that belongs to no device.
pub const FAKE_FCM_TOKEN: &str = "push-appserver-doctor:not-a-device-token";

/// Runs every check; `send` adds a visible push for one app. Lines are
/// handed to `each` as they are found (a provider may take seconds).
pub fn run(settings: &Settings, send: Option<&SendTo>, mut each: impl FnMut(&Check)) -> Vec<Check> {
    let mut out = Vec::new();
    let mut note = |c: Check| {
        each(&c);
        out.push(c);
    };
    let running = listeners::running(settings);
    for c in listeners::check(settings, running.as_ref()) {
        note(c);
    }
    for c in &settings.components {
        note(match &running {
            Some(r) => listeners::link_of_running(r, &c.jid),
            None => handshake::check(&c.jid, &c.server, c.secret.expose()),
        });
    }
    if let Some(s) = send {
        if !settings.apps.contains_key(&s.app) {
            note(Check::new(
                Level::Fail,
                format!("app {}", s.app),
                "no such [app] profile to send the test push through",
            ));
        }
    }
    for (name, app) in &settings.apps {
        let token = send.filter(|s| &s.app == name).map(|s| s.token.as_str());
        note(smol::block_on(app_check(name, app, token)));
    }
    out
}

/// Proves one app profile's credentials, or sends to `token`.
async fn app_check(name: &str, app: &ProviderSettings, token: Option<&str>) -> Check {
    let what = format!("app {name}");
    match app {
        ProviderSettings::Log(_) => Check::new(
            Level::Warn,
            what,
            "the log provider: pushes are only logged, nothing reaches a device",
        ),
        ProviderSettings::Apns(s) => {
            let provider = match ApnsProvider::new(s) {
                Ok(p) => p,
                Err(e) => return Check::new(Level::Fail, what, e.to_string()),
            };
            let env = if s.sandbox { "sandbox" } else { "production" };
            let answer = provider.test_push(token.unwrap_or(FAKE_APNS_TOKEN)).await;
            let (level, detail) = match token {
                None => verdict::apns_probe(&answer, &s.topic, env),
                Some(_) => verdict::apns_sent(&answer, env),
            };
            Check::new(level, what, detail)
        }
        ProviderSettings::Fcm(s) => {
            let provider = match FcmProvider::new(s) {
                Ok(p) => p,
                Err(e) => return Check::new(Level::Fail, what, e.to_string()),
            };
            let answer = provider
                .test_push(token.unwrap_or(FAKE_FCM_TOKEN), token.is_none())
                .await;
            let (level, detail) = match token {
                None => verdict::fcm_probe(&answer, &s.project_id),
                Some(_) => verdict::fcm_sent(&answer),
            };
            Check::new(level, what, detail)
        }
    }
}
