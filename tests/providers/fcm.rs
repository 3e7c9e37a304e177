//! The `fcm` provider against mock Google endpoints on 127.0.0.1 (see
//! `support/fcm_mock.rs`): the OAuth assertion, token caching and refresh,
//! the message, and what each FCM error leads to. Token expiry runs on a
//! test clock; every test is bounded by a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fcm_mock::{Answer, FcmMock, Google, TokenMock, KEY};
use crate::support::pki::Pki;
use futures_lite::FutureExt;
use push_appserver::clock::{Clock, ManualClock};
use push_appserver::config::ConfigContext;
use push_appserver::jwt::base64url_decode;
use push_appserver::providers::fcm::retry::RetryPolicy;
use push_appserver::providers::fcm::{FcmProvider, FcmSettings};
use push_appserver::providers::{FailureKind, Outcome, Priority, ProviderSettings, Push, Summary};
use serde_json::{json, Value};

const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const SEND_PATH: &str = "/v1/projects/demo-project/messages:send";

/// Mocks, a provider wired to them, and its clock.
struct Env {
    /// Keeps the CA folder (service account, CA PEM) alive.
    _ca: Pki,
    fcm: FcmMock,
    tokens: TokenMock,
    clock: Arc<ManualClock>,
    provider: Arc<FcmProvider>,
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        budget: Duration::from_secs(10),
    }
}

async fn env(extra_config: &str, retry: RetryPolicy, token_delay: Duration) -> Env {
    let google = Google::start(token_delay).await;
    let text = format!("{}{extra_config}", google.config());
    let ctx = ConfigContext::for_file(&google.ca.dir.path("appserver.toml"));
    let mut settings =
        FcmSettings::from_table("app.fcm", toml::from_str(&text).unwrap(), &ctx).unwrap();
    settings.retry = retry;
    let clock = Arc::new(ManualClock::new());
    let provider = FcmProvider::with_clock(&settings, clock.clone()).unwrap();
    let Google {
        ca, fcm, tokens, ..
    } = google;
    Env {
        _ca: ca,
        fcm,
        tokens,
        clock,
        provider: Arc::new(provider),
    }
}

fn push(token: &str) -> Push {
    Push {
        component: "push.example.org".into(),
        push_type: "fcm".into(),
        node: "node-1".into(),
        token: token.into(),
        priority: Priority::High,
        summary: Summary {
            message_count: Some(1),
            last_message_sender: Some("juliet@capulet.lit".into()),
            last_message_body: Some("Wherefore art thou?".into()),
            pending_subscription_count: None,
        },
        encrypted: None,
        flavour: push_appserver::providers::Flavour::Standard,
    }
}

/// Runs a test body on smol, failing it after 30 s.
fn run<F: std::future::Future<Output = ()>>(f: F) {
    let timeout = async {
        async_io::Timer::after(Duration::from_secs(30)).await;
        panic!("test timed out");
    };
    smol::block_on(f.or(timeout));
}

fn failure_kind(o: &Outcome) -> FailureKind {
    match o {
        Outcome::Failed(f) => f.kind,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn delivers_with_a_verified_assertion_and_the_configured_message() {
    run(async {
        let e = env(
            "push_ttl = 3600\ncollapse_key = \"chat\"",
            quick_retries(),
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            e.provider.send(&push("device-token-1")).await,
            Outcome::Delivered
        );

        let seen = e.fcm.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, SEND_PATH);
        assert_eq!(seen[0].authorization, "Bearer at-1");
        assert_eq!(
            seen[0].body,
            json!({"message": {
                "token": "device-token-1",
                "data": {"type": "push", "node": "node-1"},
                "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "chat"},
            }})
        );

        let forms = e.tokens.forms();
        assert_eq!(forms.len(), 1);
        let field = |name: &str| {
            forms[0]
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            field("grant_type"),
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        let (header, claims) = verify_jwt(&field("assertion"));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let iat = push_appserver::clock::unix_secs(e.clock.now());
        assert_eq!(
            claims,
            json!({
                "iss": "push@demo-project.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/firebase.messaging",
                "aud": GOOGLE_TOKEN_URI,
                "iat": iat,
                "exp": iat + 3600,
            })
        );
    });
}

#[test]
fn normal_priority_and_summary_when_configured() {
    run(async {
        let e = env(
            "push_priority = \"normal\"\ninclude_summary = true",
            quick_retries(),
            Duration::ZERO,
        )
        .await;
        let mut p = push("t");
        p.priority = Priority::Silent;
        assert_eq!(e.provider.send(&p).await, Outcome::Delivered);
        let body = &e.fcm.seen()[0].body["message"];
        assert_eq!(body["android"]["priority"], "NORMAL");
        assert_eq!(body["android"]["ttl"], "2419200s");
        assert_eq!(body["data"]["last-message-body"], "Wherefore art thou?");
        assert_eq!(body["data"]["message-count"], "1");
    });
}

#[test]
fn token_is_reused_then_refreshed_after_expiry() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        for _ in 0..3 {
            assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        }
        assert_eq!(e.tokens.requests(), 1);
        // Refreshed five minutes before the hour is up.
        e.clock.advance(Duration::from_secs(3300));
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert_eq!(e.tokens.requests(), 2);
        let auth: Vec<String> = e.fcm.seen().into_iter().map(|s| s.authorization).collect();
        assert_eq!(
            auth,
            ["Bearer at-1", "Bearer at-1", "Bearer at-1", "Bearer at-2"]
        );
        assert!(
            e.provider.health().contains("4 delivered"),
            "{}",
            e.provider.health()
        );
    });
}

#[test]
fn fifty_concurrent_pushes_make_one_token_request() {
    run(async {
        let e = env("", quick_retries(), Duration::from_millis(300)).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let p = e.provider.clone();
                smol::spawn(async move { p.send(&push(&format!("t{i}"))).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await, Outcome::Delivered);
        }
        let elapsed = started.elapsed();
        assert_eq!(e.tokens.requests(), 1);
        assert_eq!(e.fcm.requests(), 50);
        assert!(e
            .fcm
            .seen()
            .iter()
            .all(|s| s.authorization == "Bearer at-1"));
        eprintln!("50 concurrent pushes with a 300 ms token endpoint: {elapsed:?}");
    });
}

#[test]
fn dead_tokens_are_reported_with_the_time_they_died() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        let mismatch = Answer::error(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"));
        e.fcm.script([
            // Before any delivery a mismatch points at the project: kept.
            mismatch.clone(),
            mismatch.clone(),
            Answer::ok(),
            Answer::error(404, "NOT_FOUND", Some("UNREGISTERED")),
            mismatch,
            Answer::error(404, "NOT_FOUND", None),
        ]);
        for _ in 0..2 {
            let o = e.provider.send(&push("t")).await;
            assert_eq!(failure_kind(&o), FailureKind::Unavailable);
            assert!(matches!(&o, Outcome::Failed(f) if f.reason.contains("project_id")));
        }
        assert!(e.provider.health().contains("configuration problem"));
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert!(!e.provider.health().contains("configuration problem"));
        // Proven now: the project is right, so the token is dead.
        let now = e.clock.now();
        for _ in 0..2 {
            assert_eq!(
                e.provider.send(&push("t")).await,
                Outcome::DeadToken { since: now }
            );
        }
        // A bare 404 (wrong project?) does not unregister anyone.
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Unavailable);
        assert_eq!(e.fcm.requests(), 6, "none of these is retried");
    });
}

#[test]
fn unavailable_is_retried_a_bounded_number_of_times() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        let unavailable = Answer::error(503, "UNAVAILABLE", Some("UNAVAILABLE"));
        e.fcm.script(vec![unavailable; 3]);
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Unavailable);
        assert_eq!(e.fcm.requests(), 3, "three attempts, then give up");
        assert!(e.provider.health().contains("1 failed"));

        e.fcm
            .script([Answer::error(500, "INTERNAL", Some("INTERNAL"))]);
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert_eq!(e.fcm.requests(), 5, "one retry after INTERNAL");
    });
}

#[test]
fn retry_after_is_honoured_and_quota_without_it_is_not_hammered() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        let quota = Answer::error(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
        e.fcm.script([quota.clone().header("retry-after", "1")]);
        let started = Instant::now();
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(e.fcm.requests(), 2);

        // No Retry-After: Google asks for at least a minute, longer than a
        // push may wait, so the push fails at once.
        e.fcm.script([quota.clone()]);
        let started = Instant::now();
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Unavailable);
        // Not retried, and no wait for the quota: the bound is far below
        // Google's minute and only tells the two apart.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(e.fcm.requests(), 3);

        // A Retry-After beyond the longest wait also ends the push at once.
        e.fcm.script([
            Answer::error(503, "UNAVAILABLE", Some("UNAVAILABLE")).header("retry-after", "120")
        ]);
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Unavailable);
        assert_eq!(e.fcm.requests(), 4);
    });
}

#[test]
fn a_silent_fcm_is_a_timeout_after_bounded_attempts() {
    run(async {
        let retry = RetryPolicy {
            attempts: 2,
            request_timeout: Duration::from_millis(300),
            ..quick_retries()
        };
        let e = env("", retry, Duration::ZERO).await;
        let slow = Answer::ok().after(Duration::from_secs(5));
        e.fcm.script(vec![slow; 2]);
        let started = Instant::now();
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Timeout);
        assert_eq!(e.fcm.requests(), 2);
        // Each attempt is cut at its 300 ms timeout, not at the mock's
        // answer after 5 s; the bound only tells the two apart.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn unauthorized_drops_the_access_token_and_is_not_retried() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        e.fcm.script([Answer::error(401, "UNAUTHENTICATED", None)]);
        let o = e.provider.send(&push("t")).await;
        assert_eq!(failure_kind(&o), FailureKind::Unavailable);
        assert_eq!(e.fcm.requests(), 1);
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert_eq!(e.tokens.requests(), 2, "the refused token was replaced");
        assert_eq!(e.fcm.seen()[1].authorization, "Bearer at-2");
    });
}

#[test]
fn invalid_argument_fails_with_the_reason() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        e.fcm.script([Answer::error(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
        )]);
        match e.provider.send(&push("t")).await {
            Outcome::Failed(f) => {
                assert_eq!(f.kind, FailureKind::Unavailable);
                assert!(f.reason.contains("INVALID_ARGUMENT"), "{}", f.reason);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.fcm.requests(), 1);
        assert_eq!(e.tokens.requests(), 1, "the token was fine");
    });
}

#[test]
fn a_refused_assertion_fails_pushes_without_hammering_the_token_endpoint() {
    run(async {
        let e = env("", quick_retries(), Duration::ZERO).await;
        let refusal =
            json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});
        e.tokens.script([(400, refusal.to_string())]);
        for _ in 0..3 {
            match e.provider.send(&push("t")).await {
                Outcome::Failed(f) => assert!(f.reason.contains("invalid_grant"), "{}", f.reason),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(e.tokens.requests(), 1, "later pushes wait for the backoff");
        assert_eq!(e.fcm.requests(), 0);
        e.clock.advance(Duration::from_secs(2));
        assert_eq!(e.provider.send(&push("t")).await, Outcome::Delivered);
        assert_eq!(e.tokens.requests(), 2);
    });
}

#[test]
fn the_legacy_server_key_is_refused_with_what_to_do_instead() {
    let ctx = ConfigContext::for_file(std::path::Path::new("/etc/push-appserver/appserver.toml"));
    let table = toml::from_str("provider = \"fcm\"\nkey = \"AAAA\"").unwrap();
    let e = ProviderSettings::from_table("fcm", table, &ctx).unwrap_err();
    assert_eq!(e.key, "app.fcm.key");
    assert!(e.reason.contains("service_account"), "{}", e.reason);
}

/// Checks an RS256 JWT against the test key; returns header and claims.
fn verify_jwt(jwt: &str) -> (Value, Value) {
    use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    let der = rustls_pemfile::private_key(&mut KEY.as_bytes())
        .unwrap()
        .unwrap();
    let key = RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public().as_ref());
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &base64url_decode(parts[2]).unwrap())
        .expect("the assertion verifies against the test key");
    let json = |p: &str| serde_json::from_slice(&base64url_decode(p).unwrap()).unwrap();
    (json(parts[0]), json(parts[1]))
}
