#!/usr/bin/env python3
"""XMPP client side of the push-appserver <-> Prosody interop test.

Driven by tests/interop_prosody.rs, but can be run by hand against any
Prosody that has mod_cloud_notify + mod_offline loaded and the app server
connected as an external component.

Steps (each bounded by --timeout seconds):
  1. account A logs in (no TLS, loopback only) and runs the XEP-0050 command
     'v1-register-push' at the push component (routed through Prosody) with
     type/node/token; reads back jid/node/secret from the completed form;
  2. A enables XEP-0357 push on its own server with that jid/node and a
     publish-options form carrying the secret, then disconnects (fully
     offline: the test server has no smacks, so no hibernation);
  3. account B logs in and sends A a chat message with a body, then pings
     the server so that the message has surely been routed (and, by
     mod_offline + mod_cloud_notify, the push sent) before B disconnects.

Prints one JSON object on stdout: {"ok": true, ...} on success, or
{"ok": false, "step": ..., "error": ...} and exit status 1 on failure.
Needs python3-slixmpp (Debian package; .ci/run installs it).
"""

import argparse
import asyncio
import json
import logging
import sys
import time

try:
    import slixmpp
    from slixmpp.xmlstream import ET
except ImportError as exc:  # pragma: no cover - environment problem
    print(json.dumps({"ok": False, "step": "import",
                      "error": "python3-slixmpp is not installed (.ci/run installs it): %s" % exc}))
    sys.exit(2)

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_PUSH = "urn:xmpp:push:0"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
NS_PING = "urn:xmpp:ping"

log = logging.getLogger("interop-client")


class StepError(Exception):
    def __init__(self, step, message):
        super().__init__(message)
        self.step = step


def esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace("'", "&apos;").replace('"', "&quot;"))


def form_fields(x):
    """Return {var: value-or-None} of a jabber:x:data form element."""
    out = {}
    for field in x.findall("{%s}field" % NS_DATA):
        value = field.find("{%s}value" % NS_DATA)
        out[field.get("var")] = value.text if value is not None else None
    return out


def describe_error(iq):
    try:
        err = iq["error"]
        return "%s/%s %s" % (err["type"], err["condition"], err["text"] or "")
    except Exception:  # noqa: BLE001 - best effort diagnostics
        return str(iq)


class Account:
    """One logged-in slixmpp client with bounded connect/disconnect."""

    def __init__(self, jid, password, host, port, timeout):
        self.timeout = timeout
        self.host = host
        self.port = port
        self.xmpp = slixmpp.ClientXMPP(
            jid, password,
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        self.xmpp.loop = asyncio.get_running_loop()
        self.session = self.xmpp.loop.create_future()
        self.xmpp.add_event_handler("session_start", self._ok)
        self.xmpp.add_event_handler("failed_auth", lambda _e: self._fail("authentication failed"))
        self.xmpp.add_event_handler("connection_failed", lambda e: self._fail("connection failed: %s" % e))
        self.xmpp.add_event_handler("stream_error", lambda e: self._fail("stream error: %s" % e))
        self.xmpp.add_event_handler("disconnected", lambda e: self._fail("disconnected: %s" % e))

    def _ok(self, _event):
        if not self.session.done():
            self.session.set_result(True)

    def _fail(self, why):
        if not self.session.done():
            self.session.set_exception(RuntimeError(why))

    async def login(self, step):
        self.xmpp.connect(address=(self.host, self.port),
                          force_starttls=False, disable_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(self.session), self.timeout)
        except asyncio.TimeoutError:
            raise StepError(step, "no session within %ss for %s" % (self.timeout, self.xmpp.boundjid)) from None
        except RuntimeError as exc:
            raise StepError(step, "%s: %s" % (self.xmpp.boundjid.bare, exc)) from None
        log.info("%s logged in as %s", step, self.xmpp.boundjid.full)

    async def send_iq(self, step, iq):
        try:
            return await iq.send(timeout=self.timeout)
        except slixmpp.exceptions.IqError as exc:
            raise StepError(step, "error reply: %s" % describe_error(exc.iq)) from None
        except slixmpp.exceptions.IqTimeout:
            raise StepError(step, "no reply within %ss" % self.timeout) from None

    async def logout(self, step):
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=self.timeout), self.timeout + 1)
        except asyncio.TimeoutError:
            raise StepError(step, "disconnect did not complete within %ss" % self.timeout) from None
        log.info("%s disconnected", step)


async def run(args):
    result = {"ok": False}

    # --- 1. A registers the device at the app server ----------------------
    alice = Account(args.alice, args.alice_password, args.host, args.port, args.timeout)
    await alice.login("login-a")
    if args.monal_module:
        # Monal's dialect: no command and no secret; the node is the token
        # and publish-options carry pushModule.
        await enable_monal(alice, args)
        result["register"] = {"jid": args.push_jid, "node": args.token}
        result["enabled"] = True
        await alice.logout("logout-a")
        result["message"] = await send_message(args)
        result["ok"] = True
        return result
    iq = alice.xmpp.make_iq_set(ito=args.push_jid)
    iq.append(ET.fromstring(
        "<command xmlns='%s' node='v1-register-push' action='execute'>"
        "<x xmlns='%s' type='submit'>"
        "<field var='type'><value>%s</value></field>"
        "<field var='node'><value>%s</value></field>"
        "<field var='token'><value>%s</value></field>"
        "</x></command>" % (NS_COMMANDS, NS_DATA, esc(args.type), esc(args.node), esc(args.token))))
    reply = await alice.send_iq("register", iq)
    cmd = reply.xml.find("{%s}command" % NS_COMMANDS)
    if cmd is None:
        raise StepError("register", "result has no <command/>: %s" % reply)
    if cmd.get("status") != "completed":
        raise StepError("register", "command status is %r, want 'completed': %s" % (cmd.get("status"), reply))
    x = cmd.find("{%s}x" % NS_DATA)
    if x is None:
        raise StepError("register", "completed command carries no data form: %s" % reply)
    fields = form_fields(x)
    for var in ("jid", "node", "secret"):
        if not fields.get(var):
            raise StepError("register", "reply form lacks field %r: %s" % (var, reply))
    result["register"] = {"jid": fields["jid"], "node": fields["node"], "secret": fields["secret"],
                          "from": str(reply["from"])}

    # --- 2. A enables push on its own server, then goes offline ------------
    iq = alice.xmpp.make_iq_set()
    iq.append(ET.fromstring(
        "<enable xmlns='%s' jid='%s' node='%s'>"
        "<x xmlns='%s' type='submit'>"
        "<field var='FORM_TYPE'><value>%s</value></field>"
        "<field var='secret'><value>%s</value></field>"
        "</x></enable>" % (NS_PUSH, esc(fields["jid"]), esc(fields["node"]), NS_DATA,
                           NS_PUBLISH_OPTIONS, esc(fields["secret"]))))
    await alice.send_iq("enable", iq)
    result["enabled"] = True
    await alice.logout("logout-a")

    # --- 3. B sends A a message while A is offline --------------------------
    bob = Account(args.bob, args.bob_password, args.host, args.port, args.timeout)
    await bob.login("login-b")
    msg = bob.xmpp.make_message(mto=args.alice, mbody=args.body, mtype="chat")
    msg["id"] = "interop-%d" % int(time.time() * 1000)
    msg.send()
    # Stanzas of one session are handled in order: once the server answered
    # this ping, the message has been routed to mod_offline/mod_cloud_notify.
    ping = bob.xmpp.make_iq_get(ito=bob.xmpp.boundjid.domain)
    ping.append(ET.Element("{%s}ping" % NS_PING))
    await bob.send_iq("message", ping)
    result["message"] = {"from": bob.xmpp.boundjid.full, "to": args.alice, "id": msg["id"], "body": args.body}
    await bob.logout("logout-b")

    result["ok"] = True
    return result


async def enable_monal(alice, args):
    iq = alice.xmpp.make_iq_set()
    iq.append(ET.fromstring(
        "<enable xmlns='%s' jid='%s' node='%s'>"
        "<x xmlns='%s' type='submit'>"
        "<field var='FORM_TYPE'><value>%s</value></field>"
        "<field var='pushModule'><value>%s</value></field>"
        "</x></enable>" % (NS_PUSH, esc(args.push_jid), esc(args.token), NS_DATA,
                           NS_PUBLISH_OPTIONS, esc(args.monal_module))))
    await alice.send_iq("enable", iq)


async def send_message(args):
    """Step 3 alone: B sends A a message while A is offline."""
    bob = Account(args.bob, args.bob_password, args.host, args.port, args.timeout)
    await bob.login("login-b")
    msg = bob.xmpp.make_message(mto=args.alice, mbody=args.body, mtype="chat")
    msg["id"] = "interop-%d" % int(time.time() * 1000)
    msg.send()
    ping = bob.xmpp.make_iq_get(ito=bob.xmpp.boundjid.domain)
    ping.append(ET.Element("{%s}ping" % NS_PING))
    await bob.send_iq("message", ping)
    await bob.logout("logout-b")
    return {"from": bob.xmpp.boundjid.full, "to": args.alice, "id": msg["id"], "body": args.body}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="Prosody c2s port")
    p.add_argument("--push-jid", default="push.localhost")
    p.add_argument("--alice", default="alice@localhost")
    p.add_argument("--alice-password", required=True)
    p.add_argument("--bob", default="bob@localhost")
    p.add_argument("--bob-password", required=True)
    p.add_argument("--type", default="fcm")
    p.add_argument("--node", required=True, help="device id sent in v1-register-push")
    p.add_argument("--token", required=True, help="push token sent in v1-register-push")
    p.add_argument("--monal-module", default=None,
                   help="Monal's dialect: no command; enable with node=token and this pushModule")
    p.add_argument("--body", default="Hello from bob (interop test)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds allowed for each step")
    p.add_argument("--verbose", action="store_true", help="slixmpp debug log (with stanzas) on stderr")
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="client.py %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("slixmpp").setLevel(logging.WARNING)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    overall = 6 * args.timeout + 5
    try:
        result = loop.run_until_complete(asyncio.wait_for(run(args), overall))
    except StepError as exc:
        result = {"ok": False, "step": exc.step, "error": str(exc)}
    except asyncio.TimeoutError:
        result = {"ok": False, "step": "overall", "error": "did not finish within %ss" % overall}
    except Exception as exc:  # noqa: BLE001 - report anything as a failure
        result = {"ok": False, "step": "unexpected", "error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        # let slixmpp's background tasks end quietly (they are cancelled, not awaited forever)
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=2))
        loop.close()
    print(json.dumps(result), flush=True)
    if not result["ok"]:
        print("client.py: FAILED at step %s: %s" % (result["step"], result["error"]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
