//! Push 2.0 (`urn:xmpp:push2:0`, Prosody's mod_push2): the XMPP server
//! sends a `<message>` whose `<notification>` names the device's
//! `<client>` and carries a payload it already encrypted (RFC 8291) and a
//! VAPID JWT it already signed. Nothing is stored: the push is routed by
//! `<client>`, either the APNS URL form
//! `https://api[.development].push.apple.com/3/device/<token>#<topic>&<voipToken>`
//! (sent through the configured `apns` profile with that topic and
//! environment, never any other) or a Web Push / UnifiedPush endpoint
//! (POSTed behind the SSRF guard). Failures answer `<message type='error'>`.
//!
//! ```toml
//! [component.push2]
//! apns = ["snikket"]        # apns profiles APNS-form clients may use
//! webpush = true            # Web Push / UnifiedPush endpoints
//! allow_from = []           # sender domains served (default: any)
//! ```

mod parse;

pub use parse::{notification_of, parse, target, Notification, Target, Urgency, NS_PUSH2};

use std::sync::Arc;

use super::server_allowed;
use crate::config::Push2Settings;
use crate::providers::apns::payload::{push2_alert, CustomApns};
use crate::providers::webpush::{
    decode_base64, vapid_authorization, Endpoint, WebPushRequest, WebPushSender,
};
use crate::providers::{Flavour, Priority, PriorityPolicy, Provider, Push, Summary};
use crate::pushes::{App, PushError, PushService};
use crate::stanza::{ErrorType, StanzaError};
use crate::xml::{Element, NS_COMPONENT};

/// The metrics label of Push 2.0's Web Push deliveries (they have no app
/// profile of their own).
pub const WEBPUSH_APP: &str = "webpush";

/// The Push 2.0 service of one component.
#[derive(Debug)]
pub struct Push2Service {
    settings: Push2Settings,
    /// The Web Push sender as an app of the push pipeline.
    webpush: Result<Arc<App>, String>,
}

impl Push2Service {
    /// Prepares the Web Push sender (a TLS setup that fails is logged and
    /// answered `wait` per push rather than stopping the component).
    pub fn new(settings: Push2Settings) -> Self {
        let webpush = match &settings.webpush {
            None => Err("Web Push endpoints are not enabled here".to_owned()),
            Some(w) => WebPushSender::new(w.clone())
                .map(|sender| {
                    Arc::new(App {
                        provider: Provider::WebPush(sender),
                        policy: PriorityPolicy::High,
                    })
                })
                .map_err(|e| {
                    log::error!("Push 2.0: the Web Push sender cannot start: {e}");
                    e.to_string()
                }),
        };
        Push2Service { settings, webpush }
    }

    /// Delivers one notification through the push pipeline; `Err` is the
    /// error to answer.
    pub async fn push(
        &self,
        pushes: &Arc<PushService>,
        component: &str,
        from: &str,
        id: &str,
        n: Notification,
    ) -> Result<(), StanzaError> {
        server_allowed(&self.settings.allow_from, from)?;
        let target = target(&n.client).map_err(|why| {
            StanzaError::new(
                ErrorType::Cancel,
                "item-not-found",
                format!("<client>: {why}"),
            )
        })?;
        let (app, push) = match target {
            Target::Apns {
                sandbox,
                token,
                topic,
                voip_token,
            } => self.apns(
                pushes, component, id, &n, sandbox, token, &topic, voip_token,
            )?,
            Target::WebPush(endpoint) => self.web(component, &n, endpoint)?,
        };
        pushes
            .deliver(app, push, crate::pushes::Target::Stateless, Some(from))
            .await
            .map_err(|e| PushError::to_stanza_error(&e))
    }

    /// The push for an APNS-form client, through the `apns` profile that
    /// serves its topic and environment (never any other).
    #[allow(clippy::too_many_arguments)]
    fn apns(
        &self,
        pushes: &PushService,
        component: &str,
        id: &str,
        n: &Notification,
        sandbox: bool,
        token: String,
        topic: &str,
        voip_token: Option<String>,
    ) -> Result<(Arc<App>, Push), StanzaError> {
        let apps = pushes.apps();
        let found = self.settings.apns.iter().find_map(|p| {
            let app = apps.get(p)?;
            (app.provider.apns_topic()? == (topic, sandbox)).then(|| (p, Arc::clone(app)))
        });
        let Some((profile, app)) = found else {
            // The operator does not serve this app: not the device's fault.
            log::info!("Push 2.0: no apns profile serves topic {topic} (sandbox: {sandbox})");
            return Err(StanzaError::internal(format!(
                "topic {topic} is not served here"
            )));
        };
        let (voip, token) = match (n.voip, voip_token) {
            (true, Some(v)) => (true, v),
            (_, _) => (false, token),
        };
        let custom = CustomApns {
            payload: push2_alert(n.payload.as_deref()).to_string().into_bytes(),
            voip,
            // mod_push2 sends a chat message with a body as `normal` and
            // only a call as `high`: the "New Message" alert is due at
            // once (10); `low` may wait for the device's convenience (5).
            // Snikket's own service sends `normal` at 5, which iOS may hold.
            priority: if n.priority == Urgency::Low && !voip {
                5
            } else {
                10
            },
            apns_id: Some(id.to_owned()),
        };
        let push = Push {
            component: component.to_owned(),
            push_type: profile.clone(),
            node: token.clone(),
            token,
            priority: if voip { Priority::Voip } else { Priority::High },
            summary: Summary::default(),
            encrypted: None,
            flavour: Flavour::Apns(custom),
        };
        Ok((app, push))
    }

    /// The push for a Web Push endpoint, through the Web Push sender.
    fn web(
        &self,
        component: &str,
        n: &Notification,
        endpoint: Endpoint,
    ) -> Result<(Arc<App>, Push), StanzaError> {
        let app = self
            .webpush
            .as_ref()
            .map_err(|why| StanzaError::new(ErrorType::Cancel, "not-allowed", why.clone()))?;
        let body = n
            .payload
            .as_deref()
            .and_then(decode_base64)
            .ok_or_else(|| {
                StanzaError::bad_request("Web Push needs an <encrypted> base64 payload")
            })?;
        let req = WebPushRequest {
            body,
            ttl: self.settings.ttl,
            urgency: match n.priority {
                Urgency::High => "high",
                Urgency::Normal => "normal",
                Urgency::Low => "low",
            },
            authorization: n.jwt.as_ref().map(|(t, k)| vapid_authorization(t, k)),
            endpoint,
        };
        let push = Push {
            component: component.to_owned(),
            push_type: WEBPUSH_APP.to_owned(),
            node: n.client.clone(),
            token: n.client.clone(),
            priority: match n.priority {
                Urgency::High | Urgency::Normal => Priority::High,
                Urgency::Low => Priority::Silent,
            },
            summary: Summary::default(),
            encrypted: None,
            flavour: Flavour::WebPush(req),
        };
        Ok((Arc::clone(app), push))
    }
}

/// The `<message type='error'>` answering a notification.
pub fn error_message(our_jid: &str, to: &str, id: &str, e: &StanzaError) -> Element {
    Element::new("message", NS_COMPONENT)
        .attr("type", "error")
        .attr("from", our_jid)
        .attr_opt("to", Some(to).filter(|t| !t.is_empty()))
        .attr_opt("id", Some(id).filter(|i| !i.is_empty()))
        .child(e.to_element())
}

#[cfg(test)]
mod tests;
