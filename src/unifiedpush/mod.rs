//! The UnifiedPush provider (the protocol of Prosody's mod_unified_push,
//! docs/protocols.md section 9): an XMPP client registers an
//! (application, instance) and gets an endpoint URL; a POST to it is
//! relayed to the client as an iq, and answered with the client's answer.
//! Nothing is stored: the endpoint's token carries the registration
//! (see [`token`]). Both front ends call this service: the component
//! dialect for the registration, the HTTP API for the relay.
//!
//! Bounded like every other input: bodies of 1 to 4,096 bytes, a rate per
//! endpoint and per registrable domain, a cap on relays waiting per JID and
//! in all, and a deadline on the client's answer.

pub mod admission;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::clock::{unix_secs, Clock};
use crate::config::{Settings, UnifiedPushSettings};
use crate::link::{Outbox, OutboxError};
use crate::metrics::{self, PushResult};
use crate::registrations::owner::{domain_of, owner_of};
use crate::registrations::{CommandRate, Registrations};
use crate::xml::Element;
use admission::{Admission, Refused};
use token::{Claims, TokenKey};

/// The protocol's namespace.
pub const NS_UP: &str = "http://gultsch.de/xmpp/drafts/unified-push";

/// The app label relays are counted under in the metrics.
pub const METRIC_APP: &str = "unifiedpush";

/// Largest body relayed (the protocol's limit).
pub const MAX_BODY: usize = 4096;

/// The path endpoints live under on the HTTP API.
pub const PATH: &str = "/up/";

/// Why a registration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The component does not offer UnifiedPush.
    NotOffered,
    /// The requester's domain is not served (`allow_from`).
    NotServed,
    /// A malformed request; which field and why.
    BadRequest(String),
    /// Over the registration rate of its JID or domain.
    RateLimited,
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::NotOffered => f.write_str("UnifiedPush is not offered here"),
            RegisterError::NotServed => f.write_str("this push service does not serve your server"),
            RegisterError::BadRequest(why) => f.write_str(why),
            RegisterError::RateLimited => f.write_str("too many registrations; try again later"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// A registration's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The endpoint URL to hand to the application's server.
    pub endpoint: String,
    /// When the endpoint stops working.
    pub expires: SystemTime,
}

/// What a POST to an endpoint is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAnswer {
    /// HTTP status.
    pub status: u16,
    /// Short text for the body.
    pub text: &'static str,
}

impl RelayAnswer {
    const fn new(status: u16, text: &'static str) -> Self {
        RelayAnswer { status, text }
    }
}

/// One component's provider.
struct Provider {
    jid: String,
    settings: UnifiedPushSettings,
    key: TokenKey,
    outbox: Arc<Outbox>,
    registrations: Mutex<CommandRate>,
    admission: Admission,
}

impl Provider {
    /// Whether the component serves users of `bare`'s domain (checked at
    /// registration and again at each relay: an operator who removes a
    /// domain from `allow_from` stops its endpoints at once).
    fn serves(&self, bare: &str) -> bool {
        self.settings.open_relay
            || self
                .settings
                .allow_from
                .iter()
                .any(|d| d == domain_of(bare))
    }
}

/// The UnifiedPush service of every component that offers it.
pub struct UnifiedPush {
    providers: Vec<Provider>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for UnifiedPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let jids: Vec<&str> = self.providers.iter().map(|p| p.jid.as_str()).collect();
        f.debug_struct("UnifiedPush")
            .field("components", &jids)
            .finish()
    }
}

/// Label of a component's token key, derived from the server key.
fn key_label(component: &str) -> String {
    format!("unifiedpush endpoint token\0{component}")
}

impl UnifiedPush {
    /// The service for the components of `settings` with
    /// `[component.unifiedpush]`, relaying through their `outboxes`.
    pub fn new(
        settings: &Settings,
        registrations: &Registrations,
        outboxes: &HashMap<String, Arc<Outbox>>,
        clock: Arc<dyn Clock>,
    ) -> UnifiedPush {
        let r = &settings.registrations;
        let providers = settings
            .components
            .iter()
            .filter_map(|c| {
                let s = c.unifiedpush.clone()?;
                let outbox = Arc::clone(outboxes.get(&c.jid)?);
                Some(Provider {
                    key: TokenKey::new(&registrations.derived_key(&key_label(&c.jid))),
                    registrations: Mutex::new(CommandRate::new(
                        r.commands_per_minute_per_jid,
                        r.commands_per_minute_per_domain,
                    )),
                    admission: Admission::new(&s),
                    jid: c.jid.clone(),
                    outbox,
                    settings: s,
                })
            })
            .collect();
        UnifiedPush { providers, clock }
    }

    fn provider(&self, component: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.jid == component)
    }

    /// Whether `component` offers UnifiedPush.
    pub fn offered(&self, component: &str) -> bool {
        self.provider(component).is_some()
    }

    /// Whether any component offers it (the HTTP API serves endpoints).
    pub fn any(&self) -> bool {
        !self.providers.is_empty()
    }

    /// Registers `application`/`instance` (each base64 of 32 bytes) for
    /// the full JID `from` at `component`: the endpoint to hand out.
    pub fn register(
        &self,
        component: &str,
        from: &str,
        application: &str,
        instance: &str,
    ) -> Result<Registered, RegisterError> {
        let p = self.provider(component).ok_or(RegisterError::NotOffered)?;
        let owner = owner_of(from).ok_or(RegisterError::NotServed)?;
        // A relay goes to a full JID: the client that registered.
        if !from.contains('/') || !owner.contains('@') {
            return Err(RegisterError::BadRequest(
                "register from the client's full JID".into(),
            ));
        }
        if !p.settings.open_relay && !p.settings.allow_from.iter().any(|d| d == domain_of(&owner)) {
            return Err(RegisterError::NotServed);
        }
        for (name, v) in [("application", application), ("instance", instance)] {
            check_sha256(v).map_err(|why| RegisterError::BadRequest(format!("{name}: {why}")))?;
        }
        if from.len() > 1023 {
            return Err(RegisterError::BadRequest("the JID is too long".into()));
        }
        let allowed = p
            .registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(&owner, self.clock.instant());
        if !allowed {
            return Err(RegisterError::RateLimited);
        }
        let expires = self.clock.now() + p.settings.registration_ttl;
        let claims = Claims {
            jid: from.to_owned(),
            application: application.to_owned(),
            instance: instance.to_owned(),
            expires: unix_secs(expires),
        };
        let nonce = ring_nonce().unwrap_or_else(|| std::array::from_fn(|_| fastrand::u8(..)));
        let token = token::seal(&p.key, &claims, nonce);
        Ok(Registered {
            endpoint: format!("{}{PATH}{token}", p.settings.endpoint_base),
            expires,
        })
    }

    /// Relays a POST of `body` to the endpoint `token`; the answer to
    /// give its sender.
    pub async fn relay(&self, token: &str, body: &[u8]) -> RelayAnswer {
        let now = unix_secs(self.clock.now());
        // Tokens of different components are sealed with different keys:
        // the one that opens it is the component it belongs to.
        let Some((p, claims)) = self
            .providers
            .iter()
            .find_map(|p| Some((p, token::open(&p.key, token, now).ok()?)))
        else {
            return RelayAnswer::new(404, "no such endpoint");
        };
        if body.is_empty() {
            return RelayAnswer::new(400, "empty message");
        }
        if body.len() > MAX_BODY {
            return RelayAnswer::new(413, "message too large (max 4096 bytes)");
        }
        let count = |r: PushResult| metrics::global().push(METRIC_APP, r);
        let bare = claims.jid.split('/').next().unwrap_or_default().to_owned();
        if !p.serves(&bare) {
            return RelayAnswer::new(404, "no such endpoint");
        }
        let endpoint = format!(
            "{}\0{}\0{}",
            claims.jid, claims.application, claims.instance
        );
        let place = match p.admission.admit(endpoint, &bare, self.clock.instant()) {
            Ok(place) => place,
            Err(why) => {
                count(PushResult::Throttled);
                return match why {
                    Refused::Rate => RelayAnswer::new(429, "too many messages; try again later"),
                    Refused::Busy => {
                        RelayAnswer::new(429, "too many messages in flight; try again later")
                    }
                };
            }
        };
        let iq = Element::new("iq", crate::xml::NS_COMPONENT)
            .attr("type", "set")
            .attr("to", &claims.jid)
            .attr("from", &p.jid)
            .child(
                Element::new("push", NS_UP)
                    .attr("application", &claims.application)
                    .attr("instance", &claims.instance)
                    .text(&crate::jwt::base64(body)),
            );
        let started = Instant::now();
        let answer = match p.outbox.request(iq, p.settings.relay_timeout).await {
            Ok(a) => {
                place.answered();
                a
            }
            Err(e) => {
                if e == OutboxError::Timeout {
                    place.timed_out(self.clock.instant());
                }
                let (result, answer) = match e {
                    OutboxError::Timeout => (
                        PushResult::TimedOut,
                        RelayAnswer::new(504, "the client did not answer in time"),
                    ),
                    OutboxError::Down | OutboxError::Full => (
                        PushResult::Failed,
                        RelayAnswer::new(503, "the push service cannot reach the client now"),
                    ),
                };
                metrics::global().sent(METRIC_APP, result, started.elapsed());
                return answer;
            }
        };
        let (result, answer) = answer_of(&answer);
        metrics::global().sent(METRIC_APP, result, started.elapsed());
        answer
    }
}

/// A fresh random nonce from the system's generator.
fn ring_nonce() -> Option<[u8; 12]> {
    let mut n = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut n).ok()?;
    Some(n)
}

/// The client's answer to a relay, as the module maps it.
fn answer_of(answer: &Element) -> (PushResult, RelayAnswer) {
    if answer.get_attr("type") == Some("result") {
        return (PushResult::Delivered, RelayAnswer::new(201, "delivered"));
    }
    // The error element is in the stream's namespace (component, client or
    // server, as the stanza was routed); its condition in the stanzas one.
    let condition = answer
        .elements()
        .find(|e| e.name == "error")
        .and_then(|e| e.elements().find(|c| &*c.ns == crate::xml::NS_STANZAS))
        .map(|c| c.name.clone())
        .unwrap_or_default();
    match condition.as_str() {
        "item-not-found" | "feature-not-implemented" => (
            PushResult::DeadToken,
            RelayAnswer::new(404, "the application is no longer registered"),
        ),
        "service-unavailable" | "recipient-unavailable" => (
            PushResult::Failed,
            RelayAnswer::new(503, "the client is not reachable now"),
        ),
        _ => (
            PushResult::Failed,
            RelayAnswer::new(500, "the client answered with an error"),
        ),
    }
}

/// Checks a base64 SHA-256 value as the module does: decodes to 32 bytes.
fn check_sha256(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("no value provided");
    }
    if v.len() > 64 {
        return Err("too long");
    }
    let bytes = crate::providers::webpush::decode_base64(v).ok_or("invalid base64")?;
    if bytes.len() != 32 {
        return Err("incorrect decoded length, expected 32");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
