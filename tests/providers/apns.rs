//! The APNS provider against a mock APNS: a real HTTP/2 + TLS server on
//! 127.0.0.1 that checks the path, headers, payload, the JWT signature
//! (token auth) or the client certificate (certificate auth), and answers
//! as each test needs.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::apple::{logged, logs, ok, Apple, Behaviour, KEY_ID, TEAM_ID, TOPIC};
use crate::support::h2_mock::{MockOptions, MockRequest, Reply};
use async_io::Timer;
use futures_lite::FutureExt;
use push_appserver::clock::{unix_secs, ManualClock};
use push_appserver::config::{ConfigContext, Settings};
use push_appserver::providers::apns::ApnsProvider;
use push_appserver::providers::{
    Encrypted, FailureKind, Outcome, Priority, Provider, Push, Summary,
};

fn run<F: Future>(f: F) -> F::Output {
    logs();
    smol::block_on(f.or(async {
        Timer::after(Duration::from_secs(40)).await;
        panic!("test timed out")
    }))
}

fn push(token: &str, priority: Priority) -> Push {
    Push {
        component: "push.example.org".into(),
        push_type: "apns".into(),
        node: format!("node-{}", &token[token.len().saturating_sub(4)..]),
        token: token.into(),
        priority,
        summary: Summary::default(),
        encrypted: None,
        flavour: push_appserver::providers::Flavour::Standard,
    }
}

fn token(i: usize) -> String {
    format!("{i:064x}")
}

fn json(r: &MockRequest) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

// ---- tests ---------------------------------------------------------------

#[test]
fn each_priority_gets_its_headers_and_payload() {
    run(async {
        let apple = Apple::token(MockOptions::default(), ok()).await;
        let p = apple.provider("push_ttl = 3600\n");
        let started = unix_secs(SystemTime::now());
        for (i, prio) in [Priority::High, Priority::Silent, Priority::Voip]
            .into_iter()
            .enumerate()
        {
            assert_eq!(p.send(&push(&token(i), prio)).await, Outcome::Delivered);
        }
        let seen = apple.server.seen();
        let by = |i: usize| {
            seen.iter()
                .find(|r| r.path == format!("/3/device/{}", token(i)))
                .unwrap()
        };

        let high = by(0);
        assert_eq!(high.header("apns-push-type"), Some("alert"));
        assert_eq!(high.header("apns-priority"), Some("10"));
        assert_eq!(high.header("apns-topic"), Some(TOPIC));
        assert_eq!(
            json(high),
            serde_json::json!({"aps": {"alert": {"body": "New message"}, "sound": "default", "mutable-content": 1}})
        );

        let silent = by(1);
        assert_eq!(silent.header("apns-push-type"), Some("background"));
        assert_eq!(silent.header("apns-priority"), Some("5"));
        assert_eq!(
            json(silent),
            serde_json::json!({"aps": {"content-available": 1}})
        );

        let voip = by(2);
        assert_eq!(voip.header("apns-push-type"), Some("voip"));
        assert_eq!(voip.header("apns-priority"), Some("10"));
        assert_eq!(voip.header("apns-topic"), Some("org.example.chat.voip"));

        for r in &seen {
            let exp: u64 = r.header("apns-expiration").unwrap().parse().unwrap();
            assert!(
                (started + 3600..=started + 3600 + 60).contains(&exp),
                "expiration {exp} is not now + 1 h"
            );
            assert!(r.header("apns-collapse-id").is_none());
        }
    });
}

#[test]
fn encrypted_pushes_are_forwarded_as_mutable_alerts() {
    run(async {
        let apple = Apple::token(MockOptions::default(), ok()).await;
        let p = apple.provider("mutable_content = false\ncollapse_pushes = true\n");
        let mut pu = push(&token(7), Priority::High);
        pu.encrypted = Some(Encrypted {
            iv: "aXY=".into(),
            payload: "Y2lwaGVydGV4dA==".into(),
            kind: None,
        });
        assert_eq!(p.send(&pu).await, Outcome::Delivered);
        let r = &apple.server.seen()[0];
        let v = json(r);
        assert_eq!(v["aps"]["mutable-content"], 1);
        assert_eq!(v["encrypted"]["payload"], "Y2lwaGVydGV4dA==");
        assert_eq!(v["encrypted"]["iv"], "aXY=");
        assert!(r.header("apns-collapse-id").is_some());
    });
}

#[test]
fn one_jwt_serves_many_pushes_and_is_replaced_after_50_minutes() {
    run(async {
        let apple = Apple::token(MockOptions::default(), ok()).await;
        let clock = Arc::new(ManualClock::new());
        let p = ApnsProvider::with_clock(&apple.config(""), clock.clone()).unwrap();
        for i in 0..50 {
            assert_eq!(
                p.send(&push(&token(i), Priority::High)).await,
                Outcome::Delivered
            );
        }
        assert_eq!(apple.jwt_count(), 1);
        clock.advance(Duration::from_secs(49 * 60));
        assert_eq!(
            p.send(&push(&token(50), Priority::High)).await,
            Outcome::Delivered
        );
        assert_eq!(apple.jwt_count(), 1);
        clock.advance(Duration::from_secs(2 * 60));
        assert_eq!(
            p.send(&push(&token(51), Priority::High)).await,
            Outcome::Delivered
        );
        assert_eq!(apple.jwt_count(), 2);
        // Never logged at info level or above.
        for jwt in apple.jwts.lock().unwrap().iter() {
            assert_eq!(logged(log::Level::Info, jwt), 0);
        }
        assert_eq!(logged(log::Level::Info, &token(3)), 0);
    });
}

#[test]
fn dead_tokens_carry_apples_timestamp() {
    run(async {
        let behaviour: Behaviour = Arc::new(|r| {
            let t = r.path.trim_start_matches("/3/device/");
            if t == token(1) {
                Reply::status(
                    410,
                    r#"{"reason":"Unregistered","timestamp":1700000000123}"#,
                )
            } else if t == token(2) {
                Reply::status(400, r#"{"reason":"BadDeviceToken"}"#)
            } else if t == token(4) {
                Reply::status(400, r#"{"reason":"DeviceTokenNotForTopic"}"#)
            } else {
                Reply::ok()
            }
        });
        let apple = Apple::token(MockOptions::default(), behaviour).await;
        let p = apple.provider("");
        // 410 is unambiguous, even before any push was delivered.
        assert_eq!(
            p.send(&push(&token(1), Priority::High)).await,
            Outcome::DeadToken {
                since: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
            }
        );
        // Before any delivery a 400 BadDeviceToken or DeviceTokenNotForTopic
        // points at the environment or topic: a failure, logged once.
        for t in [token(2), token(4), token(2)] {
            match p.send(&push(&t, Priority::High)).await {
                Outcome::Failed(f) => assert_eq!(f.kind, FailureKind::Unavailable),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(logged(log::Level::Error, "check `sandbox`"), 1);
        assert!(
            p.health().contains("configuration problem"),
            "{}",
            p.health()
        );
        assert_eq!(
            p.send(&push(&token(3), Priority::High)).await,
            Outcome::Delivered
        );
        assert!(!p.health().contains("configuration problem"));
        // Proven now: the same answers mean dead tokens.
        let before = SystemTime::now() - Duration::from_secs(1);
        for t in [token(2), token(4)] {
            match p.send(&push(&t, Priority::High)).await {
                Outcome::DeadToken { since } => assert!(since >= before),
                other => panic!("{other:?}"),
            }
        }
        // A malformed token never reaches Apple.
        assert!(matches!(
            p.send(&push("not-hex/../x", Priority::High)).await,
            Outcome::DeadToken { .. }
        ));
        assert_eq!(apple.server.stats.requests(), 7);
        // Dead tokens are not retried.
        assert!(p.health().contains("4 dead tokens"), "{}", p.health());
    });
}

#[test]
fn temporary_failures_are_retried_a_bounded_number_of_times() {
    run(async {
        let behaviour: Behaviour = Arc::new(|r| {
            let t = r.path.trim_start_matches("/3/device/");
            if t == token(1) {
                Reply::status(503, r#"{"reason":"ServiceUnavailable"}"#)
            } else {
                Reply::status(500, r#"{"reason":"InternalServerError"}"#)
            }
        });
        let apple = Apple::token(MockOptions::default(), behaviour).await;
        let p = apple.provider("");
        match p.send(&push(&token(1), Priority::High)).await {
            Outcome::Failed(f) => {
                assert_eq!(f.kind, FailureKind::Unavailable);
                assert!(f.reason.contains("ServiceUnavailable"), "{}", f.reason);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(apple.server.stats.requests(), 3);
    });
}

#[test]
fn a_429_then_success_is_delivered() {
    run(async {
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        let behaviour: Behaviour = Arc::new(move |_| {
            let mut n = c.lock().unwrap();
            *n += 1;
            if *n == 1 {
                Reply::status(429, r#"{"reason":"TooManyRequests"}"#)
            } else {
                Reply::ok()
            }
        });
        let apple = Apple::token(MockOptions::default(), behaviour).await;
        let p = apple.provider("");
        assert_eq!(
            p.send(&push(&token(1), Priority::High)).await,
            Outcome::Delivered
        );
        assert_eq!(apple.server.stats.requests(), 2);
        assert!(p.health().contains("1 retries"), "{}", p.health());
    });
}

#[test]
fn a_silent_apple_times_out_after_bounded_attempts() {
    run(async {
        let apple = Apple::token(MockOptions::default(), Arc::new(|_| Reply::Stall)).await;
        let mut s = apple.config("");
        s.tuning.request_timeout = Duration::from_millis(150);
        let p = ApnsProvider::new(&s).unwrap();
        let started = Instant::now();
        match p.send(&push(&token(1), Priority::High)).await {
            Outcome::Failed(f) => assert_eq!(f.kind, FailureKind::Timeout),
            other => panic!("{other:?}"),
        }
        // Each attempt ends at the 150 ms timeout set above; the default (8 s)
        // would take 24 s for the three. The bound only tells the two apart.
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(apple.server.stats.requests(), 3);
    });
}

#[test]
fn auth_problems_fail_are_logged_once_and_shown_in_health() {
    run(async {
        let behaviour: Behaviour =
            Arc::new(|_| Reply::status(403, r#"{"reason":"InvalidProviderToken"}"#));
        let apple = Apple::token(MockOptions::default(), behaviour).await;
        let clock = Arc::new(ManualClock::new());
        let p = ApnsProvider::with_clock(&apple.config(""), clock.clone()).unwrap();
        for i in 0..5 {
            match p.send(&push(&token(i), Priority::High)).await {
                Outcome::Failed(f) => {
                    assert_eq!(f.kind, FailureKind::Unavailable);
                    assert!(f.reason.contains("InvalidProviderToken"));
                }
                other => panic!("{other:?}"),
            }
        }
        // Not retried, logged once, visible on the health page.
        assert_eq!(apple.server.stats.requests(), 5);
        assert_eq!(logged(log::Level::Error, "403: InvalidProviderToken"), 1);
        assert!(
            p.health().contains("InvalidProviderToken"),
            "{}",
            p.health()
        );
        // The refused token is replaced, but not within 20 minutes.
        assert_eq!(apple.jwt_count(), 1);
        clock.advance(Duration::from_secs(21 * 60));
        let _ = p.send(&push(&token(9), Priority::High)).await;
        assert_eq!(apple.jwt_count(), 2);
    });
}

#[test]
fn goaway_mid_stream_loses_no_push() {
    run(async {
        let behaviour: Behaviour = Arc::new(|_| Reply::Respond {
            status: 200,
            body: String::new(),
            delay: Duration::from_millis(20),
        });
        let opts = MockOptions {
            goaway_after: Some(25),
            ..MockOptions::default()
        };
        let apple = Apple::token(opts, behaviour).await;
        let p = Arc::new(apple.provider(""));
        // 8 senders, 25 pushes each, one after the other: pushes are in
        // flight whenever a connection goes away.
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let p = p.clone();
                smol::spawn(async move {
                    for i in 0..25 {
                        let outcome = p.send(&push(&token(w * 25 + i), Priority::High)).await;
                        assert_eq!(outcome, Outcome::Delivered);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        assert!(apple.server.stats.connections() >= 2);
        let delivered: HashSet<String> = apple.server.seen().into_iter().map(|r| r.path).collect();
        assert_eq!(delivered.len(), 200);
        // None was sent twice: unprocessed pushes were resent, processed
        // ones were not.
        assert_eq!(apple.server.stats.requests(), 200);
    });
}

#[test]
fn a_thousand_concurrent_pushes_share_one_connection() {
    run(async {
        // While `slow` is set each answer takes 300 ms, so the pushes overlap
        // (how many at once depends on the machine: printed, not asserted).
        let slow = Arc::new(AtomicBool::new(true));
        let s = slow.clone();
        let behaviour: Behaviour = Arc::new(move |_| Reply::Respond {
            status: 200,
            body: String::new(),
            delay: Duration::from_millis(if s.load(Ordering::SeqCst) { 300 } else { 0 }),
        });
        let apple = Apple::token(MockOptions::default(), behaviour).await;
        let p = Arc::new(apple.provider(""));
        let burst = |from: usize| {
            let tasks: Vec<_> = (from..from + 1000)
                .map(|i| {
                    let p = p.clone();
                    smol::spawn(async move { p.send(&push(&token(i), Priority::High)).await })
                })
                .collect();
            async move {
                for t in tasks {
                    assert_eq!(t.await, Outcome::Delivered);
                }
            }
        };
        burst(0).await;
        assert_eq!(apple.server.stats.connections(), 1);
        assert_eq!(apple.server.stats.requests(), 1000);
        let peak = apple.server.stats.peak();

        // Instant answers, same connection (the time taken is printed).
        slow.store(false, Ordering::SeqCst);
        let started = Instant::now();
        burst(1000).await;
        let elapsed = started.elapsed();
        assert_eq!(apple.server.stats.connections(), 1);
        assert_eq!(apple.server.stats.requests(), 2000);
        eprintln!(
            "1000 concurrent pushes over one connection: {} ms ({:.0} pushes/s); peak {peak} streams at once",
            elapsed.as_millis(),
            1000.0 / elapsed.as_secs_f64(),
        );
        assert!(p.health().contains("2000 delivered"), "{}", p.health());
    });
}

#[test]
fn certificate_auth_presents_the_client_certificate() {
    run(async {
        let not_after = UNIX_EPOCH + Duration::from_secs(1_950_000_000);
        let apple = Apple::cert(ok(), not_after).await;
        let p = apple.provider("");
        assert_eq!(
            p.send(&push(&token(1), Priority::High)).await,
            Outcome::Delivered
        );
        assert!(apple.server.seen()[0].client_cert.is_some());
        let health = p.health();
        assert!(
            health.contains("certificate expiring 2031-10-17"),
            "{health}"
        );
        assert_eq!(logged(log::Level::Info, "expires on 2031-10-17"), 1);
    });
}

#[test]
fn a_config_file_with_an_apns_app_starts_the_provider() {
    run(async {
        let apple = Apple::token(MockOptions::default(), ok()).await;
        let text = format!(
            "data_dir = \"data\"\n[[component]]\njid = \"push.example.org\"\n\
             server = \"127.0.0.1:5347\"\nsecret = \"s3cret\"\ntypes = [\"ios\"]\n\
             [app.ios]\nprovider = \"apns\"\ntopic = \"{TOPIC}\"\nendpoint = \"{}\"\n\
             capath = {:?}\nauth_key = \"AuthKey.p8\"\nkey_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
            apple.server.url(),
            apple.pki.ca_pem.display().to_string(),
        );
        let ctx = ConfigContext::for_file(&apple.files.0.join("appserver.toml"));
        let settings = Settings::parse(&text, &ctx).unwrap();
        let app = &settings.apps["ios"];
        assert!(app
            .describe()
            .contains(&("topic".to_owned(), format!("{TOPIC:?}"))));
        assert!(settings.to_string().contains("provider = \"apns\""));
        let provider = Provider::start(app).unwrap();
        assert_eq!(provider.kind(), "apns");
        assert_eq!(
            provider.send(&push(&token(1), Priority::Silent)).await,
            Outcome::Delivered
        );
        assert!(
            provider.health().contains("1 delivered"),
            "{}",
            provider.health()
        );

        // A bad value names its key.
        let bad = text.replace("provider = \"apns\"", "provider = \"apns\"\npush_ttl = -5");
        let e = Settings::parse(&bad, &ctx).unwrap_err();
        assert_eq!(e.key, "app.ios.push_ttl");
    });
}
