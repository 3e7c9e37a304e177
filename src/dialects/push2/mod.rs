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
mod settings;

pub use parse::{
    apns_payload, notification_of, parse, target, Notification, Target, Urgency, NS_PUSH2,
};
pub use settings::Push2Settings;

use super::profiles::{outcome_error, sender_allowed};
use crate::providers::apns::payload::CustomApns;
use crate::providers::webpush::{
    decode_base64, vapid_authorization, Endpoint, WebPushError, WebPushRequest, WebPushSender,
};
use crate::providers::{Priority, Push, Summary};
use crate::pushes::{send_within, PushService};
use crate::registrations::owner::short;
use crate::stanza::{ErrorType, StanzaError};
use crate::xml::{Element, NS_COMPONENT};

/// The Push 2.0 service of one component.
#[derive(Debug)]
pub struct Push2Service {
    settings: Push2Settings,
    webpush: Result<WebPushSender, String>,
}

impl Push2Service {
    /// Prepares the Web Push sender (a TLS setup that fails is logged and
    /// answered `wait` per push rather than stopping the component).
    pub fn new(settings: Push2Settings) -> Self {
        let webpush = match &settings.webpush {
            None => Err("Web Push endpoints are not enabled here".to_owned()),
            Some(w) => WebPushSender::new(w.clone()).map_err(|e| {
                log::error!("Push 2.0: the Web Push sender cannot start: {e}");
                e.to_string()
            }),
        };
        Push2Service { settings, webpush }
    }

    /// Delivers one notification; `Err` is the error to answer.
    pub async fn push(
        &self,
        pushes: &PushService,
        component: &str,
        from: &str,
        id: &str,
        n: Notification,
    ) -> Result<(), StanzaError> {
        sender_allowed(&self.settings.allow_from, from)?;
        let target = target(&n.client).map_err(|why| {
            StanzaError::new(
                ErrorType::Cancel,
                "item-not-found",
                format!("<client>: {why}"),
            )
        })?;
        match target {
            Target::Apns {
                sandbox,
                token,
                topic,
                voip_token,
            } => {
                self.apns(
                    pushes, component, id, &n, sandbox, token, &topic, voip_token,
                )
                .await
            }
            Target::WebPush(endpoint) => self.web(&n, endpoint).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apns(
        &self,
        pushes: &PushService,
        component: &str,
        id: &str,
        n: &Notification,
        sandbox: bool,
        token: String,
        topic: &str,
        voip_token: Option<String>,
    ) -> Result<(), StanzaError> {
        let apps = pushes.apps();
        let found = self.settings.apns.iter().find_map(|p| {
            let app = apps.get(p)?;
            (app.provider.apns_topic()? == (topic, sandbox)).then_some((p, app))
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
        let push = Push {
            component: component.to_owned(),
            push_type: profile.clone(),
            node: token.clone(),
            token,
            priority: if voip { Priority::Voip } else { Priority::High },
            summary: Summary::default(),
            encrypted: None,
            dialect: None,
        };
        let custom = CustomApns {
            payload: apns_payload(n.payload.as_deref()).to_string().into_bytes(),
            voip,
            priority: if n.priority == Urgency::High || voip {
                10
            } else {
                5
            },
            apns_id: Some(id.to_owned()),
        };
        let outcome = send_within(
            pushes.timeout(),
            Box::pin(app.provider.send_custom(&push, &custom)),
        )
        .await;
        match outcome_error(&outcome) {
            None => Ok(()),
            Some(e) => {
                log::info!(
                    "Push 2.0 APNS push to token {} failed: {e}",
                    short(&push.token)
                );
                Err(e)
            }
        }
    }

    async fn web(&self, n: &Notification, endpoint: Endpoint) -> Result<(), StanzaError> {
        let sender = self
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
        let host = req.endpoint.host.clone();
        let result = sender.send(&req).await;
        match web_error(result) {
            None => Ok(()),
            Some(e) => {
                log::info!("Push 2.0 Web Push to {host} failed: {e}");
                Err(e)
            }
        }
    }
}

/// The error for a Web Push result, `None` on success: 404/410 and
/// refused targets are final, the rest `wait`.
pub fn web_error(result: Result<u16, WebPushError>) -> Option<StanzaError> {
    match result {
        Ok(200..=299) => None,
        Ok(404 | 410) => Some(StanzaError::item_not_found("the endpoint is gone")),
        Ok(s @ 300..=399) => Some(StanzaError::internal(format!(
            "the endpoint redirects ({s}); redirects are not followed"
        ))),
        Ok(s) => Some(StanzaError::internal(format!("the endpoint answered {s}"))),
        Err(WebPushError::Refused(g)) => Some(StanzaError::new(
            ErrorType::Cancel,
            "not-allowed",
            g.to_string(),
        )),
        Err(WebPushError::Body(n)) => Some(StanzaError::new(
            ErrorType::Modify,
            "not-acceptable",
            format!("payload of {n} bytes is empty or too large"),
        )),
        Err(WebPushError::Timeout) => Some(StanzaError::remote_server_timeout(
            "the endpoint did not answer in time",
        )),
        Err(e) => Some(StanzaError::internal(e.to_string())),
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
#[path = "tests.rs"]
mod tests;
