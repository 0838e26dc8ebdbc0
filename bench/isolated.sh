#!/usr/bin/env bash
# The overhead of an isolated attempt (isolation = "process"), in ms per
# attempt: N core.noop jobs with isolation = "process" against the same N
# in-process, through `daggerpool run`, at -j 1 and -j 2.
#   bench/isolated.sh [-n N] [-r RUNS] [BUILD]
# BUILD is a build tree with bin/daggerpool, its runner and plugins
# (default: $DP_BENCH_BUILD, else build/bench). Each figure is the median of
# RUNS (default 5) runs, isolated and in-process alternately. Printed per -j:
#   attempt  (isolated - in-process) run time / N: the run's own duration
#            (the result's duration_ms), so what each attempt costs
#   command  (isolated - in-process) wall time of the whole command / N:
#            the attempt plus its share of building the workflow (the
#            params check of isolated jobs)
#   cpu      (isolated - in-process) CPU time (user + system) of the
#            command and every process it started / N: steadier than the
#            wall figures on a loaded machine, where each hand-off between
#            processes waits for a CPU
# DAGGERPOOL_WARM_RUNNER=off in the environment measures attempts spawned
# afresh instead of started by the warm runner; DAGGERPOOL_ZYGOTE=off,
# attempts started from the warm runner's spares instead of a zygote.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=500 runs=5
while getopts n:r: o; do
  case $o in
    n) n=$OPTARG ;;
    r) runs=$OPTARG ;;
    *) echo "usage: $0 [-n N] [-r RUNS] [BUILD]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build=${1:-${DP_BENCH_BUILD:-$root/build/bench}}
dp=$build/bin/daggerpool
[ -x "$dp" ] || { echo "isolated: $dp not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for mode in process none; do
  {
    echo "workflow: { name = \"isolated-$mode\"; };"
    echo "defaults = { isolation = \"$mode\"; };"
    echo "jobs = ("
    for ((i = 0; i < n; i++)); do
      printf '  { name = "j%06d"; type = "core.noop"; }%s\n' "$i" "$([ $i -lt $((n - 1)) ] && echo ,)"
    done
    echo ");"
  } > "$tmp/$mode.cfg"
done
# One run: prints "WALL_US RUN_MS CPU_US". The CPU time is that of the
# command and of every process it started, from python's rusage: python is
# a child subreaper, so the processes the command leaves to die after it
# (the warm runner, its spares, the zygotes, with the workers they reaped)
# come to python, which reaps them all before it reads its rusage.
once() {
  local mode=$1 j=$2
  python3 - "$dp" "$tmp/$mode.cfg" "$j" "$tmp/out.json" "$tmp/err" <<'PY' ||
import ctypes, json, os, resource, subprocess, sys, time
dp, cfg, j, out, err = sys.argv[1:]
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic_ns()
with open(err, "w") as e:
    rc = subprocess.call([dp, "run", cfg, "-j", j, "--json", out], stdout=subprocess.DEVNULL, stderr=e)
t1 = time.monotonic_ns()
while True:  # what the command left (each dies with it: its parent-death signal)
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit(1)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print((t1 - t0) // 1000, json.load(open(out))["duration_ms"], int(cpu * 1e6))
PY
    { echo "isolated: daggerpool run ($mode, -j $j) failed:" >&2; tail -5 "$tmp/err" >&2; exit 1; }
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "isolated attempt overhead: $n core.noop jobs, median of $runs runs, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
trap 'echo "load at the end: $(cut -d" " -f1-3 /proc/loadavg)"; rm -rf "$tmp"' EXIT
echo "build: $build${DAGGERPOOL_WARM_RUNNER:+ (DAGGERPOOL_WARM_RUNNER=$DAGGERPOOL_WARM_RUNNER)}${DAGGERPOOL_ZYGOTE:+ (DAGGERPOOL_ZYGOTE=$DAGGERPOOL_ZYGOTE)}"
for j in 1 2; do
  : > "$tmp/process" && : > "$tmp/none"
  for ((r = 0; r < runs; r++)); do
    once process "$j" >> "$tmp/process"
    once none "$j" >> "$tmp/none"
  done
  pw=$(cut -d' ' -f1 "$tmp/process" | median) pr=$(cut -d' ' -f2 "$tmp/process" | median)
  nw=$(cut -d' ' -f1 "$tmp/none" | median) nr=$(cut -d' ' -f2 "$tmp/none" | median)
  pc=$(cut -d' ' -f3 "$tmp/process" | median) nc=$(cut -d' ' -f3 "$tmp/none" | median)
  awk -v j="$j" -v n="$n" -v pw="$pw" -v pr="$pr" -v nw="$nw" -v nr="$nr" -v pc="$pc" -v nc="$nc" 'BEGIN {
    printf "-j %d  attempt %.3f ms  (run %d ms isolated, %d ms in-process)   command %.3f ms  (%.3f s, %.3f s)   cpu %.3f ms\n",
      j, (pr - nr) / n, pr, nr, (pw - nw) / 1000 / n, pw / 1e6, nw / 1e6, (pc - nc) / 1000 / n }'
done
