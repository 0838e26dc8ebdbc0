#!/usr/bin/env bash
# Builds the benchmarks (Release, build/bench) and runs them all:
#   bench/run.sh [sched_bench options...]     e.g. bench/run.sh -n 20000 -k 1
# Prints the scheduler table (daggerpool, the lower bound, oneTBB flow_graph),
# then the readiness-wait figures, then the large-workflow figures when the
# daggerpool command and its plugins are built, then the isolated attempt
# overhead (bench/isolated.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DP_BENCH_BUILD:-$root/build/bench}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDP_BUILD_BENCH=ON >/dev/null
targets=(sched_bench readiness_bench)
if grep -q '^tbb_flow:' <(cmake --build "$build" --target help | sed 's/^\.\.\. //; s/ .*//; s/$/:/') ; then
  targets+=(tbb_flow)
else
  echo "bench: oneTBB not found (Debian: libtbb-dev): the flow_graph peer is skipped" >&2
fi
if [ -n "$(ls "$root"/host/src/cli/*.c 2>/dev/null)" ]; then
  cmake --build "$build" -j"$(nproc)" >/dev/null
else
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null
fi

echo "== scheduler overhead (sched_bench $*)"
"$build/bin/sched_bench" "$@"
echo
echo "== readiness waits (readiness_bench)"
"$build/bin/readiness_bench"
if [ -x "$build/bin/daggerpool" ] && [ -x "$root/bench/large_workflow.sh" ]; then
  echo
  echo "== large workflow (bench/large_workflow.sh)"
  DP_BENCH_BUILD=$build "$root/bench/large_workflow.sh"
fi
if [ -x "$build/bin/daggerpool" ] && [ -x "$build/lib/daggerpool/plugins/core.so" ]; then
  echo
  echo "== isolated attempt overhead (bench/isolated.sh)"
  "$root/bench/isolated.sh" "$build"
fi
