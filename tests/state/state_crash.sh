#!/usr/bin/env bash
# state_crash.sh DAGGERPOOL - crash safety of the state (issue 15): 200 runs
# of a 30-job DAG whose jobs fail at random (one in three with --resume,
# the others plain, so that every run has work), each killed with SIGKILL
# at a random moment (or left to finish). After every one:
#   - the state opens cleanly: PRAGMA integrity_check is "ok";
#   - no false success: every job recorded as success (not reused) in a run
#     left its marker, done/ITER/JOB, which the job writes just before it
#     exits 0 (so a job killed before that cannot be recorded as success);
#   - nothing recorded before is lost: the rows of the earlier runs are the
#     same rows as before (a digest of them);
# and at the end, a --resume without failures runs exactly the jobs whose
# last recorded end is not a success, and those below them (the others
# are reused).
set -u
DP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
RUNS=${DP_STATE_CRASH_RUNS:-200}
fails=0
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dp-state-crash.XXXXXX") || exit 1
trap '[ -n "${KEEP:-}" ] || rm -rf "$ROOT"' EXIT
cd "$ROOT" || exit 1
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { sqlite3 -cmd ".timeout 5000" .daggerpool/w-*.db "$1"; }

# 30 jobs in 5 layers of 6; each depends on two of the layer above. A job
# sleeps 0-40 ms, fails one time in five (unless DP_NOFAIL is set), and on
# success writes its marker last.
{
  echo 'workflow: { name = "w"; max_concurrent_jobs = 2; fail_fast = false; };'
  echo 'jobs = ('
  sep=""
  for l in 0 1 2 3 4; do
    for i in 0 1 2 3 4 5; do
      deps=""
      [ $l -gt 0 ] && deps="depends_on = [\"j$((l - 1))_$i\", \"j$((l - 1))_$(((i + 1) % 6))\"];"
      printf '%s{ name = "j%d_%d"; type = "shell.command"; %s params = { command = "r=$(od -An -N1 -tu1 /dev/urandom); sleep 0.0$((r %% 5)); if [ -z \\"$DP_NOFAIL\\" ] && [ $r -lt 51 ]; then exit 1; fi; touch done/$DP_ITER/j%d_%d"; }; }\n' \
        "$sep" $l $i "$deps" $l $i
      sep=","
    done
  done
  echo ');'
} > w.cfg
export DP_NOFAIL=
prev_max=0 prev_digest=""
digest() { q "SELECT count(*) || ':' || coalesce(group_concat(r, ','), '') FROM (SELECT run_id || '/' || job || '/' || status || '/' || reused AS r FROM run_jobs WHERE run_id <= $1 ORDER BY run_id, job)" | md5sum; }
killed=0
for iter in $(seq "$RUNS"); do
  export DP_ITER=$iter
  mkdir -p "done/$iter"
  resume=; [ $((iter % 3)) = 0 ] && resume=--resume
  "$DP" run w.cfg $resume --keep-runs 0 -q > /dev/null 2>&1 &
  pid=$!
  echo "$pid $iter" >> pids
  # a random moment: 0 to ~400 ms (some runs end before it)
  sleep "0.$(printf '%03d' $((RANDOM % 300)))"
  if kill -9 $pid 2> /dev/null; then killed=$((killed + 1)); fi
  wait $pid 2> /dev/null
  ls .daggerpool/w-*.db > /dev/null 2>&1 || continue
  ic=$(q "PRAGMA integrity_check")
  [ "$ic" = ok ] || { fail "iteration $iter: integrity_check: $ic"; break; }
  before=$prev_max
  # earlier rows unchanged
  if [ "$prev_max" -gt 0 ]; then
    [ "$(digest "$prev_max")" = "$prev_digest" ] || fail "iteration $iter: rows of runs <= $prev_max changed or were lost"
  fi
  prev_max=$(q "SELECT coalesce(max(id), 0) FROM runs")
  prev_digest=$(digest "$prev_max")
  # no false success in this iteration's run: the runs recorded since the
  # last iteration (not by pid: pids are reused, pid_max is often 32768)
  q "SELECT job FROM run_jobs WHERE run_id > $before AND status = 'success' AND reused = 0" |
    while read -r job; do
      [ -f "done/$iter/$job" ] || echo "iteration $iter: $job recorded as success without its marker"
    done > false.txt
  [ -s false.txt ] && { fail "$(cat false.txt)"; break; }
done
echo "$RUNS runs, $killed killed with SIGKILL, $(q "SELECT count(*) FROM runs WHERE outcome = 'crashed'") recorded as crashed"
[ "$killed" -gt $((RUNS / 4)) ] || fail "too few runs were killed ($killed): the test did not test"

# The final --resume: exactly the jobs without a recorded success run.
# (layer by layer: a job runs when its own last end is not success or a
# dependency runs)
declare -A runs
for l in 0 1 2 3 4; do
  for i in 0 1 2 3 4 5; do
    j=j${l}_$i
    # its last end: job_last, or a later end in a killed run that the next
    # process to open the state folds into it (the final run does)
    last=$(q "SELECT coalesce((SELECT status FROM run_jobs WHERE job = '$j' AND status IN ('success', 'failed', 'not_ready')
              AND run_id IN (SELECT id FROM runs WHERE outcome IS NULL) ORDER BY run_id DESC LIMIT 1),
              (SELECT status FROM job_last WHERE job = '$j'))")
    r=0
    [ "$last" = success ] || r=1
    if [ $l -gt 0 ]; then
      [ "${runs[j$((l - 1))_$i]}" = 1 ] && r=1
      [ "${runs[j$((l - 1))_$(((i + 1) % 6))]}" = 1 ] && r=1
    fi
    runs[$j]=$r
  done
done
want=$(for j in "${!runs[@]}"; do [ "${runs[$j]}" = 1 ] && echo "$j"; done | sort | tr '\n' ' ')
export DP_ITER=final DP_NOFAIL=1
mkdir -p done/final
"$DP" run w.cfg --resume --json final.json -q > /dev/null 2>&1 || fail "final --resume did not succeed"
got=$(ls done/final | sort | tr '\n' ' ')
[ "$got" = "$want" ] || fail "final --resume ran [$got], not the jobs without a recorded success [$want]"
reused=$(jq -r '.jobs | to_entries[] | select(.value.reused == true) | .key' final.json | sort | tr '\n' ' ')
all=$(jq -r '.jobs | keys[]' final.json | sort | tr '\n' ' ')
[ "$(echo "$reused $got" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')" = "$all" ] ||
  fail "final: reused [$reused] and ran [$got] do not make up every job"
echo "final --resume: ran $(echo "$got" | wc -w), reused $(echo "$reused" | wc -w)"
[ $fails = 0 ] && echo "crash safety: all checks passed"
exit $((fails > 0))
