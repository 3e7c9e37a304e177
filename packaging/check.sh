#!/bin/sh
# The packaging checks that scripts/test runs after the cargo tests: lint of
# the Alpine/OpenWrt/Debian files, the OpenWrt UCI -> TOML conversion, and
# (as root) the .deb built, installed, run, removed and purged.
# SKIP_DEB=1 leaves out the .deb (it builds a release binary).
set -eu
cd "$(dirname "$0")"
sh ./lint.sh
sh ./openwrt/test/run.sh
if [ "${SKIP_DEB:-0}" = 1 ]; then
	echo "packaging: SKIP_DEB=1: the .deb check was skipped" >&2
else
	bash ./debian/ci-check.sh
fi
