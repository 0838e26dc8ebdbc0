#!/usr/bin/env bash
# state_cache.sh DAGGERPOOL - what a run of an unchanged workflow file keeps for the next one
# (host/src/cli/state_cache.c, docs/state.md "def_hashes"): job_last and its durations by job
# id, under a key naming the files, the last run and the last mark. The next run reads them
# instead of job_last and the last run's ends (the durations still order it, with those ends
# gone); a mark, a targeted run or a killed run in between makes it read job_last again, so
# that what a run records is never judged against a stale copy: a job cleared by `mark` and
# run again is recorded, a job marked success that fails again is recorded failed. Then
# job_last's rows when more jobs end than one statement writes, and a new state's 20 000-job
# run committed in batches of at most 8192 ends.
set -u
DP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fails=0
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dp-state-cache.XXXXXX") || exit 1
# y's sleep has a process group of its own (shell.command): it outlives a killed run, so it
# is killed by the pid it recorded.
cleanup() {
  [ -f "$ROOT/slow.pid" ] && kill -9 "$(cat "$ROOT/slow.pid")" 2> /dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$ROOT"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
dp() { timeout -k 2 60 "$DP" "$@"; }
q() { sqlite3 -cmd ".timeout 5000" s.db "$1"; }
first() { jq -r '.jobs | to_entries | sort_by(.value.start_ms) | .[0].key' "$1"; }
last_of() { q "SELECT status || ' ' || (marked_by IS NOT NULL) FROM job_last WHERE job = '$1'"; }
cached_run() { q "SELECT substr(key, 39) FROM def_hashes WHERE key LIKE 'ends %'"; } # "RUN MARK"
cd "$ROOT" || exit 1
cat > w.cfg <<'CFG'
workflow = { name = "cache"; max_concurrent_jobs = 1; };
jobs = (
  { name = "long"; type = "core.sleep"; params = { duration = "600ms"; }; },
  { name = "b"; type = "core.sleep"; params = { duration = "20ms"; }; },
  { name = "c"; type = "core.sleep"; depends_on = ["b"]; params = { duration = "20ms"; }; },
  { name = "x"; type = "shell.command"; params = { command = "test ! -f xfail"; }; },
  { name = "y"; type = "shell.command"; depends_on = ["x"];
    params = { command = "test ! -f slow || { echo $$ > slow.pid; exec sleep 10; }"; }; }
);
CFG
sleep 2.2 # the key of the files needs a file older than two seconds

dp run w.cfg --state s.db -q --json r1.json > /dev/null 2>&1 || fail "run 1: exit $?"
[ "$(cached_run)" = "1 0" ] || fail "run 1 kept nothing for the next run: '$(cached_run)'"
# By job count b's path is the longer: b first. The next run knows the durations.
[ "$(first r1.json)" = b ] || fail "run 1 started $(first r1.json), not b"
q "DELETE FROM run_ends" # what the slow path would read: the durations must come from the copy
dp run w.cfg --state s.db -q --json r2.json > /dev/null 2>&1 || fail "run 2: exit $?"
[ "$(first r2.json)" = long ] || fail "run 2 (durations kept by run 1) started $(first r2.json), not long"
[ "$(cached_run)" = "2 0" ] || fail "run 2 kept nothing: '$(cached_run)'"

# mark --clear, then a run: x's success is recorded again (not judged unchanged by run 2's copy).
dp mark w.cfg x --clear --state s.db > /dev/null 2>&1 || fail "mark --clear: exit $?"
[ -z "$(last_of x)" ] || fail "mark --clear left x's row: $(last_of x)"
dp run w.cfg --state s.db -q > /dev/null 2>&1 || fail "run 3: exit $?"
[ "$(last_of x)" = "success 0" ] || fail "run 3 after mark --clear: x's last end '$(last_of x)', not success"
[ "$(cached_run)" = "3 1" ] || fail "run 3 kept nothing: '$(cached_run)'"

# x fails, is marked success by hand, fails again: recorded failed, and --resume runs it.
touch xfail
dp run w.cfg --state s.db -q > /dev/null 2>&1 && fail "run 4: x should have failed"
[ "$(last_of x)" = "failed 0" ] || fail "run 4: x's last end '$(last_of x)', not failed"
dp mark w.cfg x --success --state s.db > /dev/null 2>&1 || fail "mark --success: exit $?"
[ "$(last_of x)" = "success 1" ] || fail "mark --success: x's row '$(last_of x)'"
dp run w.cfg --state s.db -q > /dev/null 2>&1 && fail "run 5: x should have failed"
[ "$(last_of x)" = "failed 0" ] || fail "run 5 after mark --success: x's last end '$(last_of x)', not failed"
rm xfail
dp run w.cfg --state s.db --resume -q --json r6.json > /dev/null 2>&1 || fail "run 6 --resume: exit $?"
[ "$(jq -r '.jobs.x.reused' r6.json)" = null ] || fail "run 6 --resume reused x, which failed last"
[ "$(jq -r '.jobs.long.reused' r6.json)" = true ] || fail "run 6 --resume did not reuse long"

# A targeted run between two full runs: the next full run reads job_last (another graph's ids).
dp run w.cfg x --state s.db -q > /dev/null 2>&1 || fail "run 7 (target x): exit $?"
[ "$(cached_run)" = "6 2" ] || fail "a targeted run replaced the copy: '$(cached_run)'"
q "DELETE FROM job_last WHERE job = 'b'" # a copy would say b's success is there: it must be written
dp run w.cfg --state s.db -q > /dev/null 2>&1 || fail "run 8: exit $?"
[ "$(last_of b)" = "success 0" ] || fail "run 8 after a targeted run did not record b: '$(last_of b)'"
[ "$(cached_run)" = "8 2" ] || fail "run 8 kept nothing: '$(cached_run)'"

# A run killed in the middle: its ends are folded into job_last when the state is next opened,
# and the run after judges its ends against them, not against the copy of the run before.
touch xfail
dp run w.cfg --state s.db -q > /dev/null 2>&1 && fail "run 9: x should have failed"
[ "$(cached_run)" = "9 2" ] || fail "run 9 kept nothing: '$(cached_run)'"
rm xfail
touch slow
"$DP" run w.cfg --state s.db -q > /dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
  [ -s slow.pid ] &&
    [ "$(q "SELECT count(*) FROM run_jobs WHERE run_id = 10 AND job = 'x' AND status = 'success'")" = 1 ] && break
  sleep 0.05
done
kill -9 "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
[ -s slow.pid ] && kill -9 "$(cat slow.pid)" 2> /dev/null
rm -f slow.pid
[ -z "$(q 'SELECT outcome FROM runs WHERE id = 10')" ] || fail "run 10 ended before the kill"
rm slow
touch xfail
dp run w.cfg --state s.db -q > /dev/null 2>&1 && fail "run 11: x should have failed"
[ "$(q 'SELECT outcome FROM runs WHERE id = 10')" = crashed ] || fail "run 10 not recorded crashed"
[ "$(last_of x)" = "failed 0" ] || fail "run 11 after a killed run: x's last end '$(last_of x)', not failed"
[ "$(cached_run)" = "11 2" ] || fail "run 11 kept nothing: '$(cached_run)'"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity at the end"

# job_last of a workflow with more jobs than one statement writes (state_run.c, LAST_ROWS):
# every ended job's row, with its status and the hash its end recorded, after a new state's
# first run (all inserted), after a run where some changed (updated) and some are new (inserted).
gen() { # N FAILING: N core.noop jobs, a job that fails, FAILING of them depending on it
  echo 'workflow = { name = "many"; max_concurrent_jobs = 2; fail_fast = false; }; jobs = ('
  for i in $(seq -w 1 "$1"); do
    if [ "$i" -le "$2" ]; then
      echo "  { name = \"m$i\"; type = \"core.noop\"; depends_on = [\"a-fails\"]; },"
    else
      echo "  { name = \"m$i\"; type = \"core.noop\"; },"
    fi
  done
  echo '  { name = "a-fails"; type = "shell.command"; params = { command = "test ! -f mfail"; }; }'
  echo ');'
}
# what job_last must hold after run R: each job that ended (not skipped) in R or, for a job R
# did not end, its row before
expect_last() {
  jq -r '.jobs | to_entries[] | select(.value.status != "skipped" and .value.status != "unknown")
    | "\(.key) \(.value.status)"' "$1" | sort
}
check_last() { # RUN JSON
  local want got
  want=$(expect_last "$2")
  got=$(q "SELECT job || ' ' || status FROM job_last ORDER BY job")
  [ "$want" = "$got" ] ||
    fail "job_last after run $1: $(diff <(echo "$want") <(echo "$got") | grep -c '^[<>]') rows differ"
  # the hash in each row: the one the run's own end recorded
  [ "$(q "SELECT count(*) FROM job_last l JOIN run_jobs r ON r.job = l.job AND r.run_id = $1
          WHERE r.def_hash = l.def_hash AND l.run_id = $1")" = "$(echo "$want" | grep -c ' ')" ] ||
    fail "job_last after run $1: rows without their end's hash or run"
}
mv s.db cache.db && rm -f s.db-wal s.db-shm
gen 300 0 > many.cfg
sleep 2.2
dp run many.cfg --state s.db -q --json m1.json > /dev/null 2>&1 || fail "many, run 1: exit $?"
[ "$(q 'SELECT count(*) FROM job_last')" = 301 ] || fail "many, run 1: $(q 'SELECT count(*) FROM job_last') rows"
check_last 1 m1.json
# 20 jobs now fail's successors (changed hashes, skipped: their rows stand), a fails (updated),
# 150 more jobs (inserted, more than one statement's worth, and a rest)
touch mfail
gen 450 20 > many.cfg
sleep 2.2
dp run many.cfg --state s.db -q --json m2.json > /dev/null 2>&1 && fail "many, run 2: a-fails should have failed"
[ "$(jq -r '.jobs."a-fails".status' m2.json)" = failed ] || fail "many, run 2: a-fails did not fail"
[ "$(q 'SELECT count(*) FROM job_last')" = 451 ] || fail "many, run 2: $(q 'SELECT count(*) FROM job_last') rows"
[ "$(q "SELECT status || ' ' || run_id FROM job_last WHERE job = 'm001'")" = "success 1" ] ||
  fail "many, run 2: a skipped job's row changed: $(q "SELECT * FROM job_last WHERE job = 'm001'")"
want=$( (jq -r '.jobs | to_entries[] | select(.key <= "m020" and .key != "a-fails") | "\(.key) success"' m1.json
  expect_last m2.json) | sort)
[ "$want" = "$(q "SELECT job || ' ' || status FROM job_last ORDER BY job")" ] || fail "many, run 2: job_last differs"
[ "$(q "SELECT count(*) FROM job_last WHERE run_id = 2")" = 151 ] ||
  fail "many, run 2: $(q "SELECT count(*) FROM job_last WHERE run_id = 2") rows of run 2, not 151 (a-fails, m301-m450)"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "many: integrity"

# A new state's run of 20 000 jobs: the writer, busy hashing them while they end, falls
# behind; what it then commits goes in transactions of at most 8192 ends (docs/state.md,
# "Writes"), every end recorded once, and `show --json` gives the run's JSON back.
rm -f s.db s.db-wal s.db-shm
{
  echo 'workflow = { name = "batches"; max_concurrent_jobs = 2; }; jobs = ('
  seq -f '  { name = "b%05g"; type = "core.noop"; },' 1 19999
  echo '  { name = "b20000"; type = "core.noop"; }'
  echo ');'
} > batches.cfg
dp run batches.cfg --state s.db -q --json b.json > /dev/null 2>&1 || fail "batches: exit $?"
got=$(q 'SELECT count(*) || " " || max(json_array_length(ends)) || " " || sum(json_array_length(ends)) FROM run_ends')
echo "$got" | awk '$2 <= 8192 && $3 == 20000 { ok = 1 } END { exit !ok }' ||
  fail "batches: run_ends rows, largest batch, ends: $got (want at most 8192 ends a row, 20000 in all)"
[ "$(q 'SELECT count(DISTINCT job) FROM run_jobs WHERE run_id = 1')" = 20000 ] || fail "batches: run_jobs"
dp show batches.cfg --state s.db --json > show.json 2>/dev/null || fail "batches: show exit $?"
cmp -s b.json show.json || fail "batches: show --json differs from run --json"

[ $fails = 0 ] && echo "ok: state.cache" && exit 0
echo "$fails failure(s)"
exit 1
