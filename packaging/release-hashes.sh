#!/bin/sh
# Writes the source hashes of a release into the OpenWrt Makefile (PKG_HASH,
# SHA-256 of the tarball) and the Alpine APKBUILD (sha512sums: the tarball,
# push-appserver.initd and push-appserver.confd, as `abuild checksum` would).
#
#   git archive --prefix=push-appserver-0.1.0/ -o push-appserver-0.1.0.tar.gz v0.1.0
#   packaging/release-hashes.sh push-appserver-0.1.0.tar.gz
#   # upload the tarball to the v0.1.0 release, commit the two files
#
# Without an argument only the hashes of the Alpine init and conf.d files are
# refreshed (after editing them; lint.sh checks that they match). The
# tarball must be named push-appserver-VERSION.tar.gz with the VERSION of
# both files (PKG_VERSION, pkgver).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "release-hashes: $*" >&2; exit 1; }
makefile=$here/openwrt/Makefile
apkbuild=$here/alpine/APKBUILD
version=$(sed -n 's/^PKG_VERSION:=//p' "$makefile")
pkgver=$(sed -n 's/^pkgver=//p' "$apkbuild")
if [ -z "$version" ] || [ "$version" != "$pkgver" ]; then die "PKG_VERSION ($version) and pkgver ($pkgver) differ"; fi
name=push-appserver-$version.tar.gz
old512=$(awk -v f="$name" '$2 == f { print $1 }' "$apkbuild")
if [ $# -ge 1 ]; then
	[ -f "$1" ] || die "$1: no such file"
	[ "$(basename "$1")" = "$name" ] || die "$1: expected $name"
	sha256=$(sha256sum <"$1" | cut -d ' ' -f 1)
	sha512=$(sha512sum <"$1" | cut -d ' ' -f 1)
	sed -i "s/^PKG_HASH:=.*/PKG_HASH:=$sha256/" "$makefile"
else
	sha512=${old512:-$(printf '%0128d' 0)}
fi
initd=$(sha512sum <"$here/alpine/push-appserver.initd" | cut -d ' ' -f 1)
confd=$(sha512sum <"$here/alpine/push-appserver.confd" | cut -d ' ' -f 1)
# The sha512sums="..." block is the end of the APKBUILD: replaced whole.
awk -v t="$sha512  $name" -v i="$initd  push-appserver.initd" -v c="$confd  push-appserver.confd" '
	/^sha512sums="/ { print "sha512sums=\""; print t; print i; print c; print "\""; skip = 1; next }
	skip { if ($0 ~ /"$/) skip = 0; next }
	{ print }
' "$apkbuild" >"$apkbuild.new"
cat "$apkbuild.new" >"$apkbuild"
rm -f "$apkbuild.new"
echo "release-hashes: $name: PKG_HASH $(sed -n 's/^PKG_HASH:=//p' "$makefile"), sha512 $sha512"
