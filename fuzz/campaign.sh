#!/usr/bin/env bash
# The full fuzzing campaign (RELIABILITY.md, section "Fuzzing"): runs each
# target for RUNS executions (default 10 million) or MAX_SECONDS, one
# target at a time, from the seeds and the committed corpus, then
# minimizes what it found back into fuzz/corpus/<target>/.
#
#   nice -n 10 fuzz/campaign.sh                  # every target
#   RUNS=1000000 nice -n 10 fuzz/campaign.sh stanza owner
#
# Crashes stop the run and land in fuzz/artifacts/<target>/; keep them in
# fuzz/artifacts-kept/ with a regression test in the main crate.
set -euo pipefail
cd "$(dirname "$0")"

runs="${RUNS:-10000000}"
max_seconds="${MAX_SECONDS:-3600}"
max_len="${MAX_LEN:-4096}"
opts=(--sanitizer none --codegen-units 16)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

./seeds.sh
cargo +nightly fuzz build "${opts[@]}"
mkdir -p logs
for target in "${targets[@]}"; do
  work="corpus-work/$target"
  mkdir -p "$work" "corpus/$target"
  start=$(date +%s)
  cargo +nightly fuzz run "${opts[@]}" "$target" "$work" "corpus/$target" "seeds/$target" -- \
    -runs="$runs" -max_total_time="$max_seconds" -timeout=5 -rss_limit_mb=512 \
    -max_len="$max_len" -print_final_stats=1 2>"logs/$target.log"
  secs=$(($(date +%s) - start))
  # Minimize the union into the committed corpus.
  cp -n "corpus/$target"/* "seeds/$target"/* "$work"/ 2>/dev/null || true
  cargo +nightly fuzz cmin "${opts[@]}" "$target" "$work" 2>>"logs/$target.log"
  rm -rf "corpus/$target"
  cp -r "$work" "corpus/$target"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$target.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$target.log")
  echo "| $target | $execs | ${secs}s | $rate | $(ls "corpus/$target" | wc -l) files, $(du -sh "corpus/$target" | cut -f1) |"
done
