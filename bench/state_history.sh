#!/usr/bin/env bash
# `daggerpool history` on a state holding R recorded runs (default 10 000;
# the issue's bound: under 100 ms). The state is made by real runs of a
# 10-job workflow (three), then the runs table is filled up to R with
# copies of the last run's row (sqlite3), as a months-long watch with
# --keep-runs 0 would leave it. Prints the median wall time of five and
# the median CPU time (user + sys: less disturbed by a loaded machine).
#   bench/state_history.sh [R]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DP_BENCH_BUILD:-$root/build/bench}
r=${1:-10000}
dp=$build/bin/daggerpool
[ -x "$dp" ] || { echo "state_history: $dp not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
{
  echo 'workflow: { name = "h"; };'
  echo 'jobs = ('
  for i in $(seq 9); do echo "{ name = \"j$i\"; type = \"core.noop\"; },"; done
  echo '{ name = "j10"; type = "core.noop"; depends_on = ["j1"]; } );'
} > h.cfg
for i in 1 2 3; do "$dp" run h.cfg -q --state h.db --keep-runs 0 > /dev/null; done
sqlite3 h.db "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $r - 3)
  INSERT INTO runs (command, pid, host, start_ms, end_ms, outcome, first_error, jobs, success, failed, not_ready,
                    skipped, unknown, reused)
  SELECT command, pid, host, start_ms + i * 30000, end_ms + i * 30000, outcome, first_error, jobs, success, failed,
         not_ready, skipped, unknown, reused FROM runs, k WHERE runs.id = 3"
echo "state: $(sqlite3 h.db 'SELECT count(*) FROM runs') runs, $(du -h h.db | cut -f1)"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "%e %U %S" -o t "$dp" history h.cfg --state h.db > out
  cat t >> all
done
wall=$(awk '{ print $1 * 1000 }' all | sort -n | sed -n 3p)
cpu=$(awk '{ print ($2 + $3) * 1000 }' all | sort -n | sed -n 3p)
printf 'daggerpool history: %d runs listed in %d ms wall, %d ms CPU (user + sys; median of 5); load %s\n' \
  "$(($(wc -l < out) - 1))" "$wall" "$cpu" "$(cut -d' ' -f1-3 /proc/loadavg)"
