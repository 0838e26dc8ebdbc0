#!/usr/bin/env bash
# What a pool costs a job: the five shapes with no pool ("daggerpool") and
# with every job in one pool of WORKERS slots ("dp-pool", which never
# bounds the run), the same build, interleaved per round; ns/job wall/CPU
# per round (sched_bench children: one warm-up, RUNS timed runs, median).
#   bench/pool_cost.sh BUILD [WORKERS] [ROUNDS] [RUNS] [N]
# POOL_SYSTEM=dp-pool-bound: the pool's side with a pool that could bound
# the run (job 0 asks for all its slots), so that it is scheduled.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/pool_cost.sh BUILD [WORKERS] [ROUNDS] [RUNS] [N]" >&2; exit 2; }
b=$1 workers=${2:-2} rounds=${3:-5} runs=${4:-7} n=${5:-100000}
[ -x "$b/bin/sched_bench" ] || { echo "pool_cost: $b/bin/sched_bench not built" >&2; exit 1; }
for shape in chain independent fan grid random; do
  plain="" pool=""
  for _ in $(seq "$rounds"); do
    x=$("$b/bin/sched_bench" --child daggerpool "$shape" "$workers" "$n" "$runs" 42)
    y=$("$b/bin/sched_bench" --child "${POOL_SYSTEM:-dp-pool}" "$shape" "$workers" "$n" "$runs" 42)
    plain+=" $(awk '{printf "%.1f/%.1f", $5/$2, $7/$2}' <<<"$x")"
    pool+=" $(awk '{printf "%.1f/%.1f", $5/$2, $7/$2}' <<<"$y")"
  done
  echo "$shape, $workers worker(s), ns/job wall/cpu per round"
  echo "  no pool:          $plain"
  echo "  every job a pool: $pool"
done
