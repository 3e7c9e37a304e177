#!/bin/sh
# Tests the OpenRC script (push-appserver.initd) off Alpine: openrc-run's
# helpers (checkpath, ebegin, eend, eerror, supervise-daemon) are stubs that
# record their calls, then start_pre and reload are run. Proves: the shipped
# config (placeholder secret) is refused, a configured one passes
# check-config and gets its data dir made for the service user, a config
# check-config refuses fails start_pre, and reload checks the config before
# it sends SIGHUP through supervise-daemon (and sends nothing for a broken
# one). Binary: $PUSH_APPSERVER_BIN.
# shellcheck disable=SC2034,SC1091 # openrc-run reads the variables
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${PUSH_APPSERVER_BIN:?set PUSH_APPSERVER_BIN to a push-appserver binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

calls=$tmp/calls
checkpath() { echo "checkpath $*" >>"$calls"; }
ebegin() { :; }
eend() { return "$1"; }
eerror() { echo "eerror $*" >>"$calls"; }

RC_SVCNAME=push-appserver
cfgfile=$tmp/push-appserver.toml
datadir=$tmp/data
. "$here/push-appserver.initd"
command=$bin

run() { : >"$calls"; ("$@") 2>>"$tmp/log"; }

# supervise-daemon (not a portable function name) is a stub on PATH.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "supervise-daemon $*" >>"%s"\n' "$calls" >"$tmp/bin/supervise-daemon"
chmod 755 "$tmp/bin/supervise-daemon"
PATH=$tmp/bin:$PATH

cp "$here/../push-appserver.toml" "$cfgfile"
if run start_pre; then bad "start_pre accepted the placeholder secret"; else ok; fi
if grep -q 'eerror .*component secret' "$calls"; then ok; else bad "placeholder refused without saying why"; fi

sed -i 's/^secret = "CHANGE-ME[^"]*"/secret = "configured"/' "$cfgfile"
if run start_pre; then ok; else bad "start_pre refused a configured config: $(cat "$tmp/log")"; fi
if grep -qxF "checkpath -d -m 0700 -o push-appserver:push-appserver $datadir" "$calls"; then ok; else
	bad "data dir not made for the service user: $(cat "$calls")"
fi
if run reload; then ok; else bad "reload failed"; fi
if grep -qxF "supervise-daemon push-appserver --signal HUP" "$calls"; then ok; else bad "reload sent no SIGHUP"; fi

sed -i 's/^provider = "log"/provider = "nonsense"/' "$cfgfile"
if run start_pre; then bad "start_pre accepted a config check-config refuses"; else ok; fi
if run reload; then bad "reload of a broken config succeeded"; else ok; fi
if grep -q 'signal HUP' "$calls"; then bad "broken config was signalled"; else ok; fi

echo "openrc init: $passes passed, $fails failed"
[ "$fails" = 0 ]
