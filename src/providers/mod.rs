//! Push providers behind one interface. A provider takes a [`Push`] and
//! answers an [`Outcome`]; retries, connection pools and auth tokens live
//! inside the provider, and so does every payload [`Flavour`] it can send.
//! No provider knows the client families above it. Adding one is a module
//! plus a [`ProviderSettings`] variant.

pub mod apns;
pub mod config_problem;
pub mod fcm;
pub mod log;
mod push;
pub mod webpush;

pub use push::{
    Encrypted, Failure, FailureKind, Flavour, Outcome, Priority, PriorityPolicy, Push, Summary,
    TestAnswer, TEST_PUSH_BODY, TEST_PUSH_TITLE,
};

use crate::settings::{ConfigContext, ConfigError};

/// Validated settings of one app profile (`[app.<type>]`).
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    /// Records pushes instead of sending them.
    Log(log::LogSettings),
    /// Apple Push Notification service.
    Apns(apns::ApnsSettings),
    /// Firebase Cloud Messaging (HTTP v1).
    Fcm(fcm::FcmSettings),
}

impl ProviderSettings {
    /// Builds settings from an `[app.<type>]` table; `provider` picks the variant.
    pub fn from_table(
        type_name: &str,
        mut table: toml::Table,
        ctx: &ConfigContext,
    ) -> Result<Self, ConfigError> {
        let key = format!("app.{type_name}");
        let provider = match table.remove("provider") {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(ctx.error(format!("{key}.provider"), "must be a string")),
            None => {
                // A misspelt `provider` is the likelier mistake: name it.
                if let Some(typo) = table
                    .keys()
                    .find(|k| crate::settings::suggest::nearest(k, ["provider"]).is_some())
                {
                    return Err(ctx.error(
                        format!("{key}.{typo}"),
                        "unknown key (did you mean `provider`?)",
                    ));
                }
                return Err(ctx.error(
                    format!("{key}.provider"),
                    "missing (one of \"log\", \"apns\", \"fcm\")",
                ));
            }
        };
        match provider.as_str() {
            "log" => Ok(ProviderSettings::Log(log::LogSettings::from_table(
                &key, table, ctx,
            )?)),
            "apns" => Ok(ProviderSettings::Apns(apns::ApnsSettings::from_table(
                &key, table, ctx,
            )?)),
            "fcm" => Ok(ProviderSettings::Fcm(fcm::FcmSettings::from_table(
                &key, table, ctx,
            )?)),
            other => Err(ctx.error(
                format!("{key}.provider"),
                format!("unknown provider {other:?} (one of \"log\", \"apns\", \"fcm\")"),
            )),
        }
    }

    /// The format of this provider's device tokens.
    pub fn token_format(&self) -> TokenFormat {
        match self {
            ProviderSettings::Log(_) => TokenFormat::Any,
            ProviderSettings::Apns(_) => TokenFormat::ApnsHex,
            ProviderSettings::Fcm(_) => TokenFormat::Fcm,
        }
    }

    /// How the priority of each push is chosen.
    pub fn priority_policy(&self) -> PriorityPolicy {
        match self {
            ProviderSettings::Log(s) => s.push_priority,
            ProviderSettings::Apns(s) => s.push_priority,
            ProviderSettings::Fcm(s) => s.push_priority,
        }
    }

    /// Effective options as `(key, TOML value)` pairs, secrets masked.
    pub fn describe(&self) -> Vec<(String, String)> {
        match self {
            ProviderSettings::Log(s) => s.describe(),
            ProviderSettings::Apns(s) => s.describe(),
            ProviderSettings::Fcm(s) => s.describe(),
        }
    }
}

/// What a device token of a provider looks like: checked when a device
/// registers, so a registration costs what a real one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// An APNS device token: hex, 64 to 200 digits (32 bytes today; Apple
    /// says they may grow).
    ApnsHex,
    /// An FCM registration token: printable ASCII, at most 512 bytes
    /// (they are about 160 today).
    Fcm,
    /// Anything the generic field rules allow (the log provider).
    Any,
}

impl TokenFormat {
    /// Whether `token` has this format.
    pub fn accepts(self, token: &str) -> bool {
        match self {
            TokenFormat::ApnsHex => {
                (64..=200).contains(&token.len())
                    && token.len() % 2 == 0
                    && token.bytes().all(|b| b.is_ascii_hexdigit())
            }
            TokenFormat::Fcm => token.len() <= 512 && token.bytes().all(|b| b.is_ascii_graphic()),
            TokenFormat::Any => true,
        }
    }
}

/// A running provider.
// One per app profile, made once at start: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Provider {
    /// See [`log::LogProvider`].
    Log(log::LogProvider),
    /// See [`apns::ApnsProvider`].
    Apns(apns::ApnsProvider),
    /// See [`fcm::FcmProvider`].
    Fcm(fcm::FcmProvider),
    /// See [`webpush::WebPushSender`]: the endpoint is the push's own, so
    /// it is started per component (Push 2.0), not per app profile.
    WebPush(webpush::WebPushSender),
}

/// A provider that could not be started.
#[derive(Debug)]
pub enum StartError {
    /// A file the provider needs could not be opened.
    Io {
        /// Which file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The APNS credentials or TLS settings are unusable.
    Apns(apns::ApnsStartError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StartError::Apns(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartError {}

impl Provider {
    /// Starts the provider described by `settings`.
    pub fn start(settings: &ProviderSettings) -> Result<Provider, StartError> {
        match settings {
            ProviderSettings::Log(s) => Ok(Provider::Log(log::LogProvider::new(s)?)),
            ProviderSettings::Apns(s) => Ok(Provider::Apns(apns::ApnsProvider::new(s)?)),
            ProviderSettings::Fcm(s) => Ok(Provider::Fcm(fcm::FcmProvider::new(s)?)),
        }
    }

    /// Sends one push. A flavour the provider cannot carry fails with
    /// `Unavailable`: config validation keeps such pairs apart, so this
    /// answers only a mistake, never a device's fault.
    pub async fn send(&self, push: &Push) -> Outcome {
        match (self, &push.flavour) {
            (Provider::Log(p), _) => p.send(push).await,
            (Provider::WebPush(p), Flavour::WebPush(req)) => p.deliver(req).await,
            (Provider::WebPush(_), _) => Outcome::failed(
                FailureKind::Unavailable,
                "Web Push sends only Web Push requests",
            ),
            (Provider::Apns(_) | Provider::Fcm(_), Flavour::WebPush(_)) => Outcome::failed(
                FailureKind::Unavailable,
                "an apns or fcm app profile cannot send a Web Push request",
            ),
            (Provider::Apns(p), _) => p.send(push).await,
            (Provider::Fcm(_), Flavour::Apns(_) | Flavour::Siskin(_)) => Outcome::failed(
                FailureKind::Unavailable,
                "an fcm app profile cannot send an APNS payload",
            ),
            (Provider::Fcm(p), _) => p.send(push).await,
        }
    }

    /// The APNS topic and sandbox flag of an `apns` profile.
    pub fn apns_topic(&self) -> Option<(&str, bool)> {
        match self {
            Provider::Apns(p) => Some(p.topic()),
            _ => None,
        }
    }

    /// Provider name, as in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Provider::Log(_) => "log",
            Provider::Apns(_) => "apns",
            Provider::Fcm(_) => "fcm",
            Provider::WebPush(_) => "webpush",
        }
    }

    /// When the credentials expire: an APNS client certificate's notAfter.
    /// `None` for everything without an expiry date (`.p8` keys, FCM
    /// service accounts, the log provider).
    pub fn certificate_expiry(&self) -> Option<std::time::SystemTime> {
        match self {
            Provider::Apns(p) => p.certificate_expiry(),
            Provider::Log(_) | Provider::Fcm(_) | Provider::WebPush(_) => None,
        }
    }

    /// One line of state for the health page.
    pub fn health(&self) -> String {
        match self {
            Provider::Log(p) => p.health(),
            Provider::Apns(p) => p.health(),
            Provider::Fcm(p) => p.health(),
            Provider::WebPush(_) => "Web Push sender".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenFormat;

    #[test]
    fn tokens_have_their_providers_format() {
        let apns = "ab".repeat(32);
        assert!(TokenFormat::ApnsHex.accepts(&apns));
        assert!(TokenFormat::ApnsHex.accepts(&"AB".repeat(100)));
        for bad in [
            "ab".repeat(31),
            "ab".repeat(101),
            format!("{apns}a"),
            "zz".repeat(32),
        ] {
            assert!(!TokenFormat::ApnsHex.accepts(&bad), "{bad}");
        }
        assert!(TokenFormat::Fcm.accepts("dGVzdA:APA91b-xyz_1"));
        assert!(!TokenFormat::Fcm.accepts(&"a".repeat(513)));
        assert!(!TokenFormat::Fcm.accepts("with space"));
        assert!(TokenFormat::Any.accepts(&"x y".repeat(1000)));
    }
}
