#!/usr/bin/env bash
# Measures the daggerpool command on a 100 000-job workflow (random shape,
# core.noop): wall time and peak RSS of `validate` and `run`, three times each
# (GNU time %e and %M, median of three). The runs keep no state
# (--no-state; what the state costs is bench/state_overhead.sh's).
#   bench/large_workflow.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DP_BENCH_BUILD:-$root/build/bench}
n=${1:-100000}
dp=$build/bin/daggerpool
[ -x "$dp" ] || { echo "large_workflow: $dp not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bin/gen_workflow" -n "$n" > "$tmp/large.cfg"
echo "workflow: $n jobs, $(grep -o '"j[0-9]*"' "$tmp/large.cfg" | wc -l | awk -v n="$n" '{print $1 - n}') dependencies, $(du -h "$tmp/large.cfg" | cut -f1)"
measure() {
  local what=$1; shift
  for i in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { echo "$what failed:"; tail -5 "$tmp/err"; return 1; }
    cat "$tmp/t"
  done | sort -n | sed -n 2p | awk -v w="$what" '{printf "%-28s %6.2f s  %7.1f MiB peak RSS (median of 3)\n", w, $1, $2/1024}'
}
measure "daggerpool validate" "$dp" validate "$tmp/large.cfg"
measure "daggerpool run" "$dp" run "$tmp/large.cfg" --no-state
measure "daggerpool run --json" "$dp" run "$tmp/large.cfg" --no-state --json "$tmp/out.json"
