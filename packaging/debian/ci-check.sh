#!/usr/bin/env bash
# Builds the .deb from the static x86_64 musl binary and proves it on this
# machine (as root; CI runs it from scripts/test):
#   dpkg -i (the data dir made by postinst, without systemd), check-config on
#   the shipped conffile, the installed binary run as
#   the system user with a test config answering /push_appserver/v1/health,
#   a reinstall keeping an edited conffile, dpkg -r (conffile kept),
#   dpkg -P (conffile, statoverrides, state removed), nothing left running.
# Needs: cargo-deb (installed with `cargo install cargo-deb --locked` when
# missing: about 9 minutes on a busy 2-core machine), musl-tools (for ring), curl, dpkg. Without root it only builds.
#
# Environment: CARGO_TARGET_DIR (default: target); DEB_SKIP_BUILD=1 uses the
# binary already in target/x86_64-unknown-linux-musl/release/.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
target=x86_64-unknown-linux-musl
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
bin="$target_dir/$target/release/push-appserver"
pkg=push-appserver
conf=/etc/push-appserver/push-appserver.toml

say() { printf '==> deb: %s\n' "$*"; }
fail() { printf 'deb check FAILED: %s\n' "$*" >&2; exit 1; }

# 1. The static binary (scripts/build-static when another branch provides it).
# Without the musl target (rustup cannot fetch it), the package is built from
# the host's glibc binary, with a warning, so that the packaging is still
# proven.
deb_target=(--target "$target")
if [ "${DEB_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$bin" ]; then
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target" &&
    ! rustup target add "$target" >/dev/null 2>&1; then
    echo "WARNING: deb: the $target target is missing and cannot be installed:" \
      "building the .deb from the host (glibc) binary instead of the static one" >&2
    target=host
    bin="$target_dir/release/push-appserver"
    deb_target=()
    cargo build --release --locked --bin push-appserver
  elif [ -x scripts/build-static ]; then
    scripts/build-static "$target"
  else
    cargo build --release --locked --target "$target"
  fi
fi
[ -x "$bin" ] || fail "no binary at $bin"
static=1
if [ "$target" != host ]; then
  file -L "$bin" | grep -Eq 'statically linked|static-pie linked' || fail "$bin is not static: $(file -L "$bin")"
else
  static=0
fi

# 2. The package.
if ! command -v cargo-deb >/dev/null 2>&1; then
  say "installing cargo-deb"
  start=$(date +%s)
  cargo install cargo-deb --version 3.8.0 --locked --quiet
  say "cargo-deb installed in $(( $(date +%s) - start ))s"
fi
out="$target_dir/debian"
mkdir -p "$out"
rm -f "$out"/push-appserver_*.deb
cargo deb --no-build --no-strip "${deb_target[@]}" --output "$out/" >/dev/null
deb=$(ls "$out"/push-appserver_*.deb)
say "built $deb ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb --info "$deb" | sed 's/^/    /'
dpkg-deb --contents "$deb" | awk '{print "    " $1, $2, $6}'

contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/push-appserver ./etc/push-appserver/push-appserver.toml \
  ./usr/lib/systemd/system/push-appserver.service ./usr/share/doc/push-appserver/copyright \
  ./usr/share/man/man8/push-appserver.8; do
  grep -Eq " ${path//./\\.}(\.gz)?$" <<<"$contents" || fail "$path missing from the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx "$conf" || fail "$conf is not a conffile"
if command -v lintian >/dev/null 2>&1; then
  # Informative: a cargo-deb package is not a Debian-archive package.
  lintian --tag-display-limit 0 "$deb" 2>&1 | sed 's/^/    lintian: /' || true
fi
# The unit itself is checked with systemd-analyze by packaging/lint.sh.

if [ "$(id -u)" != 0 ]; then
  say "not root: built and inspected only (install, run and removal need root)"
  exit 0
fi

# 3. Install.
running() { pgrep -u "$pkg" >/dev/null 2>&1; }
# The check purges the package at the end: never on a machine where it is in
# real use (outside CI, an installed one is left alone).
if dpkg -s "$pkg" >/dev/null 2>&1 && [ "${CI:-}" != true ]; then
  say "$pkg is installed here: install, run and removal skipped (CI=true forces them)"
  exit 0
fi
dpkg -P "$pkg" >/dev/null 2>&1 || true
dpkg -i "$deb" >/dev/null
[ -x /usr/bin/push-appserver ] || fail "binary not installed"
if [ "$static" = 1 ]; then
  file -L /usr/bin/push-appserver | grep -Eq 'statically linked|static-pie linked' || fail "installed binary is not the static one"
fi
getent passwd "$pkg" >/dev/null || fail "system user not created"
wants=/etc/systemd/system/multi-user.target.wants/push-appserver.service
[ -L "$wants" ] || fail "unit not enabled"
uid=$(id -u "$pkg"); [ "$uid" -lt 1000 ] || fail "user $pkg is not a system user (uid $uid)"
[ "$(stat -c '%U:%G %a' "$conf")" = "root:$pkg 640" ] || fail "conffile owner/mode: $(stat -c '%U:%G %a' "$conf")"
[ "$(stat -c '%U:%G %a' /etc/push-appserver)" = "root:$pkg 750" ] || fail "config dir owner/mode"
# Made by postinst itself: systemd does not run here, so StateDirectory= has
# not made it (a container, a chroot, sysvinit).
[ "$(stat -c '%U:%G %a' /var/lib/push-appserver 2>/dev/null)" = "$pkg:$pkg 700" ] ||
  fail "data dir /var/lib/push-appserver owner/mode: $(stat -c '%U:%G %a' /var/lib/push-appserver 2>&1)"
/usr/bin/push-appserver --version
/usr/bin/push-appserver --help | grep -q check-config || fail "--help"
man -l /usr/share/man/man8/push-appserver.8* >/dev/null 2>&1 || [ -s /usr/share/man/man8/push-appserver.8.gz ] || [ -s /usr/share/man/man8/push-appserver.8 ] || fail "man page"

say "check-config on the shipped conffile"
/usr/bin/push-appserver check-config --config "$conf" >/dev/null || fail "shipped config refused"
# Inert as shipped: the unit's ExecCondition (run here as systemd would, by
# /bin/sh) skips the start while the secret is the placeholder.
cond=$(sed -n "s/^ExecCondition=\/bin\/sh -c '\(.*\)'$/\1/p" /usr/lib/systemd/system/push-appserver.service)
[ -n "$cond" ] || fail "no ExecCondition in the unit"
if /bin/sh -c "$cond"; then fail "ExecCondition lets the placeholder config start"; fi

say "the installed binary as user $pkg with a test config"
work=$(mktemp -d)
install -d -o "$pkg" -g "$pkg" -m 0700 "$work/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/test.toml" <<TOML
data_dir = "$work/data"
[http]
listen = "127.0.0.1:$port"
[[component]]
jid = "push.deb.test"
server = "127.0.0.1:9"
secret = "deb-test-secret"
types = ["fcm"]
[app.fcm]
provider = "log"
TOML
chmod 0755 "$work"; chmod 0644 "$work/test.toml"
setpriv --reuid="$pkg" --regid="$pkg" --clear-groups --no-new-privs \
  /usr/bin/push-appserver run --config "$work/test.toml" >"$work/log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 100); do
  if curl -fsS --max-time 2 "http://127.0.0.1:$port/push_appserver/v1/health" 2>/dev/null | grep -q RUNNING; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ "$ok" = 1 ] || { cat "$work/log" >&2; fail "no RUNNING on /health"; }
[ "$(ps -o user= -p "$pid" | tr -d ' ')" = "$pkg" ] || fail "not running as $pkg"
reg=$(curl -fsS --max-time 2 -d 'type=fcm&node=deb-node&token=deb-token' "http://127.0.0.1:$port/push_appserver/v1/register")
[ "$(head -n1 <<<"$reg")" = OK ] || fail "register answered: $reg"
[ "$(stat -c %U "$work/data/server.key" 2>/dev/null)" = "$pkg" ] || fail "store not written as $pkg"
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "no exit within 10 s of SIGTERM"; fi
wait "$pid" || fail "exit status $? after SIGTERM"
rm -rf "$work"

say "reinstall keeps an edited conffile"
sed -i 's/^secret = "CHANGE-ME[^"]*"/secret = "edited-by-the-admin"/' "$conf"
dpkg -i --force-confold "$deb" >/dev/null
grep -q 'edited-by-the-admin' "$conf" || fail "reinstall replaced the edited conffile"
if /bin/sh -c "$cond"; then :; else fail "ExecCondition refuses a configured secret"; fi

say "dpkg -r keeps the conffile"
dpkg -r "$pkg" >/dev/null
[ ! -e /usr/bin/push-appserver ] || fail "binary left after dpkg -r"
[ -f "$conf" ] || fail "dpkg -r removed the conffile"
dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: deinstall ok config-files' || fail "not in state config-files"

say "dpkg -P removes it"
dpkg -P "$pkg" >/dev/null
[ ! -e "$conf" ] || fail "dpkg -P left $conf"
[ ! -e /etc/push-appserver ] || fail "dpkg -P left /etc/push-appserver"
[ ! -e /usr/lib/systemd/system/push-appserver.service ] || fail "unit left"
if [ -e "$wants" ] || [ -L "$wants" ]; then fail "unit still enabled after purge"; fi
if dpkg-statoverride --list | grep -q push-appserver; then fail "statoverride left"; fi
if dpkg -s "$pkg" >/dev/null 2>&1; then fail "package still known to dpkg"; fi
if running; then pgrep -a -u "$pkg" >&2; fail "processes of $pkg still running"; fi
say "passed"
