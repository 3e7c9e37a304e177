#!/usr/bin/env python3
"""XMPP client side of tests/interop_dialects.rs: registers a device in a
client family's own dialect through the user's server, or sends messages.

  register --dialect conversations: the XEP-0050 command 'register-push-fcm'
      (action='execute', fields token and android-id), then an XEP-0357
      enable with the answered jid/node and the secret in publish-options,
      as Conversations does; then the account goes offline.
  register --dialect siskin: 'register-device' sent without an action
      (fields provider, device-token, device-second-token), then an enable
      with the answered node and no secret, as Siskin does; offline.
  send: logs in and sends a chat message with a body to each --to, then
      pings its server so that the messages have been routed (and pushed).
  unifiedpush: logs in (as Conversations, a UnifiedPush distributor) and
      registers two applications at the push component, prints their
      endpoints as one JSON line, then stays online --stay seconds and
      answers each relayed push: application "keep" with a result,
      application "gone" with item-not-found (the app was removed). Each
      push received is appended to --log as a JSON line.

Prints one JSON object on stdout: {"ok": true, ...} or {"ok": false,
"step": ..., "error": ...} with exit status 1. Needs python3-slixmpp.
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
                      "error": "python3-slixmpp is not installed: %s" % exc}))
    sys.exit(2)

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_PUSH = "urn:xmpp:push:0"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
NS_PING = "urn:xmpp:ping"
NS_UP = "http://gultsch.de/xmpp/drafts/unified-push"


class StepError(Exception):
    def __init__(self, step, message):
        super().__init__(message)
        self.step = step


def esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace("'", "&apos;").replace('"', "&quot;"))


def form_fields(x):
    out = {}
    for field in x.findall("{%s}field" % NS_DATA):
        values = [v.text or "" for v in field.findall("{%s}value" % NS_DATA)]
        out[field.get("var")] = {"type": field.get("type"), "values": values}
    return out


class Account:
    def __init__(self, jid, password, host, port, timeout):
        self.timeout = timeout
        self.host, self.port = host, port
        self.xmpp = slixmpp.ClientXMPP(
            jid, password,
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        self.xmpp.loop = asyncio.get_running_loop()
        self.session = self.xmpp.loop.create_future()
        self.xmpp.add_event_handler("session_start", self._ok)
        self.xmpp.add_event_handler("failed_auth", lambda _e: self._fail("authentication failed"))
        self.xmpp.add_event_handler("connection_failed", lambda e: self._fail("connection failed: %s" % e))
        self.xmpp.add_event_handler("disconnected", lambda e: self._fail("disconnected: %s" % e))

    def _ok(self, _event):
        if not self.session.done():
            self.session.set_result(True)

    def _fail(self, why):
        if not self.session.done():
            self.session.set_exception(RuntimeError(why))

    async def login(self, step):
        self.xmpp.connect(address=(self.host, self.port), force_starttls=False, disable_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(self.session), self.timeout)
        except asyncio.TimeoutError:
            raise StepError(step, "no session within %ss" % self.timeout) from None
        except RuntimeError as exc:
            raise StepError(step, str(exc)) from None

    async def send_iq(self, step, iq):
        try:
            return await iq.send(timeout=self.timeout)
        except slixmpp.exceptions.IqError as exc:
            err = exc.iq["error"]
            raise StepError(step, "error reply: %s/%s %s" % (err["type"], err["condition"], err["text"])) from None
        except slixmpp.exceptions.IqTimeout:
            raise StepError(step, "no reply within %ss" % self.timeout) from None

    async def logout(self):
        await asyncio.wait_for(self.xmpp.disconnect(wait=self.timeout), self.timeout + 1)


async def register(args):
    acc = Account(args.jid, args.password, args.host, args.port, args.timeout)
    await acc.login("login")
    iq = acc.xmpp.make_iq_set(ito=args.push_jid)
    if args.dialect == "conversations":
        iq.append(ET.fromstring(
            "<command xmlns='%s' node='register-push-fcm' action='execute'>"
            "<x xmlns='%s' type='submit'>"
            "<field var='token'><value>%s</value></field>"
            "<field var='android-id'><value>%s</value></field>"
            "</x></command>" % (NS_COMMANDS, NS_DATA, esc(args.token), esc(args.device_id))))
    else:
        iq.append(ET.fromstring(
            "<command xmlns='%s' node='register-device'>"
            "<x xmlns='%s' type='submit'>"
            "<field var='provider'><value>%s</value></field>"
            "<field var='device-token'><value>%s</value></field>"
            "<field var='device-second-token'><value>%s</value></field>"
            "</x></command>" % (NS_COMMANDS, NS_DATA, esc(args.provider), esc(args.token),
                                esc(args.second_token))))
    reply = await acc.send_iq("register", iq)
    cmd = reply.xml.find("{%s}command" % NS_COMMANDS)
    if cmd is None or cmd.get("status") != "completed":
        raise StepError("register", "not a completed command: %s" % reply)
    x = cmd.find("{%s}x" % NS_DATA)
    if x is None:
        raise StepError("register", "no form: %s" % reply)
    fields = form_fields(x)
    node = (fields.get("node") or {"values": [""]})["values"][0]
    if not node:
        raise StepError("register", "no node: %s" % reply)
    if args.dialect == "conversations":
        secret = fields["secret"]["values"][0]
        enable = ("<enable xmlns='%s' jid='%s' node='%s'><x xmlns='%s' type='submit'>"
                  "<field var='FORM_TYPE'><value>%s</value></field>"
                  "<field var='secret'><value>%s</value></field></x></enable>"
                  % (NS_PUSH, esc(args.push_jid), esc(node), NS_DATA, NS_PUBLISH_OPTIONS, esc(secret)))
    else:
        enable = "<enable xmlns='%s' jid='%s' node='%s'/>" % (NS_PUSH, esc(args.push_jid), esc(node))
    iq = acc.xmpp.make_iq_set()
    iq.append(ET.fromstring(enable))
    await acc.send_iq("enable", iq)
    await acc.logout()
    return {"ok": True, "node": node, "form_type": x.get("type"), "fields": fields}


async def send(args):
    acc = Account(args.jid, args.password, args.host, args.port, args.timeout)
    await acc.login("login")
    for to in args.to:
        msg = acc.xmpp.make_message(mto=to, mbody=args.body, mtype="chat")
        msg["id"] = "dialect-%d" % int(time.time() * 1000000)
        msg.send()
    ping = acc.xmpp.make_iq_get(ito=acc.xmpp.boundjid.domain)
    ping.append(ET.Element("{%s}ping" % NS_PING))
    await acc.send_iq("ping", ping)
    await acc.logout()
    return {"ok": True, "sent": len(args.to)}


async def unifiedpush(args):
    import base64
    import hashlib
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    acc = Account(args.jid, args.password, args.host, args.port, args.timeout)
    apps = {}
    for name in ("keep", "gone"):
        apps[base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()] = name
    instance = base64.b64encode(hashlib.sha256(b"instance").digest()).decode()
    received = []

    def on_push(iq):
        push = iq.xml.find("{%s}push" % NS_UP)
        name = apps.get(push.get("application"), "?")
        entry = {"app": name, "instance": push.get("instance") == instance,
                 "payload": push.text or "", "from": str(iq["from"])}
        received.append(entry)
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        reply = iq.reply(clear=True)
        if name != "keep":
            reply["type"] = "error"
            reply["error"]["type"] = "cancel"
            reply["error"]["condition"] = "item-not-found"
        reply.send()

    acc.xmpp.register_handler(Callback(
        "unifiedpush push", MatchXPath("{jabber:client}iq/{%s}push" % NS_UP), on_push))
    await acc.login("login")
    endpoints = {}
    for application, name in apps.items():
        iq = acc.xmpp.make_iq_set(ito=args.push_jid)
        iq.append(ET.fromstring("<register xmlns='%s' application='%s' instance='%s'/>"
                                % (NS_UP, esc(application), esc(instance))))
        reply = await acc.send_iq("register " + name, iq)
        reg = reply.xml.find("{%s}registered" % NS_UP)
        if reg is None or not reg.get("endpoint") or not reg.get("expiration"):
            raise StepError("register " + name, "no endpoint: %s" % reply)
        endpoints[name] = reg.get("endpoint")
    print(json.dumps({"ok": True, "step": "registered", "endpoints": endpoints,
                      "jid": str(acc.xmpp.boundjid)}), flush=True)
    await asyncio.sleep(args.stay)
    await acc.logout()
    return {"ok": True, "received": len(received)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["register", "send", "unifiedpush"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--push-jid", default="push.localhost")
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--dialect", choices=["conversations", "siskin"])
    p.add_argument("--token", default="")
    p.add_argument("--second-token", default="")
    p.add_argument("--device-id", default="")
    p.add_argument("--provider", default="tigase:messenger:apns:1")
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--body", default="Hello (dialect interop test)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--stay", type=float, default=60.0)
    p.add_argument("--log", default="unifiedpush.jsonl")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("slixmpp").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    work = {"register": register, "send": send, "unifiedpush": unifiedpush}[args.action](args)
    limit = 4 * args.timeout + (args.stay if args.action == "unifiedpush" else 0)
    try:
        result = loop.run_until_complete(asyncio.wait_for(work, limit))
    except StepError as exc:
        result = {"ok": False, "step": exc.step, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - report anything as a failure
        result = {"ok": False, "step": "unexpected", "error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=2))
        loop.close()
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
