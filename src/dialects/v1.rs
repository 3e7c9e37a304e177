//! The dialect of mod_push_appserver v1 (yaxim, the HTTP API's clients):
//! `v1-register-push` (type, node, token) and `v1-unregister-push` (type,
//! node). Parse the request, apply it, build the reply. The provider
//! payload is each provider's own (no [`super::DialectPush`]).

use crate::config::ComponentSettings;
use crate::devices::{Devices, NodeChoice, OwnedRegistration, PushType};
use crate::stanza::forms::{self, Form};
use crate::stanza::StanzaError;
use crate::stanza::{quoted, NS_COMMANDS};
use crate::xml::{Element, NS_DATA};

/// The commands offered, `(node, human name)`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "v1-register-push",
        "Register a device for push notifications",
    ),
    (
        "v1-unregister-push",
        "Unregister a device from push notifications",
    ),
];

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `v1-register-push`.
    Register,
    /// `v1-unregister-push`.
    Unregister,
}

impl Command {
    /// The command node.
    pub fn node(self) -> &'static str {
        match self {
            Command::Register => "v1-register-push",
            Command::Unregister => "v1-unregister-push",
        }
    }

    /// The command named by `node`.
    pub fn from_node(node: &str) -> Option<Command> {
        match node {
            "v1-register-push" => Some(Command::Register),
            "v1-unregister-push" => Some(Command::Unregister),
            _ => None,
        }
    }
}

/// What the requester asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run the command with these fields.
    Execute {
        /// Push type.
        push_type: String,
        /// Device node.
        node: String,
        /// Token (register only).
        token: Option<String>,
    },
    /// No form was submitted: send the form to fill in.
    ShowForm,
    /// The requester cancelled.
    Cancel,
}

/// A parsed command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    /// Which command.
    pub command: Command,
    /// Session id to echo, if the requester sent one.
    pub session_id: Option<String>,
    /// What to do.
    pub step: Step,
}

/// Parses a `<command/>` element.
pub fn parse(cmd: &Element) -> Result<CommandRequest, StanzaError> {
    let node = cmd.get_attr("node").unwrap_or_default();
    let command = Command::from_node(node)
        .ok_or_else(|| StanzaError::item_not_found(format!("no command {}", quoted(node))))?;
    let session_id = cmd.get_attr("sessionid").map(str::to_owned);
    let action = cmd.get_attr("action").unwrap_or("execute");
    let step = match (action, cmd.get_child("x", NS_DATA)) {
        ("cancel", _) => Step::Cancel,
        ("execute" | "complete" | "next", Some(x)) => {
            let form = Form::parse(x);
            let field = |name: &'static str| -> Result<String, StanzaError> {
                let v = form
                    .value(name)
                    .ok_or_else(|| StanzaError::bad_request(format!("missing field '{name}'")))?;
                crate::registrations::check_field(name, v)
                    .map_err(|e| StanzaError::bad_request(e.to_string()))?;
                Ok(v.to_owned())
            };
            let push_type = field("type")?;
            let node = field("node")?;
            let token = match command {
                Command::Register => Some(field("token")?),
                Command::Unregister => None,
            };
            Step::Execute {
                push_type,
                node,
                token,
            }
        }
        ("execute" | "complete" | "next", None) => Step::ShowForm,
        (other, _) => {
            return Err(StanzaError::bad_request(format!(
                "unsupported action {}",
                quoted(other)
            )));
        }
    };
    Ok(CommandRequest {
        command,
        session_id,
        step,
    })
}

fn command_el(command: Command, session_id: &str, status: &str) -> Element {
    super::command_el(command.node(), session_id, status)
}

/// Runs a command for `from`, who owns what it registers: see
/// [`Devices::register_owned`].
pub async fn run(
    devices: &Devices,
    component: &ComponentSettings,
    from: &str,
    req: CommandRequest,
) -> Result<Element, StanzaError> {
    let session = super::session_id(req.session_id.as_deref());
    let (push_type, node, token) = match req.step {
        Step::Cancel => return Ok(canceled(req.command, &session)),
        Step::ShowForm => return Ok(form_to_fill(req.command, &session, &component.types)),
        Step::Execute {
            push_type,
            node,
            token,
        } => (push_type, node, token),
    };
    let result = match req.command {
        Command::Register => {
            let req = OwnedRegistration {
                push_type: PushType::Offered(&push_type),
                node: NodeChoice::Derived(node),
                token: token.as_deref().unwrap_or_default(),
                record: None,
                replaces: None,
            };
            devices.register_owned(component, from, req).await
        }
        Command::Unregister => {
            devices
                .unregister_owned(component, from, PushType::Offered(&push_type), &node)
                .await
        }
    };
    match result {
        Ok(r) => Ok(completed(
            req.command,
            &session,
            &component.jid,
            &r.registration.node,
            &r.secret,
        )),
        Err(e) => Err(e.to_stanza_error()),
    }
}

/// The `status='completed'` reply carrying jid, node and secret, exactly as
/// mod_push_appserver's README shows.
pub fn completed(
    command: Command,
    session_id: &str,
    jid: &str,
    node: &str,
    secret: &str,
) -> Element {
    command_el(command, session_id, "completed").child(forms::build(
        "form",
        None,
        &[
            ("jid-single", "jid", jid),
            ("text-single", "node", node),
            ("text-single", "secret", secret),
        ],
    ))
}

/// The first stage for requesters that executed without a form.
pub fn form_to_fill(command: Command, session_id: &str, types: &[String]) -> Element {
    let mut x = forms::build(
        "form",
        Some(match command {
            Command::Register => "Register a device for push notifications",
            Command::Unregister => "Unregister a device",
        }),
        &[],
    );
    let mut type_field = Element::new("field", NS_DATA)
        .attr("type", "list-single")
        .attr("var", "type")
        .attr("label", "Push type")
        .child(Element::new("required", NS_DATA));
    for t in types {
        type_field = type_field.child(
            Element::new("option", NS_DATA)
                .attr("label", t)
                .child(Element::new("value", NS_DATA).text(t)),
        );
    }
    x = x.child(type_field);
    let mut fields = vec![("node", "Device id (node)")];
    if command == Command::Register {
        fields.push(("token", "Push token"));
    }
    for (var, label) in fields {
        x = x.child(
            Element::new("field", NS_DATA)
                .attr("type", "text-single")
                .attr("var", var)
                .attr("label", label)
                .child(Element::new("required", NS_DATA)),
        );
    }
    command_el(command, session_id, "executing")
        .child(
            Element::new("actions", NS_COMMANDS)
                .attr("execute", "complete")
                .child(Element::new("complete", NS_COMMANDS)),
        )
        .child(x)
}

/// Reply to a cancelled command.
pub fn canceled(command: Command, session_id: &str) -> Element {
    command_el(command, session_id, "canceled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_element;

    fn cmd(xml: &str) -> Result<CommandRequest, StanzaError> {
        parse(&parse_element(xml.as_bytes()).unwrap())
    }

    #[test]
    fn parses_the_module_readme_register_example() {
        let r = cmd("<command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' action='execute'>\
            <x xmlns='jabber:x:data' type='submit'>\
            <field var='type'><value>fcm</value></field>\
            <field var='node'><value>static_device_id</value></field>\
            <field var='token'><value>dynamic_token</value></field></x></command>")
        .unwrap();
        assert_eq!(r.command, Command::Register);
        assert_eq!(
            r.step,
            Step::Execute {
                push_type: "fcm".into(),
                node: "static_device_id".into(),
                token: Some("dynamic_token".into())
            }
        );
    }

    #[test]
    fn missing_fields_and_unknown_commands_are_errors() {
        let e = cmd(
            "<command xmlns='http://jabber.org/protocol/commands' node='v1-register-push'>\
            <x xmlns='jabber:x:data' type='submit'><field var='type'><value>fcm</value></field>\
            <field var='node'><value>n</value></field></x></command>",
        )
        .unwrap_err();
        assert_eq!(e.condition, "bad-request");
        assert!(e.text.unwrap().contains("token"));
        let e =
            cmd("<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'/>")
                .unwrap_err();
        assert_eq!(e.condition, "item-not-found");
    }

    #[test]
    fn unregister_needs_no_token_and_no_form_shows_one() {
        let r = cmd(
            "<command xmlns='http://jabber.org/protocol/commands' node='v1-unregister-push'>\
            <x xmlns='jabber:x:data' type='submit'><field var='type'><value>apns</value></field>\
            <field var='node'><value>n</value></field></x></command>",
        )
        .unwrap();
        assert!(matches!(r.step, Step::Execute { token: None, .. }));
        let r = cmd("<command xmlns='http://jabber.org/protocol/commands' node='v1-unregister-push' action='execute'/>").unwrap();
        assert_eq!(r.step, Step::ShowForm);
    }

    #[test]
    fn completed_reply_matches_the_module_readme() {
        let s =
            completed(Command::Register, "s1", "push.example.org", "n", "sec").to_stanza_string();
        assert!(s.starts_with("<command xmlns='http://jabber.org/protocol/commands' node='v1-register-push' sessionid='s1' status='completed'>"), "{s}");
        assert!(s.contains(
            "<field type='jid-single' var='jid'><value>push.example.org</value></field>"
        ));
        assert!(s.contains("<field type='text-single' var='secret'><value>sec</value></field>"));
    }
}
