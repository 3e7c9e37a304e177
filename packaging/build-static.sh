#!/usr/bin/env bash
# Moved: scripts/build-static builds and proves the static binaries,
# scripts/smoke-static runs one through a real smoke test, scripts/ci-static
# does both as CI does (docs/static-builds.md). Kept so older instructions
# still work.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/build-static "$@"
