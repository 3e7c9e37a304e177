#!/bin/sh
# Lints the packaging files that cannot be built here: `sh -n` on every shell
# file, shellcheck when installed (Debian: shellcheck), the APKBUILD's
# required variables and functions (Alpine's abuild and its apkbuild-lint are
# not in Debian), the OpenWrt Makefile's recipe tabs and required
# definitions, and systemd-analyze on the hand-install unit.
# shellcheck disable=SC2016 # the patterns below are literal text
set -eu
cd "$(dirname "$0")"
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

for f in alpine/APKBUILD alpine/push-appserver.initd alpine/push-appserver.confd \
	alpine/push-appserver.pre-install openwrt/files/push-appserver.init \
	debian/postinst debian/postrm debian/ci-check.sh openwrt/test/run.sh openwrt/test/init.sh alpine/test-initd.sh build-static.sh lint.sh check.sh ../scripts/test; do
	[ -f "$f" ] || continue
	case $f in debian/ci-check.sh | build-static.sh | ../scripts/test) shell="bash" ;; *) shell="sh" ;; esac
	if $shell -n "$f"; then ok; else bad "$shell -n $f"; fi
done

if command -v shellcheck >/dev/null 2>&1; then
	# Variables that the framework around each file sets or reads.
	sc() { if shellcheck "$@"; then ok; else bad "shellcheck $*"; fi; }
	sc -s bash -e SC2034,SC2154 alpine/APKBUILD
	sc -s sh -e SC2034 alpine/push-appserver.initd alpine/push-appserver.confd
	sc -s sh alpine/push-appserver.pre-install debian/postinst debian/postrm lint.sh check.sh openwrt/test/run.sh openwrt/test/init.sh alpine/test-initd.sh
	# OpenWrt's ash has `local`; uci_validate_section sets the variables.
	sc -s sh -e SC2034,SC2154,SC3043 openwrt/files/push-appserver.init
	sc -s bash debian/ci-check.sh ../scripts/test
else
	echo "lint: shellcheck not installed: only sh -n was run" >&2
fi

# APKBUILD: what abuild requires.
for v in pkgname pkgver pkgrel pkgdesc url arch license source; do
	if grep -q "^$v=" alpine/APKBUILD; then ok; else bad "APKBUILD lacks $v"; fi
done
for want in 'options="net"' 'cargo auditable build --release --frozen' 'subpackages=.*-openrc' \
	'pkgusers="push-appserver"' 'pkggroups="push-appserver"' 'install="$pkgname.pre-install"'; do
	if grep -q "$want" alpine/APKBUILD; then ok; else bad "APKBUILD lacks $want"; fi
done
for fn in prepare build check package; do
	if grep -q "^$fn()" alpine/APKBUILD; then ok; else bad "APKBUILD lacks $fn()"; fi
done
for want in 'supervisor="supervise-daemon"' 'command_user' 'checkpath' 'need net' '--signal HUP'; do
	if grep -q -- "$want" alpine/push-appserver.initd; then ok; else bad "initd lacks $want"; fi
done

# OpenWrt Makefile: make syntax (recipes tab-indented) and the feed's pieces.
if grep -n '^    \$(' openwrt/Makefile; then bad "Makefile recipe lines must start with a tab"; else ok; fi
for want in 'include ../../lang/rust/rust-package.mk' 'PKG_BUILD_DEPENDS:=rust/host' \
	'DEPENDS:=$(RUST_ARCH_DEPENDS)' 'call RustBinPackage,push-appserver' 'USERID:=' \
	'Package/push-appserver/conffiles' 'call BuildPackage,push-appserver'; do
	if grep -qF "$want" openwrt/Makefile; then ok; else bad "Makefile lacks $want"; fi
done
for want in 'USE_PROCD=1' 'procd_set_param respawn' 'procd_add_reload_trigger' 'uci_validate_section'; do
	if grep -q "$want" openwrt/files/push-appserver.init; then ok; else bad "procd init lacks $want"; fi
done

# Both systemd units: systemd-analyze verify exits 0 even on unknown keys and
# unparsable values, so its messages are the verdict. The binary path is
# pointed at an existing file (verify checks that it exists).
if command -v systemd-analyze >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	for unit in debian/push-appserver.service push-appserver.service; do
		sed 's#/usr/s\{0,1\}bin/push-appserver#/bin/true#g; s#/usr/local/bin/push-appserver#/bin/true#g' \
			"$unit" >"$tmp/push-appserver.service"
		systemd-analyze verify --man=no "$tmp/push-appserver.service" >"$tmp/out" 2>&1 || true
		if grep -Ei 'unknown|failed|invalid|ignoring|not found|bad' "$tmp/out" >&2; then
			bad "systemd-analyze verify $unit"
		else ok; fi
	done
	rm -rf "$tmp"
else
	echo "lint: systemd-analyze not installed: the units were not verified" >&2
fi

# The pairing examples parse (Prosody's config is Lua; ejabberd's YAML).
if command -v luac >/dev/null 2>&1; then
	if luac -p examples/prosody.cfg.lua; then ok; else bad "examples/prosody.cfg.lua does not parse"; fi
	rm -f luac.out
fi
if python3 -c 'import yaml' 2>/dev/null; then
	if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' examples/ejabberd.yml; then ok; else
		bad "examples/ejabberd.yml does not parse"
	fi
fi

echo "packaging lint: $passes passed, $fails failed"
[ "$fails" = 0 ]
