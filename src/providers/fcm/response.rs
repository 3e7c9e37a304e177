//! What an FCM HTTP v1 answer means for the push. Pure: status, the
//! `Retry-After` header and the body in; a [`Verdict`] out.
//!
//! Errors carry `error.details[].errorCode` (an `FcmError`); the HTTP
//! status decides only when no code is given. A token is declared dead only
//! on an explicit `UNREGISTERED`, or on `SENDER_ID_MISMATCH` once the app
//! profile has delivered a push since it started: a wrong `project_id` (or
//! service account) makes FCM answer `SENDER_ID_MISMATCH` for every token,
//! and a bare 404 can mean the same, and unregistering every device over a
//! typo would be far worse than a failed push.

use std::time::Duration;

use serde::Deserialize;

/// Google asks for at least this much backoff after `QUOTA_EXCEEDED`.
pub const QUOTA_BACKOFF: Duration = Duration::from_secs(60);

/// What to do with a push after one FCM answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Delivered,
    /// The token is dead: unregister the device.
    DeadToken(String),
    /// Temporary: try again after at least `retry_after`, if the budget allows.
    Retry {
        /// Wait asked for by FCM (`Retry-After`, or the quota backoff).
        retry_after: Option<Duration>,
        /// For logs and the failure reply.
        reason: String,
    },
    /// Our credentials were refused. `drop_token`: the access token itself
    /// was rejected and must be refreshed before the next push.
    Auth {
        /// For logs and the failure reply.
        reason: String,
        /// Forget the cached access token.
        drop_token: bool,
    },
    /// Before any push was delivered: an answer that points at the
    /// configuration (the project) rather than at the token. Fail without
    /// deleting anything, and tell the operator.
    Misconfigured(String),
    /// FCM refused this message; retrying would not help.
    Refused(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInfo,
}

#[derive(Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

/// FCM's error code (`errorCode`, else `status`) and the answer in words.
pub fn code_and_text(status: u16, body: &[u8]) -> (String, String) {
    let info = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = info
        .as_ref()
        .and_then(|i| i.details.iter().find_map(|d| d.error_code.clone()))
        .or_else(|| info.as_ref().map(|i| i.status.clone()))
        .unwrap_or_default();
    let text = describe(
        status,
        Some(code.as_str()).filter(|c| !c.is_empty()),
        info.as_ref(),
    );
    (code, text)
}

/// Classifies one answer; `proven`: this app profile has delivered a push
/// since it started.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8], proven: bool) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    let info = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = info
        .as_ref()
        .and_then(|i| i.details.iter().find_map(|d| d.error_code.clone()));
    let reason = describe(status, code.as_deref(), info.as_ref());
    let retry_after = retry_after.and_then(parse_retry_after);
    match (code.as_deref(), status) {
        (Some("UNREGISTERED"), _) => Verdict::DeadToken(reason),
        (Some("SENDER_ID_MISMATCH"), _) if proven => Verdict::DeadToken(reason),
        (Some("SENDER_ID_MISMATCH"), _) => Verdict::Misconfigured(format!(
            "{reason} before any push was delivered: the tokens belong to another Firebase \
             project; check project_id and the service account"
        )),
        (Some("QUOTA_EXCEEDED"), _) | (None, 429) => Verdict::Retry {
            retry_after: Some(retry_after.unwrap_or(QUOTA_BACKOFF)),
            reason,
        },
        (Some("UNAVAILABLE" | "INTERNAL"), _) | (None, 500..=599) => {
            Verdict::Retry {
                retry_after,
                reason,
            }
        }
        (Some("THIRD_PARTY_AUTH_ERROR"), _) => Verdict::Auth {
            reason,
            drop_token: false,
        },
        (_, 401) => Verdict::Auth {
            reason,
            drop_token: true,
        },
        (None, 403) => Verdict::Auth {
            reason: format!("{reason} (does the service account have the Firebase Cloud Messaging API Admin role, and is the API enabled?)"),
            drop_token: false,
        },
        (None, 404) => Verdict::Refused(format!("{reason} (check project_id)")),
        (None, 408) => Verdict::Retry {
            retry_after,
            reason,
        },
        _ => Verdict::Refused(reason),
    }
}

/// `FCM 404 UNREGISTERED: Requested entity was not found.`
fn describe(status: u16, code: Option<&str>, info: Option<&ErrorInfo>) -> String {
    let mut s = format!("FCM {status}");
    match (code, info) {
        (Some(code), _) => s = format!("{s} {code}"),
        (None, Some(i)) if !i.status.is_empty() => s = format!("{s} {}", i.status),
        _ => {}
    }
    if let Some(i) = info.filter(|i| !i.message.is_empty()) {
        s.push_str(": ");
        s.extend(i.message.chars().take(200));
    }
    s
}

/// A `Retry-After` in seconds. (The HTTP-date form is not used by FCM and
/// is ignored: the backoff applies instead.)
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: u16, status: &str, fcm: Option<&str>) -> Vec<u8> {
        let details = match fcm {
            Some(c) => serde_json::json!([{
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": c,
            }]),
            None => serde_json::json!([]),
        };
        serde_json::json!({"error": {"code": code, "message": "m", "status": status, "details": details}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn success() {
        let body = br#"{"name":"projects/p/messages/0:1"}"#;
        assert_eq!(classify(200, None, body, true), Verdict::Delivered);
    }

    #[test]
    fn dead_tokens_need_an_explicit_code() {
        let v = classify(
            404,
            None,
            &error(404, "NOT_FOUND", Some("UNREGISTERED")),
            true,
        );
        assert_eq!(v, Verdict::DeadToken("FCM 404 UNREGISTERED: m".into()));
        let mismatch = error(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH"));
        let v = classify(403, None, &mismatch, true);
        assert!(matches!(v, Verdict::DeadToken(_)));
        // Before any delivery: the project is the likely culprit.
        let v = classify(403, None, &mismatch, false);
        assert!(
            matches!(&v, Verdict::Misconfigured(r) if r.contains("project_id")),
            "{v:?}"
        );
        let unregistered = error(404, "NOT_FOUND", Some("UNREGISTERED"));
        assert!(matches!(
            classify(404, None, &unregistered, false),
            Verdict::DeadToken(_)
        ));
        let v = classify(404, None, &error(404, "NOT_FOUND", None), true);
        assert!(matches!(v, Verdict::Refused(r) if r.contains("project_id")));
        assert!(matches!(
            classify(404, None, b"<html>", true),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn temporary_errors_retry_and_honour_retry_after() {
        let v = classify(
            503,
            Some("7"),
            &error(503, "UNAVAILABLE", Some("UNAVAILABLE")),
            true,
        );
        assert_eq!(
            v,
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(7)),
                reason: "FCM 503 UNAVAILABLE: m".into()
            }
        );
        let v = classify(500, None, &error(500, "INTERNAL", Some("INTERNAL")), true);
        assert!(matches!(
            v,
            Verdict::Retry {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            classify(502, None, b"", true),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn quota_backs_off_a_minute_unless_told_otherwise() {
        let body = error(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
        let after = |v| match v {
            Verdict::Retry { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(after(classify(429, None, &body, true)), Some(QUOTA_BACKOFF));
        assert_eq!(
            after(classify(429, Some("2"), &body, true)),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn auth_errors_drop_the_token_only_when_it_was_ours() {
        let v = classify(401, None, &error(401, "UNAUTHENTICATED", None), true);
        assert!(matches!(
            v,
            Verdict::Auth {
                drop_token: true,
                ..
            }
        ));
        let v = classify(
            401,
            None,
            &error(401, "UNAUTHENTICATED", Some("THIRD_PARTY_AUTH_ERROR")),
            true,
        );
        assert!(matches!(
            v,
            Verdict::Auth {
                drop_token: false,
                ..
            }
        ));
        let v = classify(403, None, &error(403, "PERMISSION_DENIED", None), true);
        assert!(matches!(
            v,
            Verdict::Auth {
                drop_token: false,
                ..
            }
        ));
    }

    #[test]
    fn invalid_argument_is_refused_with_its_message() {
        let v = classify(
            400,
            None,
            &error(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT")),
            true,
        );
        assert_eq!(v, Verdict::Refused("FCM 400 INVALID_ARGUMENT: m".into()));
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
