#!/bin/sh
# The packaging checks that scripts/test runs after the cargo tests: lint of
# the Alpine/OpenWrt/Debian files (and their agreement: lint.sh), the .deb's
# postinst, the OpenWrt UCI -> TOML conversion, procd init and uci-defaults,
# the Alpine OpenRC script and package(), and
# (as root) the .deb built, installed, run, removed and purged.
# SKIP_DEB=1 leaves out the .deb (it builds a release binary).
set -eu
cd "$(dirname "$0")"
sh ./lint.sh
sh ./debian/test-postinst.sh
# The binary the OpenWrt tests run check-config with: the one cargo test
# just built, else any other in the target dir, else a debug build.
target_dir=${CARGO_TARGET_DIR:-../target}
case $target_dir in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
if [ -z "${PUSH_APPSERVER_BIN:-}" ]; then
	for b in debug release x86_64-unknown-linux-musl/release; do
		if [ -x "$target_dir/$b/push-appserver" ]; then PUSH_APPSERVER_BIN="$target_dir/$b/push-appserver"; break; fi
	done
fi
if [ -z "${PUSH_APPSERVER_BIN:-}" ]; then
	(cd .. && cargo build --locked --bin push-appserver)
	PUSH_APPSERVER_BIN="$target_dir/debug/push-appserver"
fi
export PUSH_APPSERVER_BIN
sh ./openwrt/test/run.sh
sh ./openwrt/test/init.sh
sh ./openwrt/test/uci-defaults.sh
sh ./alpine/test-initd.sh
if [ "${SKIP_DEB:-0}" = 1 ]; then
	echo "packaging: SKIP_DEB=1: the .deb check was skipped" >&2
else
	bash ./debian/ci-check.sh
fi
