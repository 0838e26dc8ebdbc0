#!/usr/bin/env bash
# A/B of two builds of the engine on one shape, interleaved, for comparing a
# change on a noisy shared machine: each round runs A's then B's sched_bench
# child (a fresh process: one warm-up, RUNS timed runs, median) and prints
# wall/CPU ns per job for each.
#   bench/ab.sh A_BUILD B_BUILD SHAPE WORKERS [RUNS] [ROUNDS] [N]
# A_BUILD, B_BUILD: build trees with bin/sched_bench (e.g. build/bench of two
# git worktrees, one at the commit before the change).
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: bench/ab.sh A_BUILD B_BUILD SHAPE WORKERS [RUNS] [ROUNDS] [N]" >&2; exit 2; }
a=$1 b=$2 shape=$3 workers=$4 runs=${5:-7} rounds=${6:-3} n=${7:-100000}
for d in "$a" "$b"; do
  [ -x "$d/bin/sched_bench" ] || { echo "ab: $d/bin/sched_bench not built" >&2; exit 1; }
done
declare -A out=([A]="" [B]="")
for _ in $(seq "$rounds"); do
  for side in A B; do
    d=$a; [ "$side" = B ] && d=$b
    # RESULT njobs nedges build_ns wall_median wall_min cpu_median first first_cpu status
    r=$("$d/bin/sched_bench" --child "${AB_SYSTEM:-daggerpool}" "$shape" "$workers" "$n" "$runs" 42)
    out[$side]+=" $(awk '{printf "%.1f/%.1f/%s", $5/$2, $7/$2, (NF >= 8 ? sprintf("%.1f", $8/$2) : "-")}' <<<"$r")"
  done
done
echo "$shape, $workers worker(s), ns/job wall/cpu/first-run wall per round"
echo "A $a:${out[A]}"
echo "B $b:${out[B]}"
