-- Prosody side of a push-appserver pairing (Prosody 0.12 / 13).
-- Merge into /etc/prosody/prosody.cfg.lua (or drop the Component part into
-- /etc/prosody/conf.d/push.cfg.lua) and reload: prosodyctl reload.
--
-- Two parts:
-- 1. Users' push (XEP-0357): mod_cloud_notify lets clients (Monal,
--    Conversations, Siskin, yaxim) enable push for their account; Prosody
--    then publishes to the app server the client named. Debian:
--    apt-get install prosody-modules (in Prosody 13 it ships with Prosody).
-- 2. The component push-appserver connects to (XEP-0114), only when the app
--    server runs for this host (the client's app must then know its JID).

modules_enabled = {
	-- ... the modules you already have ...
	"cloud_notify";
}

-- Privacy: nothing of the message leaves the server (the app server and
-- Apple/Google see only that there is something new). Set true only if
-- the apps need it to show the sender or the text.
push_notification_with_body = false
push_notification_with_sender = false
-- Devices whose app server keeps failing are disabled after this many
-- errors (mod_cloud_notify's default).
-- push_max_errors = 16

-- The component port: loopback only, the app server runs on this machine
-- (for another machine, listen on its private address and firewall it).
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- The same jid and secret as [[component]] in push-appserver.toml:
--   jid = "push.example.org", server = "127.0.0.1:5347",
--   secret_file = "component-secret" (or secret = "...")
Component "push.example.org"
	component_secret = "the-same-long-random-secret"
	-- The push JID is public: users' servers publish to it; disco and the
	-- ad-hoc commands v1-register-push / v1-unregister-push are answered by
	-- push-appserver itself.
