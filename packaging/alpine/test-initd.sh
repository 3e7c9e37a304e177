#!/bin/sh
# Tests the OpenRC script (push-appserver.initd) off Alpine: openrc-run's
# helpers (checkpath, ebegin, eend, eerror, supervise-daemon) are stubs that
# record their calls, then start_pre and reload are run. Proves: the shipped
# config (placeholder secret) is refused, a configured one passes
# check-config and gets its data dir made for the service user, a config
# check-config refuses fails start_pre, and reload checks the config before
# it sends SIGHUP through supervise-daemon (and sends nothing for a broken
# one). Logs: the conffile the APKBUILD's package() installs (run here with
# install/chgrp stubs) selects log_format = "journal", so syslog lines carry
# one timestamp, and start_pre warns about one that resolves to "plain"; the
# stderr logger parses the <N> prefixes when util-linux's logger is there.
# Binary: $PUSH_APPSERVER_BIN.
# shellcheck disable=SC2034,SC1091,SC2154,SC2030,SC2031,SC2317 # openrc-run reads the variables; the stubs are called by what is sourced
set -eu
# OpenRC sets no JOURNAL_STREAM: log_format "auto" resolves as it would there.
unset JOURNAL_STREAM
here=$(cd "$(dirname "$0")" && pwd)
bin=${PUSH_APPSERVER_BIN:?set PUSH_APPSERVER_BIN to a push-appserver binary}
# shellcheck source=testlib.sh
. "$here/../testlib.sh"

calls=$tmp/calls
checkpath() { echo "checkpath $*" >>"$calls"; }
ebegin() { :; }
eend() { return "$1"; }
eerror() { echo "eerror $*" >>"$calls"; }
ewarn() { echo "ewarn $*" >>"$calls"; }

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

# Logs. The logger picked for stderr, with each kind of logger on PATH.
mkdir -p "$tmp/ul" "$tmp/bb"
printf '#!/bin/sh\necho " -p, --priority <prio>"; echo "     --prio-prefix        look for a prefix on every line read from stdin"\n' >"$tmp/ul/logger"
printf '#!/bin/sh\necho "BusyBox v1.36.1 multi-call binary." >&2; echo "Usage: logger [-s] [-t TAG] [-p PRIO] [MESSAGE]" >&2; exit 1\n' >"$tmp/bb/logger"
chmod 755 "$tmp/ul/logger" "$tmp/bb/logger"
got=$(PATH=$tmp/ul:$PATH; unset error_logger; . "$here/push-appserver.initd"; echo "$error_logger")
if [ "$got" = "logger -t push-appserver -p daemon.err --prio-prefix" ]; then ok; else bad "util-linux logger: error_logger is $got"; fi
got=$(PATH=$tmp/bb:$PATH; unset error_logger; . "$here/push-appserver.initd"; echo "$error_logger")
if [ "$got" = "logger -t push-appserver -p daemon.err" ]; then ok; else bad "busybox logger: error_logger is $got"; fi
got=$(error_logger="my-logger"; . "$here/push-appserver.initd"; echo "$error_logger")
if [ "$got" = "my-logger" ]; then ok; else bad "error_logger of conf.d replaced: $got"; fi

# The conffile the Alpine package installs: APKBUILD's package() in a fake
# build dir, with install/chgrp stubs that drop the owner (not root here).
build=$tmp/build
mkdir -p "$build/target/release" "$tmp/srcdir" "$tmp/pkgdir"
ln -s "$here/.." "$build/packaging"
ln -s "$here/../../README.md" "$build/README.md"
ln -s "$here/../../LICENSE" "$build/LICENSE"
cp "$here/push-appserver.initd" "$here/push-appserver.confd" "$tmp/srcdir/"
ln -s "$bin" "$build/target/release/push-appserver"
if (
	install() {
		_a=
		while [ $# -gt 0 ]; do
			case $1 in -o | -g) shift ;; -o?* | -g?*) ;; -*) _a="$_a $1" ;; *) break ;; esac
			shift
		done
		# shellcheck disable=SC2086 # the remaining options, one word each
		command install $_a "$@"
	}
	chgrp() { :; }
	. "$here/APKBUILD"
	srcdir=$tmp/srcdir pkgdir=$tmp/pkgdir
	cd "$build" && set -e && package
) >>"$tmp/log" 2>&1; then ok; else bad "APKBUILD package() failed: $(tail -n 5 "$tmp/log")"; fi
apkconf=$tmp/pkgdir/etc/push-appserver/push-appserver.toml
if grep -qx 'log_format = "journal"' "$apkconf" 2>/dev/null; then ok; else
	bad "the Alpine conffile does not select log_format = \"journal\": $(grep '^log_format' "$apkconf" 2>/dev/null)"
fi
sed 's/^secret = "CHANGE-ME[^"]*"/secret = "configured"/' "$apkconf" >"$cfgfile" 2>/dev/null || :
if "$bin" check-config --config "$cfgfile" 2>/dev/null | grep -qx 'log_format = "journal"'; then ok; else
	bad "check-config: the Alpine conffile's log_format does not resolve to journal"
fi
if run start_pre && ! grep -q '^ewarn' "$calls"; then ok; else bad "start_pre with the Alpine conffile: $(cat "$calls")"; fi
# The shared example (log_format "auto": plain outside systemd) is warned about.
sed 's/^secret = "CHANGE-ME[^"]*"/secret = "configured"/' "$here/../push-appserver.toml" >"$cfgfile"
if run start_pre && grep -q '^ewarn .*log_format' "$calls"; then ok; else bad "start_pre did not warn about log_format plain"; fi

summary "openrc init"
