#!/usr/bin/env bash
# Where a graph's first run spends more than its later ones, from perf
# samples: `first_run --runs 1` in P fresh processes (P first runs) against
# `first_run --runs P` in one process (one first run, P-1 later ones), same
# shape and workers. For each it prints the run's CPU by symbol, in ns per
# job per run: the samples of the worker threads, and those of the calling
# thread whose call chain passes through dp_graph_run (the build and
# validate before are left out), kernel symbols included (page faults:
# clear_page_*, the fault path). A release build has no frame pointers, so
# a chain may stop short: a worker's samples are told by their thread.
#   bench/perf_first_run.sh [-b BUILD] SHAPE WORKERS [P] [TOP]
# BUILD: a build tree with bin/first_run (default build/bench). Sampling is
# cpu-clock at 20 kHz (this VM has no hardware counters): one sample is
# 50 us of CPU, 0.5 ns a job of 100 000. Needs perf; kernel symbols need
# root or kernel.perf_event_paranoid <= 1.
set -euo pipefail
build=build/bench
if [ "${1:-}" = -b ]; then
  build=$2
  shift 2
fi
[ $# -ge 2 ] || { echo "usage: bench/perf_first_run.sh [-b BUILD] SHAPE WORKERS [P] [TOP]" >&2; exit 2; }
shape=$1 workers=$2 p=${3:-40} top=${4:-15}
bin=$build/bin/first_run
[ -x "$bin" ] || { echo "perf_first_run: $bin not built" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf_first_run: perf not found" >&2; exit 1; }
freq=20000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

perf record -q -F $freq -g -o "$tmp/first.data" -- \
  sh -c "for i in \$(seq $p); do '$bin' $shape $workers --runs 1 >/dev/null; done" >/dev/null 2>&1
perf record -q -F $freq -g -o "$tmp/later.data" -- "$bin" $shape $workers --runs "$p" >/dev/null 2>&1
jobs=100000                       # first_run's n; the grid rounds down to 316 x 316
[ "$shape" = grid ] && jobs=99856

# One perf script record per sample: a "PID/TID" line, then the stack, leaf
# first, then a blank line. A sample counts when its thread is not the
# process's first (a worker) or a frame is the run's.
report() {
  perf script -i "$1" -F pid,tid,ip,sym 2>/dev/null | awk -v runs="$p" -v freq=$freq -v jobs="$jobs" '
    function flush() {
      if (leaf != "" && inrun) { n[leaf]++; total++ }
      leaf = ""; inrun = 0; head = 1
    }
    BEGIN { head = 1 }
    /^[[:space:]]*$/ { flush(); next }
    head {
      split($1, t, "/")
      inrun = t[1] != t[2]
      head = 0
      next
    }
    {
      sym = $2; sub(/\+0x[0-9a-f]+$/, "", sym)
      if (leaf == "") leaf = sym
      if (sym ~ /^(worker_main|start_thread|clone3|dp_graph_run_sized)$/) inrun = 1
    }
    END {
      flush()
      k = 1e9 / freq / jobs / runs
      printf "%8.2f ns/job  all of the run\n", total * k
      for (s in n) printf "%8.2f ns/job  %s\n", n[s] * k, s
    }' | sort -k1,1 -rn | awk -v n=$((top + 1)) 'NR <= n' # not head: sort's SIGPIPE would end the script (pipefail)
}
echo "$shape, $workers worker(s): first runs ($p processes, one run each), CPU by symbol"
report "$tmp/first.data"
echo "$shape, $workers worker(s): one process, $p runs (the first among them), CPU by symbol"
report "$tmp/later.data"
