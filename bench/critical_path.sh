#!/usr/bin/env bash
# The makespan of one long chain and many short jobs at -j 2, FIFO order
# (a build before the critical path, e.g. main at 03c3f4a) against the
# critical path first (this build), interleaved:
#   bench/critical_path.sh A_DAGGERPOOL B_DAGGERPOOL [ROUNDS]
# The workflow (generated here, core.sleep jobs): a chain c00 -> ... -> c19
# of 50 ms jobs (the critical path: 20 x 50 ms = 1.0 s, plus the 10 ms of a
# last short job), each link with 4 short successors of 10 ms (a_00_0 ...:
# named before the chain's next link), and 20 short roots of 10 ms (also
# named before the chain's head): 1.0 s of chain and 1.0 s of short jobs,
# so two workers can end at the critical path if the chain never waits.
# Prints each run's makespan (the result's duration_ms) and its ratio to
# 1010 ms, and the medians.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/critical_path.sh A_DAGGERPOOL B_DAGGERPOOL [ROUNDS]" >&2; exit 2; }
a=$1 b=$2 rounds=${3:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
wf=$dir/critical.cfg
{
  echo 'workflow = { name = "critical"; max_concurrent_jobs = 2; };'
  echo 'jobs = ('
  for i in $(seq -w 0 19); do
    echo "  { name = \"a_root_$i\"; type = \"core.sleep\"; params = { duration = \"10ms\"; }; },"
  done
  for i in $(seq -w 0 19); do
    dep=""
    [ "$i" != 00 ] && dep="depends_on = [\"c$(printf %02d $((10#$i - 1)))\"];"
    echo "  { name = \"c$i\"; type = \"core.sleep\"; $dep params = { duration = \"50ms\"; }; },"
    for k in 0 1 2 3; do
      echo "  { name = \"a_${i}_$k\"; type = \"core.sleep\"; depends_on = [\"c$i\"]; params = { duration = \"10ms\"; }; },"
    done
  done
  echo '  { name = "z_end"; type = "core.noop"; }'
  echo ');'
} >"$wf"
cp=1010
declare -A all=([A]="" [B]="")
for _ in $(seq "$rounds"); do
  for side in A B; do
    dp=$a; [ "$side" = B ] && dp=$b
    "$dp" run -q "$wf" --json "$dir/r.json" >/dev/null 2>&1 || { echo "critical_path: $dp run failed" >&2; exit 1; }
    ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["duration_ms"])' "$dir/r.json")
    all[$side]+=" $ms"
  done
done
for side in A B; do
  dp=$a; [ "$side" = B ] && dp=$b
  med=$(tr ' ' '\n' <<<"${all[$side]}" | grep . | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')
  printf '%s %s: makespans (ms)%s; median %s = %.2fx the critical path (%d ms)\n' "$side" "$dp" "${all[$side]}" "$med" \
    "$(awk -v m="$med" -v c=$cp 'BEGIN{print m/c}')" $cp
done
