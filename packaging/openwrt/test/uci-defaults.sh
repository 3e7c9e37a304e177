#!/bin/sh
# Tests files/push-appserver.uci-defaults (run once on the router at first
# install) off the router, with busybox's sh and hexdump when busybox is
# installed (OpenWrt's: no base64 there): OpenWrt's /lib/functions.sh is a
# stub over the shipped /etc/config/push-appserver (uci-show.awk), the root
# is a temporary IPKG_INSTROOT. Proves: a missing secret_file gets 64 random
# hex digits, mode 0640; a CHANGE-ME placeholder is replaced; an empty file
# too; a real secret is never touched; two runs give two different secrets;
# the result is accepted by check-config as the component secret.
# Binary: $PUSH_APPSERVER_BIN.
# shellcheck disable=SC2016 # the stub's text is literal
set -eu
here=$(cd "$(dirname "$0")" && pwd)
script=$here/../files/push-appserver.uci-defaults
bin=${PUSH_APPSERVER_BIN:?set PUSH_APPSERVER_BIN to a push-appserver binary}
# shellcheck source=testlib.sh
. "$here/../../testlib.sh"

if busybox sh -c 'busybox hexdump -n 1 /dev/null' >/dev/null 2>&1; then
	shell="busybox sh"
	# Only busybox's applets (as on the router) for what the script runs.
	mkdir -p "$tmp/bin"
	for a in hexdump wc grep mkdir dirname chmod mv rm cat; do ln -s "$(command -v busybox)" "$tmp/bin/$a"; done
	PATH=$tmp/bin:$PATH
	echo "uci-defaults: busybox sh and applets"
else
	shell="sh"
	echo "uci-defaults: busybox not installed: sh and the host's tools" >&2
fi
[ -f "$script" ] || { echo "FAIL: $script missing" >&2; exit 1; }

root=$tmp/root
mkdir -p "$root/lib" "$root/etc/push-appserver"
awk -v config=push-appserver -f "$here/uci-show.awk" "$here/../files/push-appserver.config" >"$tmp/show"
cat >"$root/lib/functions.sh" <<STUB
config_load() { :; }
config_get() { # var section option
	_v=\$(awk -v k="push-appserver.\$2.\$3=" 'index(\$0, k) == 1 { print substr(\$0, length(k) + 1) }' "$tmp/show" | sed "s/^'//; s/'\\\$//")
	eval "\$1=\\\$_v"
}
config_foreach() { # function type
	for _s in \$(awk -F= -v t="\$2" '\$2 == t { sub(/^push-appserver\\./, "", \$1); print \$1 }' "$tmp/show"); do "\$1" "\$_s"; done
}
logger() { echo "logger \$*" >>"$tmp/log"; }
chgrp() { :; }
STUB

secret=$root/etc/push-appserver/component-secret
run() { IPKG_INSTROOT=$root $shell "$script" 2>>"$tmp/log"; }

# 1. Missing: written, 64 hex digits, 0640, logged.
if run; then ok; else bad "uci-defaults failed: $(cat "$tmp/log")"; fi
if [ -f "$secret" ] && grep -qxE '[0-9a-f]{64}' "$secret"; then ok; else bad "no 64-hex-digit secret written: $(cat "$secret" 2>&1)"; fi
if [ -f "$secret" ] && [ "$(stat -c %a "$secret")" = 640 ]; then ok; else bad "secret mode is not 0640"; fi
if grep -q 'logger .*component secret' "$tmp/log"; then ok; else bad "nothing logged"; fi
first=$(cat "$secret" 2>/dev/null || :)

# 2. A real secret is kept.
if run && [ "$(cat "$secret" 2>/dev/null)" = "$first" ]; then ok; else bad "an existing secret was replaced"; fi

# 3. A placeholder or an empty file is replaced, by a different secret.
echo 'CHANGE-ME-to-a-long-random-secret' >"$secret"
if run && grep -qxE '[0-9a-f]{64}' "$secret" && [ "$(cat "$secret")" != "$first" ]; then ok; else bad "placeholder not replaced by a new secret"; fi
: >"$secret"
if run && grep -qxE '[0-9a-f]{64}' "$secret"; then ok; else bad "empty secret file not filled"; fi

# 4. check-config takes it as the component secret (the converted shipped config).
mkdir -p "$tmp/cc"
sed "s#/etc/push-appserver/#$root/etc/push-appserver/#g" "$tmp/show" | awk -f "$here/../files/uci2toml.awk" >"$tmp/cc/default.toml"
if "$bin" check-config --config "$tmp/cc/default.toml" >"$tmp/out" 2>&1; then ok; else cat "$tmp/out" >&2; bad "check-config refused the generated secret"; fi

summary "uci-defaults"
