#!/bin/sh
# Tests the procd init script (files/push-appserver.init) off the router:
# OpenWrt's shell library (config_load, config_get, config_foreach,
# uci_validate_section, procd_*) and `uci show` are replaced by small stubs
# over a UCI file (uci-show.awk), then start_service is run and what it
# hands to procd is checked. Proves: the shipped config (enabled 0) starts
# nothing; enabled, it writes the TOML, runs check-config and starts one
# instance as push-appserver with respawn and the file trigger; an inline
# component secret or a config check-config refuses starts nothing; a
# restart with an unchanged config leaves the TOML file alone. reload_service
# (uci commit, /etc/init.d/push-appserver reload) sends a running server
# SIGHUP through procd_send_signal instead of restarting it, starts one that
# is not running, stops a disabled one, and leaves the server and its TOML
# alone when the new config is refused.
# Binary: $PUSH_APPSERVER_BIN (packaging/check.sh passes one).
# shellcheck disable=SC2034,SC1091 # the init script reads PROG, CONVERT, RUNDIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${PUSH_APPSERVER_BIN:?set PUSH_APPSERVER_BIN to a push-appserver binary}
# shellcheck source=testlib.sh
. "$here/../../testlib.sh"

# --- stubs of OpenWrt's /lib/functions.sh, procd.sh and uci ---------------
SHOW=$tmp/show
config_load() { :; }
_uci_value() { # section option -> value ('a' 'b' -> a b)
	awk -v k="push-appserver.$1.$2=" 'index($0, k) == 1 { print substr($0, length(k) + 1) }' "$SHOW" |
		sed "s/' '/ /g; s/^'//; s/'\$//"
}
config_get() { # var section option [default]
	_v=$(_uci_value "$2" "$3")
	[ -n "$_v" ] || _v=${4:-}
	eval "$1=\$_v"
}
config_foreach() { # function type
	# Section names have no spaces.
	# shellcheck disable=SC2013
	for _s in $(awk -F= -v t="$2" '$2 == t { sub(/^push-appserver\./, "", $1); print $1 }' "$SHOW"); do
		"$1" "$_s"
	done
}
uci_validate_section() { # package type section 'name:type:default'... (types not checked here)
	_sec=$3
	shift 3
	for _spec in "$@"; do
		_name=${_spec%%:*}
		_rest=${_spec#*:}
		_def=
		case $_rest in *:*) _def=${_rest##*:} ;; esac
		config_get "$_name" "$_sec" "$_name" "$_def"
	done
	return 0
}
uci() { cat "$SHOW"; }
logger() { echo "logger $*" >>"$tmp/log"; }
chgrp() { :; }
chown() { :; }
procd_open_instance() { echo open >>"$tmp/procd"; }
procd_set_param() { echo "$*" >>"$tmp/procd"; }
procd_close_instance() { echo close >>"$tmp/procd"; }
procd_running() { [ -f "$tmp/running" ]; }
procd_send_signal() { echo "signal $*" >>"$tmp/procd"; }
# rc.common's start(): rc_procd start_service.
start() { echo "rc start" >>"$tmp/procd"; start_service; }

# The init script: its top-level settings and functions.
# shellcheck source=../files/push-appserver.init
. "$here/../files/push-appserver.init"
PROG=$bin
CONVERT=$here/../files/uci2toml.awk
RUNDIR=$tmp/run

boot() { # UCI file -> exit status of start_service; procd calls in $tmp/procd
	awk -v config=push-appserver -f "$here/uci-show.awk" "$1" >"$SHOW"
	: >"$tmp/procd"
	(start_service) 2>>"$tmp/log"
}
reload() { # UCI file -> exit status of reload_service; procd calls in $tmp/procd
	awk -v config=push-appserver -f "$here/uci-show.awk" "$1" >"$SHOW"
	: >"$tmp/procd"
	(reload_service) 2>>"$tmp/log"
}

mkdir -p "$tmp/etc"
printf 's3cret\n' >"$tmp/etc/component-secret"
sed "s#/etc/push-appserver/#$tmp/etc/#g" "$here/../files/push-appserver.config" >"$tmp/shipped"

# 1. As shipped: disabled, nothing started.
if boot "$tmp/shipped" && [ ! -s "$tmp/procd" ]; then ok; else bad "shipped config started something"; fi

# 2. Enabled: TOML written, one instance as push-appserver.
sed "s/option enabled '0'/option enabled '1'/" "$tmp/shipped" >"$tmp/enabled"
if boot "$tmp/enabled"; then ok; else bad "enabled config refused: $(cat "$tmp/log")"; fi
toml=$RUNDIR/push-appserver.toml
if "$bin" check-config --config "$toml" >/dev/null 2>&1; then ok; else bad "generated TOML refused"; fi
for want in "command $bin run --config $toml" "user push-appserver" "respawn 3600 5 5" "no_new_privs 1"; do
	if grep -qxF "$want" "$tmp/procd"; then ok; else bad "procd lacks: $want"; fi
done
if [ "$(grep -c '^open$' "$tmp/procd")" = 1 ]; then ok; else bad "not exactly one instance"; fi

# No `file` parameter: procd would restart the server when the TOML changed,
# where a reload is to send SIGHUP.
if grep -q '^file ' "$tmp/procd"; then bad "procd restarts on a changed TOML (file parameter)"; else ok; fi

# 3. A second start with an unchanged config leaves the TOML alone.
before=$(ls -i "$toml")
sleep 1
boot "$tmp/enabled" || bad "second start refused"
if [ "$(ls -i "$toml")" = "$before" ]; then ok; else bad "unchanged config rewrote the TOML"; fi

# 3b. Reload of a running server: the TOML is rewritten and the server gets
# SIGHUP from procd, no restart (no new instance).
touch "$tmp/running"
sed "s/option log_level 'info'/option log_level 'debug'/" "$tmp/enabled" >"$tmp/changed"
if reload "$tmp/changed"; then ok; else bad "reload of a changed config failed: $(cat "$tmp/log")"; fi
if grep -q 'log_level = "debug"' "$toml"; then ok; else bad "changed config not written"; fi
if grep -qxF "signal push-appserver * HUP" "$tmp/procd"; then ok; else bad "reload sent no SIGHUP: $(cat "$tmp/procd")"; fi
if grep -q '^open$' "$tmp/procd"; then bad "reload restarted the running server"; else ok; fi
# A refused config on reload: no signal, no restart, the last good TOML stays.
sed "0,/option provider 'log'/s//option provider 'nonsense'/" "$tmp/changed" >"$tmp/broken-reload"
if reload "$tmp/broken-reload"; then bad "reload accepted a config check-config refuses"; else ok; fi
if [ -s "$tmp/procd" ]; then bad "refused reload touched the server: $(cat "$tmp/procd")"; else ok; fi
if grep -q 'nonsense' "$toml"; then bad "refused reload replaced the TOML"; else ok; fi
# Not running yet (enabled just now): reload starts it, no signal.
rm -f "$tmp/running"
if reload "$tmp/changed"; then ok; else bad "reload (not running) failed"; fi
if grep -qx 'rc start' "$tmp/procd" && grep -q '^open$' "$tmp/procd" && ! grep -q '^signal' "$tmp/procd"; then ok; else
	bad "reload of a stopped server: $(cat "$tmp/procd")"
fi
# Disabled while running: procd's start with no instance (procd stops it).
touch "$tmp/running"
if reload "$tmp/shipped"; then ok; else bad "reload (disabled) failed"; fi
if grep -qx 'rc start' "$tmp/procd" && ! grep -q '^open$' "$tmp/procd" && ! grep -q '^signal' "$tmp/procd"; then ok; else
	bad "reload of a disabled config: $(cat "$tmp/procd")"
fi
rm -f "$tmp/running"

# 4. An inline component secret is refused, nothing started.
sed "s#option secret_file .*#option secret 'inline'#" "$tmp/enabled" >"$tmp/inline"
: >"$tmp/log"
if boot "$tmp/inline"; then bad "inline secret accepted"; else ok; fi
if [ -s "$tmp/procd" ]; then bad "inline secret started an instance"; else ok; fi
if grep -q 'use secret_file, not secret' "$tmp/log"; then ok; else bad "inline secret refused without saying why"; fi

# 5. What check-config refuses starts nothing, with the reason in the log.
sed "0,/option provider 'log'/s//option provider 'nonsense'/" "$tmp/enabled" >"$tmp/broken"
: >"$tmp/log"
if boot "$tmp/broken"; then bad "refused config started"; else ok; fi
if [ -s "$tmp/procd" ]; then bad "refused config started an instance"; else ok; fi
if grep -q 'logger .*daemon.err' "$tmp/log"; then ok; else bad "no error logged"; fi

summary "procd init"
