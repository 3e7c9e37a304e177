use std::collections::VecDeque;

use futures_lite::FutureExt;

use super::*;
use crate::clock::ManualClock;

const KEY: &str = include_str!("../../../../tests/data/fcm-test-key.pem");

/// A hand-moved clock at 2023-11-14T22:13:20Z.
fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ))
}

/// Answers from a script (then "tok-N" for the N-th request), after `delay`.
struct FakeExchange {
    script: Mutex<VecDeque<Result<Grant, ExchangeError>>>,
    calls: AtomicU64,
    delay: Duration,
}

impl FakeExchange {
    fn new(delay: Duration, script: Vec<Result<Grant, ExchangeError>>) -> Arc<Self> {
        Arc::new(FakeExchange {
            script: Mutex::new(script.into()),
            calls: AtomicU64::new(0),
            delay,
        })
    }
}

impl Exchange for FakeExchange {
    fn exchange(&self, assertion: &str) -> Result<Grant, ExchangeError> {
        assert_eq!(assertion.split('.').count(), 3);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(self.delay);
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(grant(&format!("tok-{n}"))))
    }
}

fn grant(t: &str) -> Grant {
    Grant {
        access_token: t.into(),
        expires_in: Duration::from_secs(3600),
    }
}

fn refused() -> Result<Grant, ExchangeError> {
    Err(ExchangeError::Status {
        status: 400,
        detail: "invalid_grant".into(),
    })
}

fn source(clock: &Arc<ManualClock>, ex: &Arc<FakeExchange>) -> TokenSource {
    let sa = serde_json::json!({
        "type": "service_account",
        "private_key": KEY,
        "client_email": "push@demo.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let account = ServiceAccount::from_json(&sa.to_string()).unwrap();
    TokenSource::new(Arc::new(account), ex.clone(), clock.clone())
}

/// Runs `f`, failing the test after 20 s.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    let timeout = async {
        async_io::Timer::after(Duration::from_secs(20)).await;
        None
    };
    smol::block_on(async { Some(f.await) }.or(timeout)).expect("test timed out")
}

#[test]
fn token_is_reused_then_refreshed_five_minutes_before_expiry() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::ZERO, vec![]);
    let src = source(&clock, &ex);
    block_on(async {
        assert_eq!(src.get().await.unwrap().expose(), "tok-1");
        clock.advance(Duration::from_secs(3299));
        assert_eq!(src.get().await.unwrap().expose(), "tok-1");
        assert_eq!(src.requests(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(src.get().await.unwrap().expose(), "tok-2");
        assert_eq!(src.requests(), 2);
    });
    assert!(
        src.health().contains("valid for 3600 s"),
        "{}",
        src.health()
    );
}

#[test]
fn fifty_concurrent_callers_cause_one_request() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::from_millis(100), vec![]);
    let src = Arc::new(source(&clock, &ex));
    let tokens = block_on(async {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let src = src.clone();
                smol::spawn(async move { src.get().await.unwrap() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    assert!(tokens.iter().all(|t| t.expose() == "tok-1"));
    assert_eq!(ex.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn refused_refresh_is_backed_off_not_repeated_by_every_push() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::ZERO, vec![refused(), refused()]);
    let src = source(&clock, &ex);
    block_on(async {
        let e = src.get().await.unwrap_err();
        assert!(e.contains("invalid_grant") && e.contains("400"), "{e}");
        assert!(src.get().await.is_err());
        assert_eq!(src.requests(), 1, "no second request during the backoff");
        clock.advance(Duration::from_secs(2));
        assert!(src.get().await.is_err());
        assert_eq!(src.requests(), 2);
        clock.advance(Duration::from_millis(900));
        assert!(src.get().await.is_err());
        assert_eq!(src.requests(), 2, "the backoff doubled to at least 1 s");
        clock.advance(Duration::from_secs(60));
        assert_eq!(src.get().await.unwrap().expose(), "tok-3");
    });
    assert!(src.health().contains("valid"), "{}", src.health());
}

#[test]
fn transient_failures_are_retried_within_one_refresh() {
    let clock = clock();
    let unavailable = Err(ExchangeError::Status {
        status: 503,
        detail: "x".into(),
    });
    let ex = FakeExchange::new(Duration::ZERO, vec![unavailable]);
    let src = source(&clock, &ex);
    assert_eq!(block_on(src.get()).unwrap().expose(), "tok-2");
    assert_eq!(src.requests(), 2);
}

#[test]
fn a_still_valid_token_outlives_a_failed_refresh() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::ZERO, vec![Ok(grant("old")), refused(), refused()]);
    let src = source(&clock, &ex);
    block_on(async {
        src.get().await.unwrap();
        clock.advance(Duration::from_secs(3400));
        assert_eq!(src.get().await.unwrap().expose(), "old");
        clock.advance(Duration::from_secs(300));
        assert!(src.get().await.is_err(), "expired, and the refresh fails");
    });
}

#[test]
fn invalidate_forgets_only_the_refused_token() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::ZERO, vec![]);
    let src = source(&clock, &ex);
    block_on(async {
        let first = src.get().await.unwrap();
        src.invalidate(&first);
        let second = src.get().await.unwrap();
        assert_eq!(second.expose(), "tok-2");
        src.invalidate(&first);
        assert_eq!(src.get().await.unwrap(), second);
    });
    assert_eq!(
        format!("{:?}", AccessToken("s3cret".into())),
        "AccessToken(********)"
    );
}

#[test]
fn a_caller_giving_up_neither_loses_the_token_nor_starts_a_second_refresh() {
    let clock = clock();
    let ex = FakeExchange::new(Duration::from_millis(300), vec![]);
    let src = source(&clock, &ex);
    block_on(async {
        let impatient = async {
            async_io::Timer::after(Duration::from_millis(50)).await;
            Err("gave up".to_owned())
        };
        assert_eq!(src.get().or(impatient).await.unwrap_err(), "gave up");
        assert_eq!(src.get().await.unwrap().expose(), "tok-1");
    });
    assert_eq!(ex.calls.load(Ordering::SeqCst), 1);
}
