//! The OAuth 2.0 access token for FCM: obtained with a signed JWT assertion
//! (RFC 7523), cached, refreshed five minutes before it expires, one
//! refresh at a time however many pushes wait, failed refreshes backed off.
//! Time comes from a [`Clock`], so expiry is tested without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::retry::{backoff, refresh_backoff};
use super::service_account::ServiceAccount;
use crate::clock::Clock;

/// How long before expiry a token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Exchange attempts within one refresh, for transient failures.
const EXCHANGE_ATTEMPTS: u32 = 2;

/// A granted access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The bearer token (a secret).
    pub access_token: String,
    /// Lifetime from the moment of the request.
    pub expires_in: Duration,
}

/// Why the token endpoint gave no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// No answer (connection, TLS, timeout): worth retrying.
    Transport(String),
    /// An error status, with the OAuth `error` and `error_description`.
    Status {
        /// HTTP status.
        status: u16,
        /// What the endpoint said.
        detail: String,
    },
    /// An answer without a usable token.
    Malformed(String),
}

impl ExchangeError {
    fn transient(&self) -> bool {
        match self {
            ExchangeError::Transport(_) => true,
            ExchangeError::Status { status, .. } => *status == 429 || *status >= 500,
            ExchangeError::Malformed(_) => false,
        }
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Transport(e) => write!(f, "token endpoint unreachable: {e}"),
            ExchangeError::Status { status, detail } => {
                write!(f, "token endpoint answered {status}: {detail}")?;
                if matches!(status, 400 | 401 | 403) {
                    f.write_str(" (is the service-account key still valid, and the clock right?)")?;
                }
                Ok(())
            }
            ExchangeError::Malformed(e) => write!(f, "token endpoint answer unusable: {e}"),
        }
    }
}

/// Posts a JWT assertion to the token endpoint. Blocking: called on a
/// blocking thread.
pub trait Exchange: Send + Sync + 'static {
    /// One `jwt-bearer` grant request.
    fn exchange(&self, assertion: &str) -> Result<Grant, ExchangeError>;
}

/// An access token as handed to a request. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// The token, for the `authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(********)")
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: SystemTime,
    expires_at: SystemTime,
}

struct Failure {
    retry_at: SystemTime,
    consecutive: u32,
    error: String,
}

#[derive(Default)]
struct State {
    token: Option<Cached>,
    failure: Option<Failure>,
}

/// The cached access token of one service account.
pub struct TokenSource {
    inner: Arc<Inner>,
    /// Held by the one refresh in progress.
    refresh: Arc<smol::lock::Mutex<()>>,
}

/// What a refresh task needs; it outlives a cancelled caller.
struct Inner {
    account: Arc<ServiceAccount>,
    exchange: Arc<dyn Exchange>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    requests: AtomicU64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.inner.account.client_email)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source with nothing cached yet.
    pub fn new(
        account: Arc<ServiceAccount>,
        exchange: Arc<dyn Exchange>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TokenSource {
            inner: Arc::new(Inner {
                account,
                exchange,
                clock,
                state: Mutex::new(State::default()),
                requests: AtomicU64::new(0),
            }),
            refresh: Arc::new(smol::lock::Mutex::new(())),
        }
    }

    /// A valid access token: the cached one, or a new one. While one task
    /// refreshes, the others wait for it (or keep using the old token while
    /// it is still valid) instead of asking too.
    pub async fn get(&self) -> Result<AccessToken, String> {
        let (fresh, usable) = self.inner.peek();
        if let Some(t) = fresh {
            return Ok(t);
        }
        let guard = match &usable {
            Some(t) => match self.refresh.try_lock_arc() {
                Some(g) => g,
                None => return Ok(t.clone()),
            },
            None => self.refresh.lock_arc().await,
        };
        let (fresh, usable) = self.inner.peek();
        if let Some(t) = fresh {
            return Ok(t);
        }
        if let Some(error) = self.inner.backing_off() {
            return usable.ok_or(error);
        }
        // The refresh runs as its own task, holding the lock: a push that
        // gives up waiting (its timeout) neither loses the token being
        // fetched nor lets a second refresh start beside it.
        let (tx, rx) = smol::channel::bounded(1);
        let inner = self.inner.clone();
        smol::spawn(async move {
            let result = inner.refresh_now().await;
            drop(guard);
            let _ = tx.try_send(result);
        })
        .detach();
        let result = rx
            .recv()
            .await
            .unwrap_or_else(|_| Err("FCM auth: token refresh abandoned".into()));
        result.or_else(|e| usable.ok_or(e))
    }

    /// Forgets `token` (FCM refused it), unless a newer one replaced it.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut st = self.inner.lock();
        if st.token.as_ref().is_some_and(|c| c.token == *token) {
            st.token = None;
        }
    }

    /// Token requests made so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// One line for the health page.
    pub fn health(&self) -> String {
        let now = self.inner.clock.now();
        let st = self.inner.lock();
        match (&st.token, &st.failure) {
            (_, Some(f)) => format!("access token failing: {}", f.error),
            (Some(c), None) => match c.expires_at.duration_since(now) {
                Ok(left) => format!("access token valid for {} s", left.as_secs()),
                Err(_) => "access token expired".into(),
            },
            (None, None) => "no access token yet".into(),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (token not due for refresh, token still valid)
    fn peek(&self) -> (Option<AccessToken>, Option<AccessToken>) {
        let now = self.clock.now();
        match &self.lock().token {
            Some(c) if now < c.refresh_at => (Some(c.token.clone()), None),
            Some(c) if now < c.expires_at => (None, Some(c.token.clone())),
            _ => (None, None),
        }
    }

    /// The last refresh error, while its backoff lasts.
    fn backing_off(&self) -> Option<String> {
        let now = self.clock.now();
        let st = self.lock();
        st.failure
            .as_ref()
            .filter(|f| now < f.retry_at)
            .map(|f| f.error.clone())
    }

    async fn refresh_now(&self) -> Result<AccessToken, String> {
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            let now = self.clock.now();
            let assertion = self.account.assertion(now).map_err(|e| e.to_string())?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let exchange = self.exchange.clone();
            match smol::unblock(move || exchange.exchange(&assertion)).await {
                Ok(grant) => return Ok(self.store(now, grant)),
                Err(e) if e.transient() && attempt < EXCHANGE_ATTEMPTS => {
                    log::debug!("FCM: token request failed, retrying: {e}");
                    let wait = backoff(Duration::from_millis(500), attempt, fastrand::f64());
                    async_io::Timer::after(wait).await;
                }
                Err(e) => break e,
            }
        };
        let mut st = self.lock();
        let consecutive = st.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
        let error = format!("FCM auth: {error}");
        if consecutive == 1 {
            log::error!("{error}");
        } else {
            log::debug!("{error} ({consecutive} failures in a row)");
        }
        st.failure = Some(Failure {
            retry_at: self.clock.now() + refresh_backoff(consecutive, fastrand::f64()),
            consecutive,
            error: error.clone(),
        });
        Err(error)
    }

    fn store(&self, requested_at: SystemTime, grant: Grant) -> AccessToken {
        let margin = REFRESH_MARGIN.min(grant.expires_in / 2);
        let token = AccessToken(grant.access_token.into());
        let mut st = self.lock();
        if st.failure.take().is_some() {
            log::info!("FCM auth: access token obtained again");
        }
        st.token = Some(Cached {
            token: token.clone(),
            refresh_at: requested_at + grant.expires_in - margin,
            expires_at: requested_at + grant.expires_in,
        });
        token
    }
}

#[cfg(test)]
mod tests;
