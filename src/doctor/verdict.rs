//! What a provider's answer to a test push says about the configuration.
//! Pure: status and error code in, a level and a sentence out.

use super::Level;
use crate::providers::TestAnswer;

/// Apple's answer to a push for a made-up token.
pub fn apns_probe(a: &TestAnswer, topic: &str, env: &str) -> (Level, String) {
    let fail = |why: String| (Level::Fail, format!("{why} ({})", a.text));
    match (a.status, a.code.as_str()) {
        (0, _) => (
            Level::Fail,
            format!("no answer from APNS {env}: {}", a.text),
        ),
        (200, _) | (400, "BadDeviceToken") => (
            Level::Ok,
            format!(
                "APNS {env} accepts the credentials and topic {topic}; it refused only the \
                 made-up device token, as it should ({})",
                a.text
            ),
        ),
        (_, "InvalidProviderToken") => fail(
            "APNS refuses the provider token: auth_key, key_id and team_id must be one key of \
             one team in Apple's developer account"
                .into(),
        ),
        (_, "ExpiredProviderToken") => {
            fail("APNS calls the provider token expired: check this machine's clock".into())
        }
        (_, "MissingProviderToken") => fail("APNS wants token auth or a certificate".into()),
        (_, "BadCertificate") => fail("APNS refuses the client certificate".into()),
        (_, "BadCertificateEnvironment") => fail(format!(
            "the certificate is not for APNS {env}: check sandbox"
        )),
        (_, "TopicDisallowed" | "DeviceTokenNotForTopic" | "BadTopic" | "MissingTopic") => fail(
            format!("APNS refuses topic {topic}: it must be the app's bundle id, of this team"),
        ),
        _ => fail(format!("APNS {env} refused the test push")),
    }
}

/// Apple's answer to a visible push for a real token.
pub fn apns_sent(a: &TestAnswer, env: &str) -> (Level, String) {
    match (a.status, a.code.as_str()) {
        (200, _) => (
            Level::Ok,
            format!("APNS {env} accepted the test push; the device should show it"),
        ),
        (0, _) => (
            Level::Fail,
            format!("no answer from APNS {env}: {}", a.text),
        ),
        (_, "BadDeviceToken") => (
            Level::Fail,
            format!(
                "APNS {env} does not know this token: it is malformed or from the other \
                 environment (sandbox = true for development builds, false for TestFlight \
                 and the App Store) ({})",
                a.text
            ),
        ),
        (410, _) | (_, "Unregistered") => (
            Level::Fail,
            format!("the app was removed from this device ({})", a.text),
        ),
        _ => apns_probe(a, "", env),
    }
}

/// FCM's answer to a `validate_only` send to a made-up token.
pub fn fcm_probe(a: &TestAnswer, project: &str) -> (Level, String) {
    let fail = |why: String| (Level::Fail, format!("{why} ({})", a.text));
    match (a.status, a.code.as_str()) {
        (0, _) if a.text.contains("OAuth") => fail(format!(
            "Google does not give the service account an access token: check the service \
             account file of project {project}"
        )),
        (0, _) => (Level::Fail, format!("no answer from FCM: {}", a.text)),
        (200..=299, _) | (400, "INVALID_ARGUMENT") | (404, "UNREGISTERED") => (
            Level::Ok,
            format!(
                "FCM accepts the service account for project {project}; it refused only the \
                 made-up device token, as it should ({})",
                a.text
            ),
        ),
        (_, "SENDER_ID_MISMATCH") => fail(format!("FCM says the sender is not project {project}")),
        (401, _) | (_, "UNAUTHENTICATED" | "THIRD_PARTY_AUTH_ERROR") => {
            fail("FCM refuses the access token of the service account".into())
        }
        (403, _) | (_, "PERMISSION_DENIED") => fail(format!(
            "the service account may not send for project {project}: give it the Firebase \
             Cloud Messaging API Admin role, or check project_id"
        )),
        (404, _) | (_, "NOT_FOUND") => fail(format!(
            "FCM knows no project {project}, or its Cloud Messaging API is not enabled"
        )),
        _ => fail("FCM refused the test send".into()),
    }
}

/// FCM's answer to a visible push for a real token.
pub fn fcm_sent(a: &TestAnswer) -> (Level, String) {
    match (a.status, a.code.as_str()) {
        (200..=299, _) => (
            Level::Ok,
            "FCM accepted the test push; the device should show it".to_owned(),
        ),
        (_, "UNREGISTERED") => (
            Level::Fail,
            format!(
                "the token is no longer registered: the app was removed or its data cleared ({})",
                a.text
            ),
        ),
        (_, "INVALID_ARGUMENT") => (
            Level::Fail,
            format!("FCM calls the token invalid ({})", a.text),
        ),
        _ => fcm_probe(a, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: &str) -> TestAnswer {
        TestAnswer {
            status,
            code: code.to_owned(),
            text: format!("{status} {code}"),
        }
    }

    #[test]
    fn a_refused_made_up_token_proves_the_credentials() {
        assert_eq!(
            apns_probe(&answer(400, "BadDeviceToken"), "t", "sandbox").0,
            Level::Ok
        );
        assert_eq!(
            fcm_probe(&answer(400, "INVALID_ARGUMENT"), "p").0,
            Level::Ok
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let (l, d) = apns_probe(&answer(403, "InvalidProviderToken"), "t", "sandbox");
        assert_eq!(l, Level::Fail);
        assert!(d.contains("key_id and team_id"), "{d}");
        let (_, d) = apns_probe(&answer(400, "TopicDisallowed"), "org.x", "sandbox");
        assert!(d.contains("topic org.x"), "{d}");
        let (_, d) = apns_probe(&answer(403, "BadCertificateEnvironment"), "t", "production");
        assert!(d.contains("production") && d.contains("sandbox"), "{d}");
        let (_, d) = fcm_probe(&answer(403, "PERMISSION_DENIED"), "proj");
        assert!(d.contains("proj") && d.contains("role"), "{d}");
        let (_, d) = fcm_probe(&answer(0, ""), "proj");
        assert!(d.contains("no answer"), "{d}");
        let mut oauth = answer(0, "");
        oauth.text = "no OAuth access token: invalid_grant".into();
        assert!(fcm_probe(&oauth, "proj").1.contains("service account file"));
    }

    #[test]
    fn a_sent_push_fails_on_what_a_probe_would_pass() {
        assert_eq!(
            apns_sent(&answer(400, "BadDeviceToken"), "sandbox").0,
            Level::Fail
        );
        assert_eq!(apns_sent(&answer(200, ""), "sandbox").0, Level::Ok);
        assert_eq!(fcm_sent(&answer(400, "INVALID_ARGUMENT")).0, Level::Fail);
        assert_eq!(fcm_sent(&answer(200, "")).0, Level::Ok);
    }
}
