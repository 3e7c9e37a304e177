//! The stanza handler of one component: applies [`crate::router::route`]
//! with the core's services and sends the replies.

use std::sync::Arc;

use crate::config::ComponentSettings;
use crate::core::Core;
use crate::dialects;
use crate::link::{Replier, StanzaHandler};
use crate::router::{route, Route};
use crate::stanza::{disco, publish, IqHeader, StanzaError};
use crate::xml::Element;

/// Serves one component's stanzas.
#[derive(Debug)]
pub struct ComponentHandler {
    core: Arc<Core>,
    component: ComponentSettings,
}

impl ComponentHandler {
    /// The handler for `component`.
    pub fn new(core: Arc<Core>, component: ComponentSettings) -> Self {
        ComponentHandler { core, component }
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
                let features = dialects::features(&self.component.dialects);
                reply.send(&answer(disco::info(node, &commands, &features).map(Some)))
            }
            Route::DiscoItems(node) => {
                let commands = dialects::commands(&self.component);
                reply.send(&answer(disco::items(jid, node, &commands).map(Some)))
            }
            Route::Unsupported => reply.send(&answer(Err(StanzaError::service_unavailable()))),
            Route::Malformed(why) => reply.send(&answer(Err(StanzaError::bad_request(why)))),
            Route::Publish(pubsub) => match publish::parse(pubsub) {
                Err(why) => {
                    log::info!("malformed push from {}: {why}", header.from);
                    reply.send(&answer(Err(StanzaError::bad_request(why))));
                }
                Ok(req) => {
                    let pushes = Arc::clone(&self.core.pushes);
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
                    let core = Arc::clone(&self.core);
                    let component = self.component.clone();
                    smol::spawn(async move {
                        let result = dialects::run(&core, &component, &header.from, req).await;
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
