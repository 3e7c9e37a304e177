#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/:
# the real stanzas, request bodies and config files of the tests
# (tests/support/harness.rs, tests/link/component.rs, tests/link/link.rs,
# tests/api/ownership.rs, tests/interop/*, src/stanza/publish_tests.rs, the
# README and packaging/push-appserver.toml). The committed corpus in
# fuzz/corpus/<target>/ was grown from these and minimized (RELIABILITY.md).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds
mkdir -p seeds/{framer,stanza,http_form,config,owner}

C=http://jabber.org/protocol/commands
P=http://jabber.org/protocol/pubsub
REG="<iq type='set' from='user@example.com/res' to='push.example.org' id='r1'><command xmlns='$C' node='v1-register-push' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='type'><value>fcm</value></field><field var='node'><value>dev1</value></field><field var='token'><value>tok-123</value></field></x></command></iq>"
UNREG="<iq type='set' from='user@example.com' to='push.example.org' id='u1'><command xmlns='$C' node='v1-unregister-push' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='type'><value>apns</value></field><field var='node'><value>dev1</value></field></x></command></iq>"
OPTS="<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>$P#publish-options</value></field><field var='pushModule'><value>monal</value></field><field var='secret'><value>SECRET</value></field></x></publish-options>"
PUB="<iq type='set' from='user@example.com' to='push.example.org' id='n1'><pubsub xmlns='$P'><publish node='NODE'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>3</value></field><field var='last-message-sender'><value>juliet@capulet.lit/balcony</value></field><field var='last-message-body'><value>Wherefore art thou?</value></field></x></notification></item></publish>$OPTS</pubsub></iq>"
PUB_ENC="<iq type='set' from='example.com' to='push.example.org' id='n2'><pubsub xmlns='$P'><publish node='NODE'><item><notification xmlns='urn:xmpp:push:0'><encrypted xmlns='tigase:push:encrypt:0' iv='SVY=' type='voip'>Q0lQSEVS</encrypted><priority xmlns='tigase:push:priority:0'>high</priority></notification></item></publish>$OPTS</pubsub></iq>"

stanzas=(
  ping "<iq type='get' from='a@example.com/r' to='push.example.org' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
  disco-info "<iq type='get' from='a@example.com' to='push.example.org' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
  disco-items "<iq type='get' from='a@example.com' to='push.example.org' id='d2'><query xmlns='http://jabber.org/protocol/disco#items' node='$C'/></iq>"
  disco-info-node "<iq type='get' from='a@example.com' to='push.example.org' id='d3'><query xmlns='http://jabber.org/protocol/disco#info' node='v1-register-push'/></iq>"
  vcard "<iq type='get' from='a@example.com' to='push.example.org' id='v1'><vCard xmlns='vcard-temp'/></iq>"
  empty-set "<iq type='set' from='a@example.com' to='push.example.org' id='e1'/>"
  result "<iq type='result' from='example.org' to='push.example.org' id='x1'/>"
  message "<message from='mallory@evil.example/x' to='push.example.org'><body>hi</body></message>"
  client-ns "<iq xmlns='jabber:client' type='get' from='a@example.com/r' to='push.example.org' id='c1'><ping xmlns='urn:xmpp:ping'/></iq>"
  server-ns "<iq xmlns='jabber:server' type='set' from='a@example.com' to='push.example.org' id='c3'><vCard xmlns='vcard-temp'/></iq>"
  command-unknown "<iq type='set' from='u@example.com' to='push.example.org' id='r3'><command xmlns='$C' node='nope' action='execute'/></iq>"
  command-form "<iq type='set' from='u@example.com' to='push.example.org' id='r4'><command xmlns='$C' node='v1-register-push' action='execute'/></iq>"
  command-cancel "<iq type='set' from='u@example.com' to='push.example.org' id='r5'><command xmlns='$C' node='v1-register-push' sessionid='s1' action='cancel'/></iq>"
  register "$REG"
  unregister "$UNREG"
  publish "$PUB"
  publish-encrypted "$PUB_ENC"
  stream-error "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
  escapes "<iq type='get' id='a&amp;b&#x263A;' from='u@example.com'><ping xmlns='urn:xmpp:ping'><![CDATA[<x>]]></ping></iq>"
)
for ((i = 0; i < ${#stanzas[@]}; i += 2)); do
  printf '%s' "${stanzas[i + 1]}" > "seeds/stanza/${stanzas[i]}.xml"
done

# Framer inputs: byte 0 sets the size limit (16 + 2*b), byte 1 seeds the
# chunk sizes; then a whole stream as the XMPP server sends it.
HEADER="<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='push.example.org' id='abc123'>"
framer() { # name limit-byte chunk-byte body
  { printf "\\x$2\\x$3"; printf '%s' "$HEADER$4"; } > "seeds/framer/$1.bin"
}
framer handshake ff 01 "<handshake/><iq type='get' from='a@example.com/r' to='push.example.org' id='p1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>"
framer register ff 07 "$REG$UNREG"
framer publish-small-limit 40 03 "$PUB<message><body>hi</body></message>"
framer publish ff 11 "$PUB_ENC</stream:stream>"
framer cdata 80 05 "<message><body><![CDATA[</message><x>]]]> &#x263A;</body></message><iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>"
framer deep ff 02 "<iq type='get' from='mallory@evil.example/x' to='push.example.org' id='deep1'>$(printf '<a>%.0s' {1..40})$(printf '</a>%.0s' {1..40})</iq><iq type='get' id='after'/>"
framer big 10 09 "<iq type='set' from='mallory@evil.example/x' to='push.example.org' id='big1'><pubsub xmlns='$P'><publish node='n'>$(printf 'x%.0s' {1..300})</publish></pubsub></iq><message/>"
framer stream-error ff 04 "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
framer comment ff 06 "<iq type='get' id='1'><!-- no --></iq>"

# HTTP form bodies (README's API table, src/http/form.rs's test).
printf '%s' 'type=fcm&node=dev1&token=tok-123' > seeds/http_form/register.txt
printf '%s' 'type=apns&node=E0FF%2D1&secret=s%C3%A9cret' > seeds/http_form/unregister.txt
printf '%s' 'node=0123456789abcdef0123456789abcdef01234567&secret=SECRET' > seeds/http_form/push.txt
printf '%s' 'type=apns&node=E0FF%2D1&token=a+b&bad=%zz&end=%4' > seeds/http_form/escapes.txt
printf '%s' '&&=&a==b&%&%%41&+=+' > seeds/http_form/edges.txt
# Request heads (the same input runs through the head parser).
printf 'POST /push_appserver/v1/register HTTP/1.1\r\nHost: push.example.org\r\nContent-Length: 32\r\n\r\ntype=fcm&node=dev1&token=tok-123' > seeds/http_form/head-register.txt
printf 'GET /push_appserver/v1/health HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.2\r\nForwarded: for="[2001:db8::1]:4711";proto=https\r\n\r\n' > seeds/http_form/head-proxied.txt
printf 'POST http://h/push_appserver/v1/push?x#y HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n' > seeds/http_form/head-bad.txt

# Config files: the packaged example, the interop test's, the unit tests' minimal one.
cp ../packaging/push-appserver.toml seeds/config/packaged.toml
sed 's/@[A-Z_]*@/1/g' ../tests/interop/appserver.toml.in > seeds/config/interop.toml
cat > seeds/config/minimal.toml <<'TOML'
[[component]]
jid = "push.example.org"
server = "127.0.0.1:5347"
secret = "s3cret"
types = ["fcm"]
ping_to = "xmpp.example.org"
[app.fcm]
provider = "log"
[limits]
max_stanza_bytes = 16777216
ping_after_secs = 1
shutdown_grace_secs = 0
TOML
cat > seeds/config/providers.toml <<'TOML'
[[component]]
jid = "push.example.org"
server = "[::1]:5347"
secret_file = "component.secret"
types = ["apns", "fcm"]
[app.apns]
provider = "apns"
key_file = "AuthKey_ABC123DEFG.p8"
key_id = "ABC123DEFG"
team_id = "DEF123GHIJ"
topic = "org.example.app"
environment = "sandbox"
[app.fcm]
provider = "fcm"
service_account = "service-account.json"
capath = "/etc/ssl/certs"
TOML

# Owner inputs: from, another sender, device id (NUL separated).
owner() { printf '%s\0%s\0%s' "$2" "$3" "$4" > "seeds/owner/$1.txt"; }
owner user "user@example.com/res" "example.com" "dev1"
owner case "Alice@Example.COM/Phone" "Bob@EXAMPLE.com/x" "static_device_id"
owner server "example.com" "alice@evil.example" "E0FF-1"
owner odd-resource "alice@example.com/res/with@odd" "@example.com" "ééééééééé"
owner bad "a@b@c" "a@.c" ""
# 4096 bytes that lowercase to 6143 (fuzz/artifacts-kept/owner-*).
printf '%s@x' "$(printf 'İ%.0s' {1..2047})" > seeds/owner/lowercase-grows.txt
