#!/usr/bin/env bash
# What the durable state (docs/state.md) costs `daggerpool run` on the
# N-job benchmark workflow (gen_workflow: random shape, core.noop; default
# 100 000 jobs): with --no-state, with a new state, and with a state that
# holds earlier runs (the usual case), five rounds alternating, median of
# each, as wall time and as CPU time (user + sys: less disturbed by a loaded
# machine than wall time); then the ratios. The issue's bound: state on
# costs at most 20 % more than --no-state.
#   bench/state_overhead.sh [N]
# DP_BENCH_BUILD: the build to measure (default build/bench). DP_BENCH_BASE:
# another build (say main's, or the one before a change), measured in the
# same rounds, interleaved with the first, each with its own state files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DP_BENCH_BUILD:-$root/build/bench}
base=${DP_BENCH_BASE:-}
n=${1:-100000}
rounds=${DP_BENCH_ROUNDS:-5}
for b in "$build" ${base:+"$base"}; do
  [ -x "$b/bin/daggerpool" ] || { echo "state_overhead: $b/bin/daggerpool not built" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$build/bin/gen_workflow" -n "$n" > large.cfg
echo "workflow: $n jobs, $(du -h large.cfg | cut -f1); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
once() { # BUILD LABEL ARGS...: one run's wall, user and sys time, appended to LABEL.all
  local dp=$1/bin/daggerpool label=$2; shift 2
  /usr/bin/time -f "%e %U %S" -o t "$dp" run large.cfg -q "$@" > /dev/null 2> err || { echo "$label failed:"; tail -3 err; exit 1; }
  cat t >> "$label.all"
}
series() { # BUILD PREFIX: one round of the three
  local b=$1 p=$2
  once "$b" "$p-nostate" --no-state
  rm -f "$p-new.db" "$p-new.db-wal" "$p-new.db-shm" "$p-new.db.lock"
  once "$b" "$p-new" --state "$p-new.db"
  once "$b" "$p-old" --state "$p-old.db"
}
for b in "$build" ${base:+"$base"}; do # the state with earlier runs: two already
  p=B; [ "$b" = "$build" ] || p=A
  "$b/bin/daggerpool" run large.cfg -q --state "$p-old.db" > /dev/null 2>&1
  "$b/bin/daggerpool" run large.cfg -q --state "$p-old.db" > /dev/null 2>&1
done
for i in $(seq "$rounds"); do
  [ -z "$base" ] || series "$base" A
  series "$build" B
done
med() { # FILE COLUMN: the median of the wall (1), CPU (2: user + sys) or user (3) time
  awk -v c="$2" '{ print (c == 1 ? $1 : c == 3 ? $2 : $2 + $3) }' "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
rmed() { # FILE BASEFILE: the median of the rounds' CPU ratios, as a cost in %
  paste -d' ' "$1" "$2" | awk '{ printf "%.1f\n", (($2 + $3) / ($5 + $6) - 1) * 100 }' | sort -n |
    awk '{ v[NR] = $1 } END { printf "%+.0f %%", v[int((NR + 1) / 2)] }'
}
report() { # PREFIX BUILD
  local p=$1 b=$2
  local a=$(med "$p-nostate.all" 1) n=$(med "$p-new.all" 1) o=$(med "$p-old.all" 1)
  local ac=$(med "$p-nostate.all" 2) nc=$(med "$p-new.all" 2) oc=$(med "$p-old.all" 2)
  echo "== $b"
  printf '%-30s %6.2f s wall %6.2f s CPU\n' "run --no-state" "$a" "$ac" "run, new state" "$n" "$nc" \
    "run, state with earlier runs" "$o" "$oc"
  awk -v a="$a" -v n="$n" -v o="$o" -v ac="$ac" -v nc="$nc" -v oc="$oc" 'BEGIN {
    printf "state on costs, wall: %+.0f %% (new state), %+.0f %% (state with earlier runs)\n", (n / a - 1) * 100, (o / a - 1) * 100
    printf "state on costs, CPU:  %+.0f %% (new state), %+.0f %% (state with earlier runs)\n", (nc / ac - 1) * 100, (oc / ac - 1) * 100 }'
  # User time alone too: most of these runs' system time is the kernel
  # zeroing the huge pages the workflow's load takes, as many in every run
  # (about 100) but 0.03 to 0.6 s of it between identical runs on this VM
  # (bench/README.md, "State").
  local au=$(med "$p-nostate.all" 3) nu=$(med "$p-new.all" 3) ou=$(med "$p-old.all" 3)
  awk -v a="$au" -v n="$nu" -v o="$ou" 'BEGIN {
    printf "state on costs, user: %+.0f %% (new state), %+.0f %% (state with earlier runs); --no-state %.2f s\n", (n / a - 1) * 100, (o / a - 1) * 100, a }'
  # the same as the median of each round's own ratio (the three runs of a
  # round are seconds apart: a change of load between rounds cancels out)
  printf 'per round, CPU: median %s (new state), %s (state with earlier runs)\n' \
    "$(rmed "$p-new.all" "$p-nostate.all")" "$(rmed "$p-old.all" "$p-nostate.all")"
  echo "state file after $(sqlite3 "$p-old.db" 'SELECT count(*) FROM runs') runs: $(du -h "$p-old.db" | cut -f1)" \
    "(+ $(du -h "$p-old.db-wal" 2> /dev/null | cut -f1) log)"
}
[ -z "$base" ] || report A "$base"
report B "$build"
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
