#!/bin/sh
# Lints the packaging files that cannot be built here: `sh -n` on every shell
# file, shellcheck when installed (Debian: shellcheck), the APKBUILD's
# required variables and functions (Alpine's abuild and its apkbuild-lint are
# not in Debian), the OpenWrt Makefile's recipe tabs and required
# definitions, and systemd-analyze on both systemd units. And what issue 18's
# operator tripped over: the conffile's comments against the .deb's unit
# (credential owner and mode), ExecReload in both units, the OpenWrt reload
# by SIGHUP and its uci-defaults, release sources and hashes in the Makefile
# and APKBUILD, and no file naming 5280 (Prosody's port) as this server's.
# shellcheck disable=SC2016 # the patterns below are literal text
set -eu
cd "$(dirname "$0")"
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

for f in alpine/APKBUILD alpine/push-appserver.initd alpine/push-appserver.confd \
	alpine/push-appserver.pre-install openwrt/files/push-appserver.init openwrt/files/push-appserver.uci-defaults \
	debian/postinst debian/postrm debian/ci-check.sh debian/test-postinst.sh openwrt/test/run.sh openwrt/test/init.sh \
	openwrt/test/uci-defaults.sh alpine/test-initd.sh build-static.sh release-hashes.sh lint.sh check.sh ../scripts/test; do
	[ -f "$f" ] || continue
	case $f in debian/ci-check.sh | build-static.sh | ../scripts/test) shell="bash" ;; *) shell="sh" ;; esac
	if $shell -n "$f"; then ok; else bad "$shell -n $f"; fi
done

if command -v shellcheck >/dev/null 2>&1; then
	# Variables that the framework around each file sets or reads.
	sc() { if shellcheck "$@"; then ok; else bad "shellcheck $*"; fi; }
	sc -s bash -e SC2034,SC2154 alpine/APKBUILD
	sc -s sh -e SC2034 alpine/push-appserver.initd alpine/push-appserver.confd
	sc -x -s sh alpine/push-appserver.pre-install debian/postinst debian/postrm debian/test-postinst.sh lint.sh check.sh \
		release-hashes.sh testlib.sh openwrt/test/run.sh openwrt/test/init.sh openwrt/test/uci-defaults.sh alpine/test-initd.sh
	# OpenWrt's ash has `local`; uci_validate_section sets the variables.
	sc -s sh -e SC2034,SC2154,SC3043 openwrt/files/push-appserver.init
	sc -s sh -e SC3043,SC1091,SC2317 openwrt/files/push-appserver.uci-defaults
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
# Includes by $(TOPDIR), not relative to feeds/packages/net/ (the Makefile
# works from any feed directory); the release tarball with a real hash (an
# all-zero one before the release, see release-hashes.sh; never skip); the
# project's URL, a maintainer with an address, the uci-defaults installed.
for want in 'include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk' 'PKG_BUILD_DEPENDS:=rust/host' \
	'DEPENDS:=$(RUST_ARCH_DEPENDS)' 'call RustBinPackage,push-appserver' 'USERID:=' \
	'Package/push-appserver/conffiles' 'call BuildPackage,push-appserver' \
	'PKG_SOURCE:=$(PKG_NAME)-$(PKG_VERSION).tar.gz' \
	'PKG_SOURCE_URL:=https://github.com/push-appserver/push-appserver/releases/download/v$(PKG_VERSION)/' \
	'URL:=https://github.com/push-appserver/push-appserver' \
	'./files/push-appserver.uci-defaults $(1)/etc/uci-defaults/push-appserver'; do
	if grep -qF "$want" openwrt/Makefile; then ok; else bad "Makefile lacks $want"; fi
done
if grep -n '^include \.\|^include [^$]' openwrt/Makefile; then bad "Makefile includes by a relative path (use \$(TOPDIR))"; else ok; fi
if grep -qE '^PKG_HASH:=[0-9a-f]{64}$' openwrt/Makefile; then ok; else bad "Makefile: PKG_HASH is not a SHA-256: $(grep '^PKG_HASH' openwrt/Makefile)"; fi
if grep -qE '^PKG_MAINTAINER:=[^<]+ <[^@ >]+@[^ >]+>$' openwrt/Makefile; then ok; else bad "Makefile: PKG_MAINTAINER is not 'Name <address>'"; fi
if grep -q 'xmpp\.org' openwrt/Makefile; then bad "Makefile points at the XEP, not the project"; else ok; fi
for want in 'USE_PROCD=1' 'procd_set_param respawn' 'procd_add_reload_trigger' 'uci_validate_section' \
	'^reload_service()' "procd_send_signal \"\$NAME\" '\*' HUP"; do
	if grep -q "$want" openwrt/files/push-appserver.init; then ok; else bad "procd init lacks $want"; fi
done
# A `file` parameter would make procd restart the server where reload is to HUP it.
if grep -n 'procd_set_param file' openwrt/files/push-appserver.init; then bad "procd init restarts on a changed TOML (procd_set_param file)"; else ok; fi
if [ -f openwrt/files/push-appserver.uci-defaults ] && grep -q '/dev/urandom' openwrt/files/push-appserver.uci-defaults; then ok; else
	bad "openwrt/files/push-appserver.uci-defaults (random component secret) missing"
fi

# APKBUILD: the release tarball by URL, sha512sums for every source (the
# tarball's all-zero until release-hashes.sh fills it; the local files'
# current), a maintainer with an address, the project's URL.
if grep -qE '^# Maintainer: [^<]+ <[^@ >]+@[^ >]+>$' alpine/APKBUILD; then ok; else bad "APKBUILD: Maintainer is not 'Name <address>'"; fi
if grep -qF 'source="$pkgname-$pkgver.tar.gz::https://github.com/push-appserver/push-appserver/releases/download/v$pkgver/$pkgname-$pkgver.tar.gz' alpine/APKBUILD; then ok; else
	bad "APKBUILD: the source is not the release tarball's URL"
fi
if grep -q 'xmpp\.org' alpine/APKBUILD; then bad "APKBUILD points at the XEP, not the project"; else ok; fi
apk_sum() { awk -v f="$1" '$2 == f && $1 ~ /^[0-9a-f]+$/ && length($1) == 128 { print $1 }' alpine/APKBUILD; }
apk_ver=$(sed -n 's/^pkgver=//p' alpine/APKBUILD)
if [ -n "$(apk_sum "push-appserver-$apk_ver.tar.gz")" ]; then ok; else bad "APKBUILD: no sha512sums line for push-appserver-$apk_ver.tar.gz"; fi
for f in push-appserver.initd push-appserver.confd; do
	if [ "$(apk_sum "$f")" = "$(sha512sum <"alpine/$f" | cut -d ' ' -f 1)" ]; then ok; else
		bad "APKBUILD: sha512sums of $f missing or stale (run packaging/release-hashes.sh)"
	fi
done
if [ "$(sed -n 's/^PKG_VERSION:=//p' openwrt/Makefile)" = "$apk_ver" ]; then ok; else bad "PKG_VERSION and pkgver differ"; fi
# release-hashes.sh fills both from a tarball (on copies).
tmp=$(mktemp -d)
mkdir -p "$tmp/openwrt" "$tmp/alpine"
cp release-hashes.sh "$tmp/" && cp openwrt/Makefile "$tmp/openwrt/" && cp alpine/APKBUILD alpine/push-appserver.initd alpine/push-appserver.confd "$tmp/alpine/"
echo release >"$tmp/push-appserver-$apk_ver.tar.gz"
if sh "$tmp/release-hashes.sh" "$tmp/push-appserver-$apk_ver.tar.gz" >/dev/null &&
	grep -qx "PKG_HASH:=$(sha256sum <"$tmp/push-appserver-$apk_ver.tar.gz" | cut -d ' ' -f 1)" "$tmp/openwrt/Makefile" &&
	grep -qx "$(sha512sum <"$tmp/push-appserver-$apk_ver.tar.gz" | cut -d ' ' -f 1)  push-appserver-$apk_ver.tar.gz" "$tmp/alpine/APKBUILD" &&
	[ "$(grep -c '  push-appserver' "$tmp/alpine/APKBUILD")" = 3 ]; then ok; else
	bad "release-hashes.sh did not fill PKG_HASH and sha512sums"
fi
rm -rf "$tmp"

# The conffile's comments against the .deb's unit: how the service reads
# credential files. Without LoadCredential= in the unit, the service user
# (User=/Group=) reads them itself: every comment paragraph about
# credentials or secrets that is not about the hand-install DynamicUser unit
# (packaging/push-appserver.service) must not send the operator to
# LoadCredential= and must name only modes that user can read (group-read
# with root:GROUP, or world-read), and one must say root:GROUP with such a mode.
deb_unit=debian/push-appserver.service
deb_group=$(sed -n 's/^Group=//p' "$deb_unit")
deb_lc=0
grep -q '^LoadCredential=' "$deb_unit" && deb_lc=1
hand_lc=0
grep -q '^LoadCredential=' push-appserver.service && hand_lc=1
if msg=$(awk -v group="$deb_group" -v lc="$deb_lc" -v hand_lc="$hand_lc" '
	function check(    p, hand, m, bits, readable, rest) {
		p = para; para = ""
		if (p == "" || tolower(p) !~ /credential|secret/) return
		hand = p ~ /packaging\/push-appserver\.service|DynamicUser/
		if (hand && p ~ /LoadCredential/ && !hand_lc) { print "names LoadCredential= for push-appserver.service, which has none:" p; bad = 1 }
		if (hand || lc) return
		if (p ~ /LoadCredential/) { print "names LoadCredential=, which " unit " lacks:" p; bad = 1 }
		rest = p
		while (match(rest, /(^|[^0-9])0[0-7][0-7][0-7]([^0-9]|$)/)) {
			m = substr(rest, RSTART, RLENGTH); gsub(/[^0-7]/, "", m); m = substr(m, length(m) - 2)
			readable = substr(m, 3, 1) ~ /[4-7]/ || (substr(m, 2, 1) ~ /[4-7]/ && index(p, "root:" group))
			if (!readable) { print "mode 0" m " is unreadable for the service (User/Group " group "):" p; bad = 1 }
			else if (index(p, "root:" group)) good = 1
			rest = substr(rest, RSTART + RLENGTH - 1)
		}
	}
	/^#/ { line = $0; sub(/^#[ \t]?/, "", line); if (line == "") check(); else para = para " " line; next }
	{ check() }
	END { check(); if (!good) { print "no comment says root:" group " with a mode the service reads"; bad = 1 }; exit bad }
' unit="$deb_unit" push-appserver.toml); then ok; else
	bad "push-appserver.toml comments disagree with $deb_unit: $msg"
fi

# Both systemd units reload by SIGHUP (the server re-reads its config).
for unit in debian/push-appserver.service push-appserver.service; do
	if grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"; then ok; else bad "$unit lacks ExecReload=/bin/kill -HUP \$MAINPID"; fi
done

# The HTTP port: 7874 (src/config/mod.rs DEFAULT_HTTP_PORT), not 5280, which
# is Prosody's and ejabberd's. A line may name 5280 only as theirs.
port=7874
if [ -f ../src/config/mod.rs ]; then
	port=$(sed -n 's/^pub const DEFAULT_HTTP_PORT: u16 = \([0-9]*\);/\1/p' ../src/config/mod.rs)
fi
if hits=$(grep -rn '5280' --exclude=lint.sh . | grep -vi 'prosody\|ejabberd'); then
	bad "files name 5280 as this server's port (now $port): $hits"
else ok; fi
for f in push-appserver.toml openwrt/files/push-appserver.config push-appserver.8; do
	if grep -q "127\.0\.0\.1:$port" "$f"; then ok; else bad "$f does not name the default port 127.0.0.1:$port"; fi
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
