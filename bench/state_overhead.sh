#!/usr/bin/env bash
# What the durable state (docs/state.md) costs `daggerpool run` on the
# N-job benchmark workflow (gen_workflow: random shape, core.noop; default
# 100 000 jobs): wall time with --no-state, with a new state, and with a
# state that holds earlier runs (the usual case), five rounds alternating,
# median of each; then the ratios. The issue's bound: state on costs at
# most 20 % more than --no-state.
#   bench/state_overhead.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DP_BENCH_BUILD:-$root/build/bench}
n=${1:-100000}
dp=$build/bin/daggerpool
[ -x "$dp" ] || { echo "state_overhead: $dp not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$build/bin/gen_workflow" -n "$n" > large.cfg
echo "workflow: $n jobs, $(du -h large.cfg | cut -f1); $(nproc) CPUs"
once() { # LABEL ARGS...: one run's wall time, appended to LABEL
  local label=$1; shift
  /usr/bin/time -f "%e" -o t "$dp" run large.cfg -q "$@" > /dev/null 2> err || { echo "$label failed:"; tail -3 err; exit 1; }
  cat t >> "$label"
}
"$dp" run large.cfg -q --state old.db > /dev/null 2>&1 # the state with earlier runs: two already
"$dp" run large.cfg -q --state old.db > /dev/null 2>&1
for i in 1 2 3 4 5; do
  once nostate --no-state
  rm -f new.db new.db-wal new.db-shm
  once new --state new.db
  once old --state old.db
done
med() { sort -n "$1" | sed -n 3p; }
a=$(med nostate) b=$(med new) c=$(med old)
printf '%-34s %6.2f s\n' "run --no-state" "$a" "run, new state" "$b" "run, state with earlier runs" "$c"
awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
  printf "state on costs %+.0f %% (new state), %+.0f %% (state with earlier runs) over --no-state\n",
         (b / a - 1) * 100, (c / a - 1) * 100 }'
echo "state file after $(sqlite3 old.db 'SELECT count(*) FROM runs') runs: $(du -h old.db | cut -f1)"
