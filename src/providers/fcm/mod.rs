//! The `fcm` provider: Firebase Cloud Messaging, HTTP v1 API.
//!
//! Google shut the legacy server-key API down in 2024, so a push is a
//! `POST /v1/projects/{project_id}/messages:send` over HTTP/2 (the shared
//! [`H2Client`], many pushes multiplexed on few connections) carrying an
//! OAuth access token obtained with the project's service account
//! ([`oauth`]). The message is built by [`message`], the answer read by
//! [`response`]; temporary failures are retried within a time budget
//! ([`retry`]).

pub mod message;
pub mod oauth;
pub mod response;
pub mod retry;
pub mod service_account;
mod settings;
pub mod token_http;

pub use settings::{FcmSettings, DEFAULT_ENDPOINT, MAX_TTL_SECS};

use crate::registrations::owner::short;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use super::config_problem::ConfigProblem;
use super::{FailureKind, Outcome, Push, StartError, TestAnswer, TEST_PUSH_BODY, TEST_PUSH_TITLE};
use crate::clock::{Clock, SystemClock};
use crate::h2client::{tls, H2Client, H2Error, H2Options, Origin};
use oauth::{AccessToken, TokenSource};
use response::Verdict;
use token_http::HttpExchange;

/// Time allowed for one token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `fcm` provider.
#[derive(Debug)]
pub struct FcmProvider {
    settings: FcmSettings,
    client: H2Client,
    tokens: TokenSource,
    clock: Arc<dyn Clock>,
    send_path: String,
    /// An auth error was logged and no push succeeded since.
    auth_alarm: AtomicBool,
    /// The configuration error (wrong project) logged, until a push is
    /// delivered.
    config_problem: ConfigProblem,
    delivered: AtomicU64,
    dead: AtomicU64,
    failed: AtomicU64,
}

/// What one request to FCM led to.
enum Attempt {
    /// The push is settled.
    Done(Outcome),
    /// Temporary failure: may be tried again.
    Again {
        kind: FailureKind,
        retry_after: Option<Duration>,
        reason: String,
    },
}

impl FcmProvider {
    /// Prepares TLS, the token source and the HTTP/2 client; connects lazily.
    pub fn new(settings: &FcmSettings) -> Result<Self, StartError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// As [`FcmProvider::new`], with token lifetimes read from `clock`.
    pub fn with_clock(settings: &FcmSettings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let tls = tls::client_config(settings.capath.as_deref(), None).map_err(|e| {
            let path = settings.capath.clone().unwrap_or_default();
            StartError::Io {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            }
        })?;
        let origin = Origin::from_https_url(&settings.endpoint).map_err(|e| StartError::Io {
            path: settings.endpoint.clone().into(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let exchange = HttpExchange::new(&settings.token_endpoint, &tls, TOKEN_TIMEOUT);
        let tokens = TokenSource::new(settings.account.clone(), Arc::new(exchange), clock.clone());
        let opts = H2Options {
            request_timeout: settings.retry.request_timeout,
            ..H2Options::default()
        };
        Ok(FcmProvider {
            send_path: format!("/v1/projects/{}/messages:send", settings.project_id),
            settings: settings.clone(),
            client: H2Client::new(origin, tls, opts),
            tokens,
            clock,
            auth_alarm: AtomicBool::new(false),
            config_problem: ConfigProblem::default(),
            delivered: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Sends one push, retrying temporary failures within the budget.
    pub async fn send(&self, push: &Push) -> Outcome {
        let body = Bytes::from(message::body(push, &self.settings.message));
        let started = self.clock.instant();
        let mut done = 0;
        let outcome = loop {
            done += 1;
            let (kind, retry_after, reason) = match self.attempt(push, body.clone()).await {
                Attempt::Done(outcome) => break outcome,
                Attempt::Again {
                    kind,
                    retry_after,
                    reason,
                } => (kind, retry_after, reason),
            };
            let policy = &self.settings.retry;
            let elapsed = self.clock.instant().saturating_duration_since(started);
            match policy.next_delay(done, retry_after, elapsed, fastrand::f64()) {
                Some(wait) => {
                    log::debug!(
                        "FCM: push for node {} failed ({reason}), attempt {} in {} ms",
                        push.node,
                        done + 1,
                        wait.as_millis()
                    );
                    async_io::Timer::after(wait).await;
                }
                None => {
                    log::warn!(
                        "FCM: push for node {} failed after {done} attempt(s): {reason}",
                        short(&push.node)
                    );
                    break Outcome::failed(kind, reason);
                }
            }
        };
        let counter = match &outcome {
            Outcome::Delivered => &self.delivered,
            Outcome::DeadToken { .. } => &self.dead,
            Outcome::Failed(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// The `messages:send` request head, with the access token.
    fn send_request(&self, token: &AccessToken) -> Result<http::Request<()>, http::Error> {
        let mut bearer = http::HeaderValue::try_from(format!("Bearer {}", token.expose()))?;
        bearer.set_sensitive(true); // never HPACK-indexed
        http::Request::post(self.send_path.as_str())
            .header(AUTHORIZATION, bearer)
            .header(CONTENT_TYPE, "application/json; charset=UTF-8")
            .body(())
    }

    async fn attempt(&self, push: &Push, body: Bytes) -> Attempt {
        let token = match self.tokens.get().await {
            Ok(t) => t,
            Err(reason) => return Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason)),
        };
        let req = match self.send_request(&token) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("FCM: cannot build the request: {e}");
                return Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason));
            }
        };
        let res = match self.client.send(req, body).await {
            Ok(res) => res,
            Err(e) => return transport_failure(e),
        };
        let retry_after = res.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        // Proven: a push was delivered since the start, so the project is
        // right and SENDER_ID_MISMATCH means this token (see `response`).
        let proven = self.delivered.load(Ordering::Relaxed) > 0;
        match response::classify(res.status.as_u16(), retry_after, &res.body, proven) {
            Verdict::Delivered => {
                if self.auth_alarm.swap(false, Ordering::Relaxed) {
                    log::info!("FCM accepts our credentials again");
                }
                if self.config_problem.clear() {
                    log::info!("FCM delivered a push: the project is right");
                }
                log::debug!("FCM: push for node {} delivered", push.node);
                Attempt::Done(Outcome::Delivered)
            }
            Verdict::DeadToken(reason) => {
                log::info!(
                    "FCM: token of node {} is dead ({reason})",
                    short(&push.node)
                );
                Attempt::Done(Outcome::DeadToken {
                    since: self.clock.now(),
                })
            }
            Verdict::Retry {
                retry_after,
                reason,
            } => Attempt::Again {
                kind: FailureKind::Unavailable,
                retry_after,
                reason,
            },
            Verdict::Auth { reason, drop_token } => {
                self.auth_refused(&token, drop_token, &reason);
                Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason))
            }
            Verdict::Misconfigured(reason) => {
                self.misconfigured(push, &reason);
                Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason))
            }
            Verdict::Refused(reason) => {
                log::warn!(
                    "FCM refused the push for node {}: {reason}",
                    short(&push.node)
                );
                Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason))
            }
        }
    }

    /// Sends one visible notification to `token`, once, and returns FCM's
    /// answer; with `validate_only` FCM checks it without delivering:
    /// with a made-up token, `INVALID_ARGUMENT` about the token proves the
    /// service account and the project (`push-appserver doctor`).
    pub async fn test_push(&self, token: &str, validate_only: bool) -> TestAnswer {
        let no_answer = |text: String| TestAnswer {
            status: 0,
            code: String::new(),
            text,
        };
        let access = match self.tokens.get().await {
            Ok(t) => t,
            Err(reason) => return no_answer(format!("no OAuth access token: {reason}")),
        };
        let body = serde_json::json!({
            "validate_only": validate_only,
            "message": {
                "token": token,
                "notification": { "title": TEST_PUSH_TITLE, "body": TEST_PUSH_BODY },
                "android": { "priority": "HIGH" },
            },
        });
        let req = match self.send_request(&access) {
            Ok(r) => r,
            Err(e) => return no_answer(format!("cannot build the request: {e}")),
        };
        match self.client.send(req, Bytes::from(body.to_string())).await {
            Ok(res) if res.status.is_success() => TestAnswer {
                status: res.status.as_u16(),
                code: String::new(),
                text: format!("FCM {}", res.status.as_u16()),
            },
            Ok(res) => {
                let (code, text) = response::code_and_text(res.status.as_u16(), &res.body);
                TestAnswer {
                    status: res.status.as_u16(),
                    code,
                    text,
                }
            }
            Err(e) => no_answer(format!("no answer from FCM: {e}")),
        }
    }

    /// Logs an auth error loudly once per episode; forgets the access
    /// token when FCM refused it.
    fn auth_refused(&self, token: &AccessToken, drop_token: bool, reason: &str) {
        if drop_token {
            self.tokens.invalidate(token);
        }
        if !self.auth_alarm.swap(true, Ordering::Relaxed) {
            log::error!(
                "FCM refuses our credentials for project {} ({}): {reason}; \
                 pushes fail until this is fixed",
                self.settings.project_id,
                self.settings.account.client_email
            );
        } else {
            log::debug!("FCM auth error: {reason}");
        }
    }

    /// Logs a configuration error loudly, once.
    fn misconfigured(&self, push: &Push, reason: &str) {
        if self.config_problem.report(reason) {
            log::error!(
                "[app.{}] FCM (project {}) rejects our pushes as if the configuration were \
                 wrong: {reason}. No registration is deleted for this until a push to this app \
                 profile has been delivered; pushes fail with wait/internal-server-error meanwhile",
                push.push_type,
                self.settings.project_id,
            );
        } else {
            log::debug!("FCM configuration error for node {}: {reason}", push.node);
        }
    }

    /// Access token requests made so far.
    pub fn token_requests(&self) -> u64 {
        self.tokens.requests()
    }

    /// Counters, the token state and the connections.
    pub fn health(&self) -> String {
        let mut line = format!(
            "fcm provider for project {}: {} delivered, {} dead tokens, {} failed; {}; {} connection(s) open",
            self.settings.project_id,
            self.delivered.load(Ordering::Relaxed),
            self.dead.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.tokens.health(),
            self.client.connections_open(),
        );
        line.push_str(&self.config_problem.health_suffix());
        line
    }
}

/// A request that got no HTTP answer.
fn transport_failure(e: H2Error) -> Attempt {
    let reason = format!("FCM: {e}");
    match e {
        H2Error::Timeout => Attempt::Again {
            kind: FailureKind::Timeout,
            retry_after: None,
            reason,
        },
        H2Error::InvalidRequest(_) | H2Error::ResponseTooLarge { .. } => {
            Attempt::Done(Outcome::failed(FailureKind::Unavailable, reason))
        }
        _ => Attempt::Again {
            kind: FailureKind::Unavailable,
            retry_after: None,
            reason,
        },
    }
}
