//! Pure: what an APNS answer means for the push.
//!
//! | status | reason                                     | decision                      |
//! |--------|--------------------------------------------|-------------------------------|
//! | 200    |                                            | delivered                     |
//! | 410    | any (`Unregistered`, `ExpiredToken`)       | dead since Apple's `timestamp`|
//! | 400    | `BadDeviceToken`, `DeviceTokenNotForTopic` | dead since now, once proven   |
//! | 403    | certificate or token problem               | auth problem: failed, logged  |
//! | 429, 5xx | `TooManyRequests`, `InternalServerError`, ... | retry with backoff         |
//! | other  |                                            | failed with Apple's reason    |
//!
//! "Once proven": a wrong environment (a production token sent to the
//! sandbox, the default) or a wrong `topic` makes Apple answer 400
//! `BadDeviceToken`/`DeviceTokenNotForTopic` for every token, so these
//! remove a registration only after the app profile has delivered at least
//! one push since the start (its environment and topic are then right).
//! Before that they are a configuration error: nothing is deleted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::providers::{FailureKind, Outcome};

/// What to do after one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Final: report this outcome.
    Done(Outcome),
    /// Temporary: try again after a backoff while attempts remain, else
    /// fail with `kind` and `reason`.
    Retry {
        /// Failure kind if no attempt is left.
        kind: FailureKind,
        /// Why, for logs and the failure.
        reason: String,
    },
    /// An answer that, before any push was delivered, points at the
    /// configuration (environment or topic) rather than at the token:
    /// fail without deleting anything, and tell the operator.
    Misconfigured {
        /// Apple's reason and the likely cause.
        reason: String,
    },
    /// Apple refused our credentials (403): fail, and tell the operator.
    Auth {
        /// Apple's reason, e.g. `ExpiredProviderToken`.
        reason: String,
        /// The provider token itself was refused: replace it.
        token_rejected: bool,
    },
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    reason: Option<String>,
    timestamp: Option<u64>,
}

/// Apple's `reason` in an error body; empty when there is none.
pub fn reason(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.reason)
        .unwrap_or_default()
}

/// Decides from the HTTP status and body of an answer received at `now`;
/// `proven`: this app profile has delivered a push since it started.
pub fn decide(status: u16, body: &[u8], now: SystemTime, proven: bool) -> Decision {
    if status == 200 {
        return Decision::Done(Outcome::Delivered);
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let reason = parsed.reason.unwrap_or_default();
    let describe = || {
        if reason.is_empty() {
            format!("APNS status {status}")
        } else {
            format!("APNS status {status}: {reason}")
        }
    };
    match status {
        410 => {
            let since = parsed
                .timestamp
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                .unwrap_or(now);
            Decision::Done(Outcome::DeadToken { since })
        }
        400 if matches!(reason.as_str(), "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            if proven {
                return Decision::Done(Outcome::DeadToken { since: now });
            }
            let hint = if reason == "BadDeviceToken" {
                "the tokens are most likely for the other APNS environment: check `sandbox` \
                 (true, the default, sends to the sandbox; App Store and TestFlight builds \
                 need sandbox = false)"
            } else {
                "check `topic`: it must be the app's bundle id"
            };
            Decision::Misconfigured {
                reason: format!("{} before any push was delivered: {hint}", describe()),
            }
        }
        403 => Decision::Auth {
            token_rejected: matches!(
                reason.as_str(),
                "ExpiredProviderToken" | "InvalidProviderToken"
            ),
            reason: describe(),
        },
        429 | 500..=599 => Decision::Retry {
            kind: FailureKind::Unavailable,
            reason: describe(),
        },
        _ => Decision::Done(Outcome::failed(FailureKind::Unavailable, describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    #[test]
    fn success_and_dead_tokens() {
        assert_eq!(
            decide(200, b"", now(), false),
            Decision::Done(Outcome::Delivered)
        );
        assert_eq!(
            decide(
                410,
                br#"{"reason":"Unregistered","timestamp":1700000000123}"#,
                now(),
                false
            ),
            Decision::Done(Outcome::DeadToken {
                since: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
            })
        );
        assert_eq!(
            decide(410, br#"{"reason":"ExpiredToken"}"#, now(), false),
            Decision::Done(Outcome::DeadToken { since: now() })
        );
        for reason in ["BadDeviceToken", "DeviceTokenNotForTopic"] {
            let body = format!(r#"{{"reason":"{reason}"}}"#);
            assert_eq!(
                decide(400, body.as_bytes(), now(), true),
                Decision::Done(Outcome::DeadToken { since: now() })
            );
        }
    }

    #[test]
    fn ambiguous_rejections_before_any_delivery_are_a_configuration_error() {
        let bad = |reason: &str| {
            let body = format!(r#"{{"reason":"{reason}"}}"#);
            match decide(400, body.as_bytes(), now(), false) {
                Decision::Misconfigured { reason } => reason,
                other => panic!("{other:?}"),
            }
        };
        let r = bad("BadDeviceToken");
        assert!(r.contains("BadDeviceToken") && r.contains("sandbox"), "{r}");
        let r = bad("DeviceTokenNotForTopic");
        assert!(
            r.contains("DeviceTokenNotForTopic") && r.contains("topic"),
            "{r}"
        );
        // 410 is unambiguous: dead even before any delivery.
        assert!(matches!(
            decide(410, br#"{"reason":"Unregistered"}"#, now(), false),
            Decision::Done(Outcome::DeadToken { .. })
        ));
    }

    #[test]
    fn temporary_failures_are_retried() {
        for (status, body) in [
            (429, r#"{"reason":"TooManyRequests"}"#),
            (500, r#"{"reason":"InternalServerError"}"#),
            (503, r#"{"reason":"ServiceUnavailable"}"#),
            (502, "<html>bad gateway</html>"),
        ] {
            match decide(status, body.as_bytes(), now(), true) {
                Decision::Retry { kind, reason } => {
                    assert_eq!(kind, FailureKind::Unavailable);
                    assert!(reason.contains(&status.to_string()), "{reason}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn auth_problems_name_the_reason() {
        assert_eq!(
            decide(403, br#"{"reason":"ExpiredProviderToken"}"#, now(), true),
            Decision::Auth {
                reason: "APNS status 403: ExpiredProviderToken".into(),
                token_rejected: true
            }
        );
        assert_eq!(
            decide(
                403,
                br#"{"reason":"BadCertificateEnvironment"}"#,
                now(),
                false
            ),
            Decision::Auth {
                reason: "APNS status 403: BadCertificateEnvironment".into(),
                token_rejected: false
            }
        );
    }

    #[test]
    fn other_client_errors_fail_with_apples_reason() {
        assert_eq!(
            decide(400, br#"{"reason":"BadTopic"}"#, now(), true),
            Decision::Done(Outcome::failed(
                FailureKind::Unavailable,
                "APNS status 400: BadTopic"
            ))
        );
        assert_eq!(
            decide(413, b"not json", now(), true),
            Decision::Done(Outcome::failed(FailureKind::Unavailable, "APNS status 413"))
        );
    }
}
