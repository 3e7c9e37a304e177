# shellcheck shell=sh
# Sourced by the packaging test scripts: a temp dir removed at exit, the
# pass/fail counters and the summary line every script ends with.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# summary NAME: the counts; a failing status when any check failed.
summary() {
	echo "$1: $passes passed, $fails failed"
	[ "$fails" = 0 ]
}
