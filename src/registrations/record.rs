//! The stored registration record and the store's key layout.

use serde::{Deserialize, Serialize};

/// Version of the record format and key layout; written to the store's
/// `meta` keyspace so later releases can migrate. Version 2 added
/// `owner` and the `counters` keyspace, version 3 the optional
/// `secret_hash` of imported registrations (see `migrate.rs`): a release
/// that knows only version 2 would ignore that field and answer every
/// push to an imported device `auth/forbidden`, so it must refuse the
/// store instead. Version 4 keys the per-domain counts on the registrable
/// domain.
pub const SCHEMA_VERSION: u32 = 4;

/// One registered device, as stored (JSON). The secret itself is never
/// stored: it is derived from `salt` under the server key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Record format version.
    pub v: u32,
    /// Component JID the device registered with.
    pub component: String,
    /// Push type (app profile), e.g. `apns`.
    #[serde(rename = "type")]
    pub push_type: String,
    /// XEP-0357 node: derived from (component, owner, device id) for
    /// registrations made over XMPP, the client's own value over HTTP and
    /// for registrations made before version 2.
    pub node: String,
    /// Provider token of the device.
    pub token: String,
    /// First registration, ms since the epoch.
    pub registered_ms: u64,
    /// Latest (re-)registration, ms since the epoch.
    pub renewed_ms: u64,
    /// Random per-registration salt (hex) the secret is derived from.
    pub salt: String,
    /// Bare JID (lowercase) that registered over XMPP; only it may change
    /// or remove the registration, and only its domain may push to it.
    /// `None` for HTTP registrations and those made before version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the registration's dialect needs at push time (see
    /// [`DialectRecord`]); `None` for v1 and HTTP registrations. Older
    /// releases' records lack it; it needs no schema bump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<DialectRecord>,
    /// For a registration imported from mod_push_appserver: keyed hash of
    /// the secret the device already holds (see
    /// `ServerKey::imported_hash`), checked instead of the derived secret.
    /// The plain secret is never stored. Dropped (with a fresh salt) when
    /// the device registers again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

/// What a registration of a dialect keeps for push time, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "dialect", rename_all = "lowercase")]
pub enum DialectRecord {
    /// Conversations / p2.
    Conversations {
        /// `data.account` of the FCM message (see `dialects::conversations::account`).
        account: String,
        /// The channel of a `muc` registration: its service publishes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muc: Option<String>,
        /// `data.channel` of a `muc` registration: the channel's hash (as
        /// `account`, over the channel's JID), which tells the app which
        /// channel to wake while `account` names the account. Records of
        /// earlier releases lack it and carried the channel's hash in
        /// `account`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Siskin / Snikket iOS: the node is the credential, no secret.
    Siskin {
        /// The registering bare JID, `account` in the payload.
        account: String,
        /// The PushKit token (`device-second-token`) for VoIP pushes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voip_token: Option<String>,
    },
}

impl DialectRecord {
    /// Whether publishes to this registration carry no secret: the
    /// unguessable node alone authorises them.
    pub fn secretless(&self) -> bool {
        matches!(self, DialectRecord::Siskin { .. })
    }

    /// Who publishes besides the owner's server: a channel's service.
    pub fn publisher(&self) -> Option<&str> {
        match self {
            DialectRecord::Conversations { muc, .. } => muc.as_deref(),
            DialectRecord::Siskin { .. } => None,
        }
    }
}

/// Outcome of the latest pushes to a device, kept apart from the record so
/// pushes never rewrite (or race with) registrations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStats {
    /// Latest delivered push, ms since the epoch.
    pub last_successful_push_ms: Option<u64>,
    /// Latest failed push, ms since the epoch.
    pub last_push_error_ms: Option<u64>,
    /// Why the latest push failed.
    pub last_push_error_reason: Option<String>,
}

/// Key of a registration: `component \0 node`.
pub fn reg_key(component: &str, node: &str) -> Vec<u8> {
    join(&[component, node])
}

/// Key in the token index: `type \0 token \0 component \0 node`.
pub fn token_key(push_type: &str, token: &str, component: &str, node: &str) -> Vec<u8> {
    join(&[push_type, token, component, node])
}

/// Prefix of every index entry for one (type, token).
pub fn token_prefix(push_type: &str, token: &str) -> Vec<u8> {
    let mut k = join(&[push_type, token]);
    k.push(0);
    k
}

/// Prefix of every registration of one component.
pub fn component_prefix(component: &str) -> Vec<u8> {
    let mut k = component.as_bytes().to_vec();
    k.push(0);
    k
}

/// Key of a push-stats entry.
pub fn stats_key(component: &str, node: &str) -> Vec<u8> {
    reg_key(component, node)
}

/// Splits `component \0 node` (or longer) keys back into parts.
pub fn split_key(key: &[u8]) -> Vec<String> {
    key.split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

fn join(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_records_have_none() {
        let r = DialectRecord::Siskin {
            account: "a@b".into(),
            voip_token: None,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"dialect":"siskin","account":"a@b"}"#);
        assert_eq!(serde_json::from_str::<DialectRecord>(&j).unwrap(), r);
        assert!(r.secretless());
        let c = DialectRecord::Conversations {
            account: "ab".into(),
            muc: None,
            channel: None,
        };
        assert!(!c.secretless());
        assert_eq!(c.publisher(), None);
        // Records written without `muc` read back.
        let old: DialectRecord =
            serde_json::from_str(r#"{"dialect":"conversations","account":"ab"}"#).unwrap();
        assert_eq!(old, c);
        let channel = DialectRecord::Conversations {
            account: "ab".into(),
            muc: Some("room@conference.example.org".into()),
            channel: Some("cd".into()),
        };
        assert_eq!(channel.publisher(), Some("room@conference.example.org"));
    }

    #[test]
    fn token_prefix_does_not_match_longer_tokens() {
        let k = token_key("apns", "abc", "push.example", "n1");
        assert!(k.starts_with(&token_prefix("apns", "abc")));
        assert!(!k.starts_with(&token_prefix("apns", "ab")));
        assert_eq!(split_key(&k), ["apns", "abc", "push.example", "n1"]);
    }
}
