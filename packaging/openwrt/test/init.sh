#!/bin/sh
# Tests the procd init script (files/push-appserver.init) off the router:
# OpenWrt's shell library (config_load, config_get, config_foreach,
# uci_validate_section, procd_*) and `uci show` are replaced by small stubs
# over a UCI file (uci-show.awk), then start_service is run and what it
# hands to procd is checked. Proves: the shipped config (enabled 0) starts
# nothing; enabled, it writes the TOML, runs check-config and starts one
# instance as push-appserver with respawn and the file trigger; an inline
# component secret or a config check-config refuses starts nothing; a
# reload with an unchanged config leaves the TOML file alone.
# Binary: $PUSH_APPSERVER_BIN (packaging/check.sh passes one).
# shellcheck disable=SC2034,SC1091 # the init script reads PROG, CONVERT, RUNDIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${PUSH_APPSERVER_BIN:?set PUSH_APPSERVER_BIN to a push-appserver binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

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

# The init script: its top-level settings and functions.
# shellcheck source=../files/push-appserver.init
. "$here/../files/push-appserver.init"
PROG=$bin
CONVERT=$here/../files/uci2toml.awk
RUNDIR=$tmp/run

start() { # UCI file -> exit status of start_service; procd calls in $tmp/procd
	awk -v config=push-appserver -f "$here/uci-show.awk" "$1" >"$SHOW"
	: >"$tmp/procd"
	(start_service) 2>>"$tmp/log"
}

mkdir -p "$tmp/etc"
printf 's3cret\n' >"$tmp/etc/component-secret"
sed "s#/etc/push-appserver/#$tmp/etc/#g" "$here/../files/push-appserver.config" >"$tmp/shipped"

# 1. As shipped: disabled, nothing started.
if start "$tmp/shipped" && [ ! -s "$tmp/procd" ]; then ok; else bad "shipped config started something"; fi

# 2. Enabled: TOML written, one instance as push-appserver.
sed "s/option enabled '0'/option enabled '1'/" "$tmp/shipped" >"$tmp/enabled"
if start "$tmp/enabled"; then ok; else bad "enabled config refused: $(cat "$tmp/log")"; fi
toml=$RUNDIR/push-appserver.toml
if "$bin" check-config --config "$toml" >/dev/null 2>&1; then ok; else bad "generated TOML refused"; fi
for want in "command $bin run --config $toml" "user push-appserver" "respawn 3600 5 5" "file $toml" "no_new_privs 1"; do
	if grep -qxF "$want" "$tmp/procd"; then ok; else bad "procd lacks: $want"; fi
done
if [ "$(grep -c '^open$' "$tmp/procd")" = 1 ]; then ok; else bad "not exactly one instance"; fi

# 3. A reload with an unchanged config leaves the TOML (and so the server) alone.
before=$(ls -i "$toml")
sleep 1
start "$tmp/enabled" || bad "second start refused"
if [ "$(ls -i "$toml")" = "$before" ]; then ok; else bad "unchanged config rewrote the TOML"; fi
sed "s/option log_level 'info'/option log_level 'debug'/" "$tmp/enabled" >"$tmp/changed"
start "$tmp/changed" || bad "changed config refused"
if grep -q 'log_level = "debug"' "$toml"; then ok; else bad "changed config not written"; fi

# 4. An inline component secret is refused, nothing started.
sed "s#option secret_file .*#option secret 'inline'#" "$tmp/enabled" >"$tmp/inline"
: >"$tmp/log"
if start "$tmp/inline"; then bad "inline secret accepted"; else ok; fi
if [ -s "$tmp/procd" ]; then bad "inline secret started an instance"; else ok; fi
if grep -q 'use secret_file, not secret' "$tmp/log"; then ok; else bad "inline secret refused without saying why"; fi

# 5. What check-config refuses starts nothing, with the reason in the log.
sed "0,/option provider 'log'/s//option provider 'nonsense'/" "$tmp/enabled" >"$tmp/broken"
: >"$tmp/log"
if start "$tmp/broken"; then bad "refused config started"; else ok; fi
if [ -s "$tmp/procd" ]; then bad "refused config started an instance"; else ok; fi
if grep -q 'logger .*daemon.err' "$tmp/log"; then ok; else bad "no error logged"; fi

echo "procd init: $passes passed, $fails failed"
[ "$fails" = 0 ]
