#!/usr/bin/env bash
# Fuzz smoke run for CI: builds the fuzz crate and runs every target for a
# few seconds against the committed corpus in fuzz/corpus/<target>/. The
# corpus is only read: new inputs go to a temporary folder. Needs a nightly
# toolchain and cargo-fuzz; without them it says so and exits 0.
#
#   fuzz/smoke.sh                      # 10 s per target
#   FUZZ_SMOKE_SECONDS=60 fuzz/smoke.sh
#
# The full campaign and its figures: RELIABILITY.md, section "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SMOKE_SECONDS:-10}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz smoke: skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
  exit 0
fi

# The same build options as the campaign: without ASan (the code under test
# is safe Rust; every target caps single allocations at 64 MiB itself),
# release with debug assertions, 16 codegen units for a faster build.
opts=(--sanitizer none --codegen-units 16)
cargo +nightly fuzz build "${opts[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target" "corpus/$target"
  echo "fuzz smoke: $target for ${seconds}s"
  # Inputs up to the default stanza limit (256 KiB), and an input that
  # takes over a second fails like a crash: a slow (quadratic) path is a
  # stall of the whole process.
  cargo +nightly fuzz run "${opts[@]}" "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=262144 -timeout=1 -rss_limit_mb=512 -print_final_stats=1 \
    2>"$work/$target.log" || {
    tail -n 60 "$work/$target.log"
    echo "fuzz smoke: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  }
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$work/$target.log" | tr '\n' ' '
  echo
done
echo "fuzz smoke: all targets ran clean"
