//! The API's operations, independent of HTTP: a request built from a form,
//! answered through the registration and push services, and mod_push_appserver's `OK\n`/`ERROR\n` text reply.

use std::net::IpAddr;

use super::Backend;
use crate::devices::RegisterError;
use crate::stanza::publish::PublishRequest;

use super::form;

/// A request to the registration or push service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `POST /register`.
    Register {
        /// Component JID.
        component: String,
        /// Push type.
        push_type: String,
        /// Device node.
        node: String,
        /// Provider token.
        token: String,
        /// The node's secret, needed to give a registered node another
        /// token (a field mod_push_appserver's API did not have).
        secret: String,
    },
    /// `POST /unregister`.
    Unregister {
        /// Component JID.
        component: String,
        /// Push type.
        push_type: String,
        /// Device node.
        node: String,
        /// The node's secret (empty when not given).
        secret: String,
    },
    /// `POST /push`.
    Push {
        /// Component JID.
        component: String,
        /// Device node.
        node: String,
        /// The node's secret.
        secret: String,
    },
}

impl ApiRequest {
    /// The request a form `body` posted to `endpoint` (`register`,
    /// `unregister` or `push`) makes at `component`; `None` for any other
    /// endpoint. Missing fields are empty and refused by the backend.
    pub fn from_form(endpoint: &str, component: String, body: &str) -> Option<ApiRequest> {
        let f = form::parse(body);
        let field = |k: &str| form::get(&f, k).unwrap_or_default().to_owned();
        Some(match endpoint {
            "register" => ApiRequest::Register {
                component,
                push_type: field("type"),
                node: field("node"),
                token: field("token"),
                secret: field("secret"),
            },
            "unregister" => ApiRequest::Unregister {
                component,
                push_type: field("type"),
                node: field("node"),
                secret: field("secret"),
            },
            "push" => ApiRequest::Push {
                component,
                node: field("node"),
                secret: field("secret"),
            },
            _ => return None,
        })
    }
}

/// Status and text body of an API answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// Body: `OK\n...` or `ERROR\n...`, as mod_push_appserver's API.
    pub body: String,
}

impl ApiReply {
    /// `OK` followed by one line per item.
    pub fn ok(lines: &[&str]) -> Self {
        ApiReply {
            status: 200,
            body: format!("OK\n{}\n", lines.join("\n")),
        }
    }

    /// `ERROR` and the reason, with `status`.
    pub fn error(status: u16, why: &str) -> Self {
        ApiReply {
            status,
            body: format!("ERROR\n{why}\n"),
        }
    }
}

fn register_error(e: RegisterError) -> ApiReply {
    ApiReply::error(e.http_status(), &e.client_reason())
}

/// Answers one API request from `client` (its address, or the /64 of an
/// IPv6 one: what its rates are counted by) with the backend's services.
pub async fn answer(backend: &Backend, req: ApiRequest, client: IpAddr) -> ApiReply {
    match req {
        ApiRequest::Register {
            component,
            push_type,
            node,
            token,
            secret,
        } => {
            let c = backend.component_or_first(Some(&component)).clone();
            match backend
                .devices
                .register(&c, &push_type, &node, &token, &secret, client)
                .await
            {
                Ok(r) => ApiReply::ok(&[&r.registration.node, &r.secret]),
                Err(e) => register_error(e),
            }
        }
        ApiRequest::Unregister {
            component,
            push_type,
            node,
            secret,
        } => {
            let c = backend.component_or_first(Some(&component)).clone();
            match backend
                .devices
                .unregister(&c, &push_type, &node, &secret)
                .await
            {
                Ok(r) => ApiReply::ok(&[&r.registration.node, &r.secret]),
                Err(e) => register_error(e),
            }
        }
        ApiRequest::Push {
            component,
            node,
            secret,
        } => {
            let req = PublishRequest {
                node: node.clone(),
                secret: Some(secret),
                summary: Default::default(),
                encrypted: None,
                high_hint: false,
                voip_hint: false,
            };
            // HTTP has no identity: registrations with an owner answer
            // item-not-found here.
            match backend.pushes.push(&component, None, req).await {
                Ok(()) => ApiReply::ok(&[&node]),
                Err(e) => ApiReply::error(e.http_status(), &e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_requests() {
        let c = || "push.example.org".to_owned();
        assert_eq!(
            ApiRequest::from_form("register", c(), "type=fcm&node=a%20b&token=t&secret=s"),
            Some(ApiRequest::Register {
                component: c(),
                push_type: "fcm".into(),
                node: "a b".into(),
                token: "t".into(),
                secret: "s".into(),
            })
        );
        assert_eq!(
            ApiRequest::from_form("push", c(), "node=n"),
            Some(ApiRequest::Push {
                component: c(),
                node: "n".into(),
                secret: String::new(),
            })
        );
        assert_eq!(ApiRequest::from_form("health", c(), ""), None);
    }
}
