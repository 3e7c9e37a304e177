//! The `apns` provider: Apple's HTTP/2 provider API.
//!
//! [`settings`] validates the config, [`payload`] builds each request,
//! [`jwt`] makes the provider token (token auth), [`response`] reads
//! Apple's answer; this module sends over a shared
//! [`H2Client`](crate::h2client::H2Client), retries temporary failures a
//! bounded number of times with backoff and jitter, resends pushes the
//! server did not process, and keeps the counters for the health page.

pub mod jwt;
pub mod payload;
pub mod response;
pub mod settings;
pub mod siskin;

pub use settings::{ApnsAuth, ApnsSettings, Tuning};

use crate::registrations::owner::short;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::config_problem::ConfigProblem;
use super::{FailureKind, Outcome, Push, StartError, TestAnswer, TEST_PUSH_BODY, TEST_PUSH_TITLE};
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::h2client::{tls, H2Client, H2Error, H2Options};
use payload::PayloadError;
use response::Decision;

/// Why the APNS provider could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApnsStartError {
    /// TLS settings, the CA file or the client certificate.
    Tls(tls::TlsError),
    /// The `.p8` key.
    Key(jwt::KeyError),
}

impl fmt::Display for ApnsStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApnsStartError::Tls(e) => write!(f, "APNS: {e}"),
            ApnsStartError::Key(e) => write!(f, "APNS: {e}"),
        }
    }
}

impl std::error::Error for ApnsStartError {}

#[derive(Debug)]
enum Auth {
    Certificate { expires: Option<SystemTime> },
    Token(Box<jwt::TokenCache>),
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    dead: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
}

/// A running `apns` provider.
#[derive(Debug)]
pub struct ApnsProvider {
    settings: ApnsSettings,
    client: H2Client,
    auth: Auth,
    clock: Arc<dyn Clock>,
    counters: Counters,
    /// The last auth problem logged, so it is logged once, not per push.
    auth_problem: Mutex<Option<String>>,
    /// The configuration error (environment, topic) logged, until a push
    /// is delivered.
    config_problem: ConfigProblem,
}

impl ApnsProvider {
    /// Loads the credentials and prepares the connection to Apple (opened
    /// on the first push).
    pub fn new(settings: &ApnsSettings) -> Result<Self, StartError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// [`ApnsProvider::new`] with a clock of the caller's choosing.
    pub fn with_clock(settings: &ApnsSettings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let (identity, auth) = match &settings.auth {
            ApnsAuth::Certificate { cert, key } => {
                let expires = tls::certificate_expiry(cert).ok();
                log_certificate_expiry(cert, expires, clock.now());
                let identity = tls::ClientIdentity {
                    cert: cert.clone(),
                    key: key.clone(),
                };
                (Some(identity), Auth::Certificate { expires })
            }
            ApnsAuth::Token {
                key_file,
                key_id,
                team_id,
            } => {
                let key = jwt::load_key(key_file)
                    .map_err(|e| StartError::Apns(ApnsStartError::Key(e)))?;
                let cache = jwt::TokenCache::new(key, key_id, team_id, clock.clone());
                (None, Auth::Token(Box::new(cache)))
            }
        };
        let tls = tls::client_config(settings.extra_ca.as_deref(), identity)
            .map_err(|e| StartError::Apns(ApnsStartError::Tls(e)))?;
        if settings.feedback_interval_given {
            log::warn!(
                "APNS: feedback_request_interval is ignored: Apple retired the feedback \
                 service in 2021; dead tokens are reported with each push now"
            );
        }
        let t = &settings.tuning;
        let opts = H2Options {
            max_connections: t.max_connections,
            max_in_flight: t.max_in_flight,
            request_timeout: t.request_timeout,
            one_request_first: matches!(auth, Auth::Token(_)),
            ..H2Options::default()
        };
        Ok(ApnsProvider {
            client: H2Client::new(settings.endpoint.clone(), tls, opts),
            settings: settings.clone(),
            auth,
            clock,
            counters: Counters::default(),
            auth_problem: Mutex::new(None),
            config_problem: ConfigProblem::default(),
        })
    }

    /// Sends one push, retrying temporary failures a bounded number of
    /// times.
    pub async fn send(&self, push: &Push) -> Outcome {
        let outcome = self.deliver(push).await;
        let c = &self.counters;
        match &outcome {
            Outcome::Delivered => c.delivered.fetch_add(1, Ordering::Relaxed),
            Outcome::DeadToken { .. } => c.dead.fetch_add(1, Ordering::Relaxed),
            Outcome::Failed(f) => {
                log::info!(
                    "APNS push to node {} failed: {}",
                    short(&push.node),
                    f.reason
                );
                c.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        outcome
    }

    /// Sends one visible alert to `token`, once, and returns Apple's
    /// answer: with a made-up token, `BadDeviceToken` proves the key (or
    /// certificate), team, topic and environment (`push-appserver doctor`).
    pub async fn test_push(&self, token: &str) -> TestAnswer {
        let no_answer = |text: String| TestAnswer {
            status: 0,
            code: String::new(),
            text,
        };
        let payload = serde_json::json!({
            "aps": { "alert": { "title": TEST_PUSH_TITLE, "body": TEST_PUSH_BODY }, "sound": "default" }
        });
        let custom = payload::CustomApns {
            payload: payload.to_string().into_bytes(),
            voip: false,
            priority: 10,
            apns_id: None,
        };
        let request = match payload::build_custom(token, &custom, &self.settings, self.clock.now())
        {
            Ok(r) => r,
            Err(e) => return no_answer(format!("cannot build the request: {e}")),
        };
        let jwt = match &self.auth {
            Auth::Token(cache) => match cache.token() {
                Ok(t) => Some(t),
                Err(e) => return no_answer(format!("cannot sign the provider token: {e}")),
            },
            Auth::Certificate { .. } => None,
        };
        let http = match request.http_request(jwt.as_deref()) {
            Ok(h) => h,
            Err(e) => return no_answer(format!("cannot build the request: {e}")),
        };
        match self.client.send(http, Bytes::from(request.payload)).await {
            Ok(r) => {
                let code = response::reason(&r.body);
                let text = match code.as_str() {
                    "" => format!("APNS status {}", r.status.as_u16()),
                    c => format!("APNS status {}: {c}", r.status.as_u16()),
                };
                TestAnswer {
                    status: r.status.as_u16(),
                    code,
                    text,
                }
            }
            Err(e) => no_answer(format!(
                "no answer from {}: {e}",
                self.client.origin().authority()
            )),
        }
    }

    /// The topic (bundle id) and whether this profile talks to the sandbox.
    pub fn topic(&self) -> (&str, bool) {
        (&self.settings.topic, self.settings.sandbox)
    }

    async fn deliver(&self, push: &Push) -> Outcome {
        let tuning = &self.settings.tuning;
        let (mut attempt, mut resends) = (1, 0);
        loop {
            let now = self.clock.now();
            let request = match payload::build(push, &self.settings, now) {
                Ok(r) => r,
                Err(PayloadError::BadToken) => {
                    log::debug!("APNS: node {} has a malformed token", push.node);
                    return Outcome::DeadToken { since: now };
                }
                Err(e) => return Outcome::failed(FailureKind::Unavailable, e.to_string()),
            };
            let jwt = match &self.auth {
                Auth::Token(cache) => match cache.token() {
                    Ok(t) => Some(t),
                    Err(_) => {
                        return Outcome::failed(
                            FailureKind::Unavailable,
                            "cannot sign the APNS token",
                        )
                    }
                },
                Auth::Certificate { .. } => None,
            };
            let http = match request.http_request(jwt.as_deref()) {
                Ok(h) => h,
                Err(e) => {
                    return Outcome::failed(FailureKind::Unavailable, format!("APNS request: {e}"))
                }
            };
            let decision = match self.client.send(http, Bytes::from(request.payload)).await {
                Ok(r) => {
                    let now = self.clock.now();
                    response::decide(r.status.as_u16(), &r.body, now, self.proven())
                }
                Err(e) if e.is_not_processed() && resends < tuning.resends => {
                    resends += 1;
                    log::debug!("APNS: push to node {} not processed, resending", push.node);
                    continue;
                }
                Err(e) => transport_decision(e),
            };
            match decision {
                Decision::Done(outcome) => {
                    if outcome == Outcome::Delivered {
                        self.auth_ok();
                        self.config_ok();
                    }
                    return outcome;
                }
                Decision::Misconfigured { reason } => {
                    self.misconfigured(push, &reason);
                    return Outcome::failed(FailureKind::Unavailable, reason);
                }
                Decision::Auth {
                    reason,
                    token_rejected,
                } => {
                    if let (Auth::Token(cache), Some(jwt), true) =
                        (&self.auth, &jwt, token_rejected)
                    {
                        cache.reject(jwt);
                    }
                    self.auth_failed(&reason);
                    return Outcome::failed(FailureKind::Unavailable, reason);
                }
                Decision::Retry { kind, reason } => {
                    if attempt >= tuning.attempts {
                        return Outcome::failed(kind, reason);
                    }
                    log::debug!(
                        "APNS push to node {} (attempt {attempt}): {reason}",
                        push.node
                    );
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    async_io::Timer::after(backoff(tuning, attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Whether this app profile has delivered a push since it started:
    /// its environment and topic are then known to be right, and an
    /// ambiguous rejection means a dead token (see [`response`]).
    fn proven(&self) -> bool {
        self.counters.delivered.load(Ordering::Relaxed) > 0
    }

    /// Logs a configuration error loudly, once.
    fn misconfigured(&self, push: &Push, reason: &str) {
        if self.config_problem.report(reason) {
            log::error!(
                "[app.{}] APNS ({} {}, topic {}) rejects our pushes as if the configuration were \
                 wrong: {reason}. No registration is deleted for this until a push to this app \
                 profile has been delivered; pushes fail with wait/internal-server-error meanwhile",
                push.push_type,
                if self.settings.sandbox {
                    "sandbox"
                } else {
                    "production"
                },
                self.client.origin().authority(),
                self.settings.topic,
            );
        } else {
            log::debug!("APNS configuration error for node {}: {reason}", push.node);
        }
    }

    fn config_ok(&self) {
        if self.config_problem.clear() {
            log::info!("APNS delivered a push: the environment and topic are right");
        }
    }

    /// Logs an authentication problem once (until it changes or clears).
    fn auth_failed(&self, reason: &str) {
        let mut last = self.auth_problem.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(reason) {
            log::error!(
                "APNS refused our credentials ({reason}): pushes fail until the {} is fixed",
                match self.auth {
                    Auth::Certificate { .. } => "certificate",
                    Auth::Token(_) => "auth key, key_id or team_id",
                }
            );
            *last = Some(reason.to_owned());
        }
    }

    fn auth_ok(&self) {
        let mut last = self.auth_problem.lock().unwrap_or_else(|e| e.into_inner());
        if last.take().is_some() {
            log::info!("APNS accepts our credentials again");
        }
    }

    /// When the client certificate expires (its notAfter); `None` with
    /// token auth (a `.p8` key has no expiry) or when it was unreadable.
    pub fn certificate_expiry(&self) -> Option<SystemTime> {
        match &self.auth {
            Auth::Certificate { expires } => *expires,
            Auth::Token(_) => None,
        }
    }

    /// One line of state for the health page.
    pub fn health(&self) -> String {
        let c = &self.counters;
        let auth = match &self.auth {
            Auth::Certificate { expires: Some(t) } => {
                format!("certificate expiring {}", rfc3339(*t))
            }
            Auth::Certificate { expires: None } => "certificate (expiry unknown)".to_owned(),
            Auth::Token(cache) => format!("token key {}", cache.key_id()),
        };
        let mut line = format!(
            "apns {} {}, {auth}, {} connection(s); {} delivered, {} dead tokens, {} failed, {} retries",
            if self.settings.sandbox { "sandbox" } else { "production" },
            self.client.origin().authority(),
            self.client.connections_open(),
            c.delivered.load(Ordering::Relaxed),
            c.dead.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
        );
        if let Some(p) = self
            .auth_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            line.push_str(&format!("; auth problem: {p}"));
        }
        line.push_str(&self.config_problem.health_suffix());
        line
    }
}

/// What a transport error means: timeouts and broken connections are
/// retried, a request we could not even build is not.
fn transport_decision(e: H2Error) -> Decision {
    match e {
        H2Error::Timeout => Decision::Retry {
            kind: FailureKind::Timeout,
            reason: "APNS did not answer in time".to_owned(),
        },
        H2Error::InvalidRequest(_) | H2Error::ResponseTooLarge { .. } => Decision::Done(
            Outcome::failed(FailureKind::Unavailable, format!("APNS: {e}")),
        ),
        e => Decision::Retry {
            kind: FailureKind::Unavailable,
            reason: format!("APNS: {e}"),
        },
    }
}

/// Backoff before attempt `attempt + 1`: the base doubled per attempt,
/// capped, with equal jitter.
fn backoff(t: &Tuning, attempt: u32) -> Duration {
    crate::backoff::equal_jitter(t.backoff, attempt, t.max_backoff, fastrand::f64())
}

fn log_certificate_expiry(path: &std::path::Path, expires: Option<SystemTime>, now: SystemTime) {
    let Some(expires) = expires else {
        log::warn!("APNS: cannot read the expiry date of {}", path.display());
        return;
    };
    let when = rfc3339(expires);
    match expires.duration_since(now) {
        Err(_) => log::error!("APNS certificate {} expired on {when}", path.display()),
        Ok(left) if left < Duration::from_secs(30 * 86_400) => log::warn!(
            "APNS certificate {} expires soon, on {when}",
            path.display()
        ),
        Ok(_) => log::info!("APNS certificate {} expires on {when}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let t = Tuning {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..Tuning::default()
        };
        for _ in 0..50 {
            let b1 = backoff(&t, 1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b2 = backoff(&t, 2);
            assert!(b2 >= Duration::from_millis(100) && b2 <= Duration::from_millis(200));
            let b9 = backoff(&t, 9);
            assert!(b9 >= Duration::from_millis(150) && b9 <= Duration::from_millis(300));
        }
    }

    #[test]
    fn transport_errors_are_retried_as_timeouts_or_unavailable() {
        assert!(matches!(
            transport_decision(H2Error::Timeout),
            Decision::Retry {
                kind: FailureKind::Timeout,
                ..
            }
        ));
        assert!(matches!(
            transport_decision(H2Error::ResponseTooLarge { limit: 1 }),
            Decision::Done(Outcome::Failed(_))
        ));
    }
}
