//! The data that crosses from the push service to a provider and back.

use std::time::SystemTime;

/// What the XMPP server told us about the pending messages (XEP-0357
/// `urn:xmpp:push:summary`). Every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `message-count`.
    pub message_count: Option<u64>,
    /// `last-message-sender`.
    pub last_message_sender: Option<String>,
    /// `last-message-body`.
    pub last_message_body: Option<String>,
    /// `pending-subscription-count`.
    pub pending_subscription_count: Option<u64>,
}

/// An end-to-end encrypted push (`tigase:push:encrypt:0`) that the app
/// decrypts itself; forwarded as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// Base64 initialisation vector.
    pub iv: String,
    /// Base64 ciphertext.
    pub payload: String,
    /// The optional `type` attribute (e.g. `voip`).
    pub kind: Option<String>,
}

/// The priority decided for one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Visible and immediate.
    High,
    /// Background wake-up, may be delayed.
    Silent,
    /// Apple VoIP push.
    Voip,
}

impl Priority {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Silent => "silent",
            Priority::Voip => "voip",
        }
    }
}

/// How an app profile chooses the priority (`push_priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityPolicy {
    /// High when the summary carries a message body, else silent.
    Auto,
    /// Always high.
    High,
    /// Always silent.
    Silent,
    /// Always VoIP (APNS only).
    Voip,
}

impl PriorityPolicy {
    /// Parses a `push_priority` value, allowing only `allowed` names.
    pub fn parse(s: &str, allowed: &[&str]) -> Option<Self> {
        if !allowed.contains(&s) {
            return None;
        }
        match s {
            "auto" => Some(PriorityPolicy::Auto),
            "high" => Some(PriorityPolicy::High),
            "silent" => Some(PriorityPolicy::Silent),
            "voip" => Some(PriorityPolicy::Voip),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PriorityPolicy::Auto => "auto",
            PriorityPolicy::High => "high",
            PriorityPolicy::Silent => "silent",
            PriorityPolicy::Voip => "voip",
        }
    }

    /// The priority for a push with this summary: under `auto`, high when
    /// the XMPP server sent a message body (Prosody also sends a dummy body
    /// for "important" stanzas), or when Tigase asked for high priority.
    pub fn decide(self, summary: &Summary, hinted_high: bool) -> Priority {
        match self {
            PriorityPolicy::High => Priority::High,
            PriorityPolicy::Silent => Priority::Silent,
            PriorityPolicy::Voip => Priority::Voip,
            PriorityPolicy::Auto => {
                if summary.last_message_body.is_some() || hinted_high {
                    Priority::High
                } else {
                    Priority::Silent
                }
            }
        }
    }
}

/// One push, ready for a provider.
#[derive(Debug, Clone)]
pub struct Push {
    /// JID of the component that received it.
    pub component: String,
    /// Push type (names the app profile), e.g. `apns`.
    pub push_type: String,
    /// XEP-0357 node (device id).
    pub node: String,
    /// Provider token of the device.
    pub token: String,
    /// Decided priority.
    pub priority: Priority,
    /// Summary from the XMPP server.
    pub summary: Summary,
    /// Encrypted content to forward, if any.
    pub encrypted: Option<Encrypted>,
    /// The shape of the payload: the provider's own, or the one a client
    /// family expects.
    pub flavour: Flavour,
}

/// The payload shapes a push can take. Each is built by the provider that
/// sends it; no provider knows which client family asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavour {
    /// The provider's own payload (mod_push_appserver's).
    Standard,
    /// p2's (Conversations): the provider's own payload plus `account`,
    /// which tells the app which of its accounts to wake.
    P2 {
        /// Lowercase hex SHA-1 of `bareJid \0 androidId`.
        account: String,
        /// For a channel's registration, the channel's hash (the same over
        /// `channelJid \0 androidId`), sent beside `account` as p2 does.
        channel: Option<String>,
    },
    /// Siskin's custom top-level keys beside `aps` (APNS only).
    Siskin(super::apns::siskin::SiskinPush),
    /// A complete APNS payload (Monal's alert, Push 2.0's), sent as is
    /// with the app profile's topic and expiry (APNS only).
    Apns(super::apns::payload::CustomApns),
    /// A Web Push request to the endpoint the device chose (Push 2.0's
    /// endpoint form; Web Push only).
    WebPush(super::webpush::WebPushRequest),
}

impl Flavour {
    /// Whether a push of `priority` goes to a token other than the one
    /// the registration is stored under (Siskin's calls: the PushKit
    /// token), so a dead-token answer says nothing about the stored one.
    pub fn uses_second_token(&self, priority: Priority) -> bool {
        matches!(self, Flavour::Siskin(s) if s.uses_second_token(priority))
    }
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Delivered,
    /// The provider says the token is dead since `since`: unregister unless
    /// the device registered again after that.
    DeadToken {
        /// When the provider learnt the token was dead.
        since: SystemTime,
    },
    /// Not delivered; the XMPP server may try again later.
    Failed(Failure),
}

/// Why a push was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Kind, which decides the error reply.
    pub kind: FailureKind,
    /// For logs and the registration's `last_push_error`.
    pub reason: String,
}

/// Failure kinds, each with its own XMPP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The provider did not answer in time (`wait/remote-server-timeout`).
    Timeout,
    /// Temporary trouble or a refused request (`wait/internal-server-error`).
    Unavailable,
    /// This server will not send to the target (a Web Push endpoint the
    /// guard refuses, or a payload this provider cannot carry):
    /// `cancel/not-allowed`.
    Refused,
    /// The payload cannot be sent as it is (empty or too large):
    /// `modify/not-acceptable`.
    Unacceptable,
}

impl Outcome {
    /// A failure of `kind`.
    pub fn failed(kind: FailureKind, reason: impl Into<String>) -> Outcome {
        Outcome::Failed(Failure {
            kind,
            reason: reason.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_high_only_with_a_body_or_a_high_hint() {
        let mut s = Summary::default();
        assert_eq!(PriorityPolicy::Auto.decide(&s, false), Priority::Silent);
        assert_eq!(PriorityPolicy::Auto.decide(&s, true), Priority::High);
        s.last_message_body = Some("hi".into());
        assert_eq!(PriorityPolicy::Auto.decide(&s, false), Priority::High);
        assert_eq!(PriorityPolicy::Silent.decide(&s, true), Priority::Silent);
        assert_eq!(PriorityPolicy::Voip.decide(&s, false), Priority::Voip);
    }

    #[test]
    fn parse_honours_the_allowed_list() {
        assert_eq!(PriorityPolicy::parse("voip", &["auto", "high"]), None);
        assert_eq!(
            PriorityPolicy::parse("voip", &["voip"]),
            Some(PriorityPolicy::Voip)
        );
    }
}

/// What a provider answered to a test push (`push-appserver doctor`):
/// sent once, without retries, so the answer is the provider's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestAnswer {
    /// HTTP status; 0 when no answer came (connection, TLS, credentials
    /// that could not be used).
    pub status: u16,
    /// The provider's error code (`BadDeviceToken`, `INVALID_ARGUMENT`,
    /// ...); empty on success or without one.
    pub code: String,
    /// The whole answer in words, for the operator.
    pub text: String,
}

/// The text of a visible test push.
pub const TEST_PUSH_TITLE: &str = "push-appserver";
/// The body of a visible test push.
pub const TEST_PUSH_BODY: &str = "Test push from push-appserver doctor";
