#!/bin/sh
# Tests uci2toml.awk (the UCI -> TOML conversion of the OpenWrt init script)
# off the router: with every awk found here (busybox awk is OpenWrt's), the
# shipped /etc/config/push-appserver, full.show and operating.show give
# exactly default.toml, full.toml and operating.toml, log_format is
# "journal" unless set to 'plain' (logd stamps the time), malformed input is
# refused, and `push-appserver check-config` accepts the results. Binary: $PUSH_APPSERVER_BIN, else one in target/ (a
# debug build is made when there is none).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
conv="$here/../files/uci2toml.awk"
# shellcheck source=testlib.sh
. "$here/../../testlib.sh"

awks=""
for a in awk mawk gawk original-awk; do
	command -v "$a" >/dev/null 2>&1 && awks="$awks $a"
done
busybox awk 'BEGIN {}' </dev/null >/dev/null 2>&1 && awks="$awks busybox-awk"
echo "uci2toml: awks:$awks"

awk -v config=push-appserver -f "$here/uci-show.awk" "$here/../files/push-appserver.config" >"$tmp/default.show"

for a in $awks; do
	case $a in busybox-awk) run="busybox awk" ;; *) run=$a ;; esac
	$run -f "$conv" <"$tmp/default.show" >"$tmp/default.$a.toml" || bad "$a: default conversion failed"
	$run -f "$conv" <"$here/full.show" >"$tmp/full.$a.toml" || bad "$a: full conversion failed"
	# operating.show: the [metrics] table and log_format (a fragment, so it
	# is compared only, not given to check-config).
	$run -f "$conv" <"$here/operating.show" >"$tmp/operating.$a.toml" || bad "$a: operating conversion failed"
	for name in default full operating; do
		if diff -u "$here/$name.toml" "$tmp/$name.$a.toml"; then ok; else bad "$a: $name differs from $name.toml"; fi
	done
	# log_format: unset (above) or 'auto' gives "journal" (logd stamps the
	# time; the server cannot tell it runs under procd), 'plain' stays.
	for lf in auto:journal plain:plain journal:journal; do
		got=$(printf "push-appserver.main=push-appserver\npush-appserver.main.log_format='%s'\n" "${lf%%:*}" | $run -f "$conv" | grep '^log_format')
		if [ "$got" = "log_format = \"${lf#*:}\"" ]; then ok; else bad "$a: log_format '${lf%%:*}' gave: $got"; fi
	done
	# Not `uci show` output, or a section type it does not know: refused.
	for input in "garbage" "push-appserver.x.y='unterminated" "push-appserver.s=other" \
		"push-appserver.@app[0]=app" "push-appserver.nosection.opt='v'"; do
		if printf '%s\n' "$input" | $run -f "$conv" >/dev/null 2>&1; then
			bad "$a accepted: $input"
		else ok; fi
	done
done

bin=${PUSH_APPSERVER_BIN:-}
if [ -z "$bin" ]; then
	for b in target/debug/push-appserver target/release/push-appserver \
		target/x86_64-unknown-linux-musl/release/push-appserver; do
		[ -x "$repo/${CARGO_TARGET_DIR:-target}/${b#target/}" ] && { bin="$repo/${CARGO_TARGET_DIR:-target}/${b#target/}"; break; }
	done
fi
if [ -z "$bin" ]; then
	(cd "$repo" && cargo build --locked --bin push-appserver)
	bin="$repo/${CARGO_TARGET_DIR:-target}/debug/push-appserver"
fi

# check-config on the conversions, credential paths moved into $tmp.
mkdir -p "$tmp/cc"
printf 'home\n' >"$tmp/cc/home-secret"
printf 'other\n' >"$tmp/cc/other secret"
printf 'default\n' >"$tmp/cc/component-secret"
sed "s#@DIR@#$tmp/cc#g" "$here/full.show" | awk -f "$conv" >"$tmp/cc/full.toml"
sed "s#/etc/push-appserver/#$tmp/cc/#g" "$tmp/default.show" | awk -f "$conv" >"$tmp/cc/default.toml"
for name in full default; do
	if "$bin" check-config --config "$tmp/cc/$name.toml" >"$tmp/out" 2>&1; then ok; else
		cat "$tmp/out" >&2; bad "check-config refused the $name conversion"
	fi
done
# The shipped UCI config logs without the server's own timestamps (logd
# stamps them): journal style, whatever JOURNAL_STREAM says here.
if "$bin" check-config --config "$tmp/cc/default.toml" 2>/dev/null | grep -qx 'log_format = "journal"'; then ok; else
	bad "check-config: the shipped UCI config's log_format does not resolve to journal"
fi
if "$bin" check-config --config "$tmp/cc/full.toml" 2>/dev/null | grep -q 'push.other.example'; then ok; else
	bad "check-config output lacks the second component"
fi
# check-config is the gate for what UCI cannot type-check.
sed "s#@DIR@#$tmp/cc#g; s#provider='log'#provider='nonsense'#" "$here/full.show" | awk -f "$conv" >"$tmp/cc/bad.toml"
if "$bin" check-config --config "$tmp/cc/bad.toml" >/dev/null 2>&1; then bad "check-config accepted provider nonsense"; else ok; fi

summary "uci2toml"
