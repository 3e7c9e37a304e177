#!/bin/sh
# Tests the .deb's postinst off a real install, without root: adduser,
# getent, dpkg-statoverride and install are stubs that record their calls,
# and the script's /var and /etc paths point into a temporary root. Proves
# that `postinst configure` makes the data dir /var/lib/push-appserver
# (0700, owned by push-appserver) and /var/log/push-appserver itself, so the
# package works without systemd's StateDirectory= (a container, a chroot,
# sysvinit); that an existing data dir is left alone; and that the
# statoverrides of the config are set. debian/ci-check.sh checks the same
# with the real dpkg, as root.
# shellcheck disable=SC2016 # the stubs' text is literal
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testlib.sh
. "$here/../testlib.sh"

root=$tmp/root
calls=$tmp/calls
mkdir -p "$tmp/bin" "$root/etc/push-appserver"
: >"$root/etc/push-appserver/push-appserver.toml"
stub() { printf '#!/bin/sh\necho "%s $*" >>"%s"\n%s\n' "$1" "$calls" "${2:-exit 0}" >"$tmp/bin/$1"; chmod 755 "$tmp/bin/$1"; }
stub adduser
stub getent 'exit 2'
# --list finds no override: postinst adds them.
stub dpkg-statoverride 'case $1 in --list) exit 1 ;; esac; exit 0'
# install -d [-o U] [-g G] [-m MODE] DIR: records, makes DIR with MODE.
stub install 'mode=; while [ $# -gt 1 ]; do case $1 in -m) mode=$2; shift ;; -o | -g) shift ;; esac; shift; done; mkdir -p "$1"; [ -z "$mode" ] || chmod "$mode" "$1"'
sed "s#\([[:space:]]\)/var/#\1$root/var/#g; s#\([[:space:]]\)/etc/#\1$root/etc/#g" "$here/postinst" >"$tmp/postinst"

run() { : >"$calls"; PATH="$tmp/bin:$PATH" sh "$tmp/postinst" "$@" 2>>"$tmp/log"; }

if run configure; then ok; else bad "postinst configure failed: $(cat "$tmp/log")"; fi
if grep -q "^adduser --system" "$calls"; then ok; else bad "no system user created"; fi
data=$root/var/lib/push-appserver
if [ -d "$data" ]; then ok; else bad "postinst did not create /var/lib/push-appserver (StateDirectory= alone needs systemd)"; fi
if grep -qxF "install -d -o push-appserver -g push-appserver -m 0700 $data" "$calls"; then ok; else
	bad "data dir not made 0700 for push-appserver: $(grep '^install' "$calls" || echo 'no install call')"
fi
if [ -d "$data" ] && [ "$(stat -c %a "$data")" = 700 ]; then ok; else bad "data dir mode is not 0700"; fi
if [ -d "$root/var/log/push-appserver" ]; then ok; else bad "postinst did not create /var/log/push-appserver"; fi
if grep -qxF "dpkg-statoverride --update --add root push-appserver 0640 $root/etc/push-appserver/push-appserver.toml" "$calls"; then ok; else
	bad "config statoverride missing"
fi

# An upgrade keeps an existing data dir as it is.
chmod 0750 "$data" 2>/dev/null || mkdir -p "$data"
if run configure 0.1.0-1; then ok; else bad "postinst configure (upgrade) failed"; fi
if grep -q "install .*$data" "$calls"; then bad "upgrade re-made the existing data dir"; else ok; fi
if [ "$(stat -c %a "$data")" = 750 ]; then ok; else bad "upgrade changed the mode of the data dir"; fi

summary "deb postinst"
