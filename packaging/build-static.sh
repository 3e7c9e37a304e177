#!/usr/bin/env bash
# Builds static (musl) release binaries of push-appserver, checks that they
# are static, prints their sizes and smoke-runs each one (the foreign-CPU ones
# under qemu-user-static).
#
#   packaging/build-static.sh                  # x86_64 + aarch64
#   packaging/build-static.sh aarch64-unknown-linux-musl
#
# Targets: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl.
# On Debian/Ubuntu, run as root once to install what is missing (musl-tools,
# gcc-aarch64-linux-gnu, qemu-user-static, file); as another user it only
# says what to install. Linker settings live in .cargo/config.toml; Cross.toml
# serves the same targets through `cross` for hosts with docker.
#
# Environment: CARGO_TARGET_DIR (default: target), SKIP_RUN=1 skips the smoke
# runs. Binaries are copied to $CARGO_TARGET_DIR/dist/.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
export CARGO_TARGET_DIR="$target_dir"
dist="$target_dir/dist"
example="$repo/packaging/push-appserver.toml"
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
fi

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-static: %s\n' "$*" >&2; exit 1; }

host_arch=$(uname -m)

# Per target: the Debian packages it needs, the commands they provide, and
# the program that runs the result on this host (empty: runs natively).
apt_pkgs=(file)
need_cmds=(file)
declare -A runner=()
for t in "${targets[@]}"; do
  case $t in
    x86_64-unknown-linux-musl)
      # musl-gcc compiles ring's C code against musl's headers.
      apt_pkgs+=(musl-tools); need_cmds+=(musl-gcc)
      if [ "$host_arch" = x86_64 ]; then runner[$t]=""; else
        apt_pkgs+=(qemu-user-static); need_cmds+=(qemu-x86_64-static)
        runner[$t]=qemu-x86_64-static
      fi ;;
    aarch64-unknown-linux-musl)
      apt_pkgs+=(gcc-aarch64-linux-gnu); need_cmds+=(aarch64-linux-gnu-gcc)
      if [ "$host_arch" = aarch64 ]; then runner[$t]=""; else
        apt_pkgs+=(qemu-user-static); need_cmds+=(qemu-aarch64-static)
        runner[$t]=qemu-aarch64-static
      fi ;;
    *)
      die "unsupported target $t (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl; others through cross and Cross.toml)" ;;
  esac
done

# --- Tools -------------------------------------------------------------------
missing=()
for c in "${need_cmds[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${apt_pkgs[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $pkgs(missing: ${missing[*]})"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    die "missing ${missing[*]}; as root: apt-get install $pkgs"
  fi
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed)
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || { say "rustup target add $t"; rustup target add "$t"; }
  done
else
  say "no rustup: assuming the Rust standard library for ${targets[*]} is installed"
fi

# --- Build (one target at a time) ---------------------------------------------
for t in "${targets[@]}"; do
  say "cargo build --release --locked --target $t"
  cargo build --release --locked --target "$t" --bin push-appserver
done

# --- Check, measure, smoke-run ------------------------------------------------
mkdir -p "$dist"
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A copy of the example config that can run here: data in a temporary folder,
# HTTP on a free port, the component pointed at a closed loopback port (the
# link just keeps retrying).
sed -e "s|^data_dir = .*|data_dir = \"$tmp/data\"|" \
    -e 's|^listen = .*|listen = "127.0.0.1:0"|' \
    -e 's|^server = "127.0.0.1:5347"|server = "127.0.0.1:1"|' \
    "$example" >"$tmp/run.toml"

summary=()
for t in "${targets[@]}"; do
  bin="$target_dir/$t/release/push-appserver"
  [ -x "$bin" ] || die "$bin was not built"
  say "$t"
  desc=$(file -b "$bin")
  echo "file: $desc"
  case $desc in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) die "$bin is not statically linked" ;;
  esac
  # ldd prints "not a dynamic executable" (exit 1) or "statically linked";
  # any "=>" line would be a shared library.
  lddout=$(ldd "$bin" 2>&1 || true)
  echo "ldd: $(echo "$lddout" | tr -s ' \t\n' ' ')"
  if grep -q '=>' <<<"$lddout"; then die "$bin needs shared libraries"; fi
  if command -v readelf >/dev/null 2>&1 && readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    die "$bin has NEEDED entries: $(readelf -d "$bin" | grep NEEDED)"
  fi
  size=$(stat -c %s "$bin")
  printf 'size: %s bytes (%s KiB)\n' "$size" $((size / 1024))
  cp "$bin" "$dist/push-appserver-$version-$t"

  if [ "${SKIP_RUN:-0}" = 1 ]; then
    summary+=("$(printf '%-30s %9s bytes  (not run)' "$t" "$size")")
    continue
  fi
  run=${runner[$t]}
  # shellcheck disable=SC2086
  out=$($run "$bin" --version) || die "$t: --version failed"
  echo "run: $out"
  [ "$out" = "push-appserver $version" ] || die "$t: unexpected --version output: $out"
  # shellcheck disable=SC2086
  $run "$bin" check-config --config "$example" >"$tmp/check.out" 2>&1 ||
    { cat "$tmp/check.out" >&2; die "$t: check-config refused $example"; }
  echo "run: $(tail -n1 "$tmp/check.out")"

  # Start the server for 2 s, make sure it stays up, then stop it with SIGTERM.
  rm -rf "$tmp/data"
  # shellcheck disable=SC2086
  $run "$bin" run --config "$tmp/run.toml" >"$tmp/run.log" 2>&1 &
  pid=$!
  sleep 2
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$tmp/run.log" >&2; pid=; die "$t: the server exited during its first 2 s"
  fi
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  pid=
  if [ -n "$run" ]; then
    rss_note="(under $run; not the binary's own RSS)"
  else
    rss_note="idle RSS after 2 s: ${rss} KiB"
  fi
  echo "run: server started and stopped on SIGTERM (exit $rc); $rss_note"
  [ -s "$tmp/data/server.key" ] || die "$t: the server did not create its data_dir"
  if [ -n "$run" ]; then note="ran under $run"; else note="idle RSS ${rss} KiB"; fi
  summary+=("$(printf '%-30s %9s bytes  %s' "$t" "$size" "$note")")
done

echo
say "static binaries in $dist"
printf '%s\n' "${summary[@]}"
