//! The stanza handler of one component: applies [`crate::router::route`]
//! with the registration and push services and sends the replies.

use std::sync::Arc;

use crate::config::ComponentSettings;
use crate::devices::Devices;
use crate::dialects;
use crate::dialects::monal;
use crate::dialects::push2::{self, Push2Service};
use crate::link::{Replier, StanzaHandler};
use crate::pushes::PushService;
use crate::router::{route, Route};
use crate::stanza::{disco, publish, quoted, ErrorType, IqHeader, StanzaError};
use crate::unifiedpush::{UnifiedPush, NS_UP};
use crate::xml::Element;

/// Serves one component's stanzas.
#[derive(Debug)]
pub struct ComponentHandler {
    devices: Arc<Devices>,
    pushes: Arc<PushService>,
    component: ComponentSettings,
    push2: Option<Arc<Push2Service>>,
    unifiedpush: Arc<UnifiedPush>,
}

impl ComponentHandler {
    /// The handler for `component`.
    pub fn new(
        devices: Arc<Devices>,
        pushes: Arc<PushService>,
        unifiedpush: Arc<UnifiedPush>,
        component: ComponentSettings,
    ) -> Self {
        let push2 = component
            .push2
            .clone()
            .map(|s| Arc::new(Push2Service::new(s)));
        ComponentHandler {
            devices,
            pushes,
            component,
            push2,
            unifiedpush,
        }
    }
}

impl StanzaHandler for ComponentHandler {
    fn handle(&self, stanza: Element, reply: Replier) {
        let header = IqHeader::of(&stanza);
        let jid = self.component.jid.as_str();
        let answer = |r: Result<Option<Element>, StanzaError>| match r {
            Ok(payload) => header.result(jid, payload),
            Err(e) => header.error(jid, &e),
        };
        match route(&stanza) {
            // Not a request: nothing to answer (the link answers a request
            // whose replier is dropped, so routes and link agree on this).
            Route::Ignore => {}
            Route::Ping => reply.send(&answer(Ok(None))),
            Route::DiscoInfo(node) => {
                let commands = dialects::commands(&self.component);
                let mut features = dialects::features(&self.component.dialects);
                if self.unifiedpush.offered(jid) {
                    features.push(NS_UP.to_owned());
                }
                reply.send(&answer(disco::info(node, &commands, &features).map(Some)))
            }
            Route::DiscoItems(node) => {
                let commands = dialects::commands(&self.component);
                reply.send(&answer(disco::items(jid, node, &commands).map(Some)))
            }
            Route::Unsupported => reply.send(&answer(Err(StanzaError::service_unavailable()))),
            Route::Malformed(why) => reply.send(&answer(Err(StanzaError::bad_request(why)))),
            Route::Push2(n) => self.push2(&header, n, reply),
            Route::UnifiedPushRegister(register) => reply.send(&answer(
                dialects::unifiedpush::run(&self.unifiedpush, jid, &header.from, register)
                    .map(Some),
            )),
            Route::Publish(pubsub)
                if self.component.monal.is_some() && monal::push_module(pubsub).is_some() =>
            {
                self.monal(header, pubsub, reply)
            }
            Route::Publish(pubsub) => match publish::parse(pubsub) {
                Err(why) => {
                    log::info!("malformed push from {}: {why}", quoted(&header.from));
                    reply.send(&answer(Err(StanzaError::bad_request(why))));
                }
                Ok(req) => {
                    let pushes = Arc::clone(&self.pushes);
                    let jid = jid.to_owned();
                    smol::spawn(async move {
                        let result = pushes.push(&jid, Some(&header.from), req).await;
                        let stanza = match result {
                            Ok(()) => header.result(&jid, None),
                            Err(e) => {
                                log::debug!("push from {} answered with error: {e}", header.from);
                                header.error(&jid, &e.to_stanza_error())
                            }
                        };
                        reply.send(&stanza);
                    })
                    .detach();
                }
            },
            Route::Command(cmd) => match dialects::parse(cmd, &self.component) {
                Err(e) => reply.send(&answer(Err(e))),
                Ok(req) => {
                    let devices = Arc::clone(&self.devices);
                    let component = self.component.clone();
                    smol::spawn(async move {
                        let result = dialects::run(&devices, &component, &header.from, req).await;
                        let jid = component.jid.as_str();
                        reply.send(&match result {
                            Ok(el) => header.result(jid, Some(el)),
                            Err(e) => header.error(jid, &e),
                        });
                    })
                    .detach();
                }
            },
        }
    }
}

impl ComponentHandler {
    /// A Monal publish (`pushModule` in publish-options, no secret).
    fn monal(&self, header: IqHeader, pubsub: &Element, reply: Replier) {
        let jid = self.component.jid.clone();
        let (req, settings) = match (monal::parse(pubsub), &self.component.monal) {
            (Ok(req), Some(s)) => (req, s.clone()),
            (Err(e), _) => return reply.send(&header.error(&jid, &e)),
            (Ok(_), None) => return,
        };
        let pushes = Arc::clone(&self.pushes);
        smol::spawn(async move {
            let result = monal::push(&pushes, &jid, &header.from, &settings, req).await;
            reply.send(&match result {
                Ok(()) => header.result(&jid, None),
                Err(e) => header.error(&jid, &e),
            });
        })
        .detach();
    }

    /// A Push 2.0 notification: nothing is answered on success.
    fn push2(&self, header: &IqHeader, n: &Element, reply: Replier) {
        let jid = self.component.jid.clone();
        let Some(service) = self.push2.clone() else {
            let e = StanzaError::service_unavailable();
            return reply.send(&push2::error_message(&jid, &header.from, &header.id, &e));
        };
        let n = match push2::parse(n) {
            Ok(n) => n,
            Err(why) => {
                log::info!(
                    "malformed Push 2.0 notification from {}: {why}",
                    quoted(&header.from)
                );
                let e = StanzaError::bad_request(why);
                return reply.send(&push2::error_message(&jid, &header.from, &header.id, &e));
            }
        };
        // Answered only on failure: the link's in-flight slot goes back at
        // once, so a slow endpoint never holds the link's reading.
        let reply = match reply.detach() {
            Ok(d) => d,
            Err(reply) => {
                let e = StanzaError::new(
                    ErrorType::Wait,
                    "resource-constraint",
                    "too many notifications in flight; try again later",
                );
                return reply.send(&push2::error_message(&jid, &header.from, &header.id, &e));
            }
        };
        let pushes = Arc::clone(&self.pushes);
        let header = header.clone();
        smol::spawn(async move {
            if let Err(e) = service
                .push(&pushes, &jid, &header.from, &header.id, n)
                .await
            {
                reply.send(&push2::error_message(&jid, &header.from, &header.id, &e));
            }
        })
        .detach();
    }
}
