#!/usr/bin/env bash
# state_cli.sh DAGGERPOOL GOOD_PLUGIN_DIR - the command's durable state
# (docs/state.md, issue 15) driven as a user drives it, each case in its own
# directory under one mktemp -d:
#   default   state on by default at .daggerpool/BASE-HASH.db; --no-state writes none; show --json gives
#             the bytes run --json wrote (and a run without --json its result all the same); history
#             lists the runs
#   resume    --resume reuses the jobs whose last end was success with an unchanged definition; a
#             changed job and everything below it runs; "reused": true in the JSON
#   mark      mark --success / --clear are honoured by the next --resume and listed by history (who)
#   store     a plugin's store entries survive into the next run (and not with --no-state)
#   lock      a second process is refused naming the holder; --wait waits; a killed holder's lock
#             is taken over
#   bad       a corrupt file, a foreign SQLite database, a newer schema, another workflow's state:
#             exit 2, a message naming the file and the fix, the file unchanged
#   unwritable  a location that cannot be written, a full disk (RLIMIT_FSIZE): one warning, the
#             run succeeds, the file stays sound
#   retention --keep-runs N keeps the last N runs
set -u
DP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
GOOD=$2
fails=0
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dp-state-cli.XXXXXX") || exit 1
trap '[ -n "${KEEP:-}" ] || rm -rf "$ROOT"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
dp() { timeout -k 2 60 "$DP" "$@"; }
newcase() { mkdir "$ROOT/$1" && cd "$ROOT/$1" || exit 1; }
q() { sqlite3 -cmd ".timeout 5000" "$1" "$2"; }
# sdb BASE: the default state file of workflow file BASE.cfg here (.daggerpool/BASE-HASH.db)
sdb() { ls .daggerpool/"$1"-????????.db 2> /dev/null | head -1; }

# A chain A -> B -> C and a lone D; B fails while the file `broken` exists.
chain() {
  cat > w.cfg <<EOF2
workflow: { name = "w"; max_concurrent_jobs = 2; };
jobs = (
  { name = "A"; type = "shell.command"; params = { command = "echo A >> ran"; }; },
  { name = "B"; type = "shell.command"; depends_on = ["A"]; params = { command = "echo B${1:-} >> ran; test ! -f broken"; }; },
  { name = "C"; type = "shell.command"; depends_on = ["B"]; params = { command = "echo C >> ran"; }; },
  { name = "D"; type = "shell.command"; params = { command = "echo D >> ran"; }; }
);
EOF2
}
ran() { sort ran 2>/dev/null | tr '\n' ' ' | tee -a "$ROOT/ran.log"; echo >> "$ROOT/ran.log"; rm -f ran; }

# ---- default ----------------------------------------------------------------
newcase default
chain
dp run w.cfg --json r1.json > out 2> err; rc=$?
[ $rc = 0 ] || fail "default: run exit $rc"
[ -f "$(sdb w)" ] || fail "default: no .daggerpool/w-HASH.db"
[ "$(q "$(sdb w)" 'PRAGMA integrity_check')" = ok ] || fail "default: integrity"
[ "$(q "$(sdb w)" 'PRAGMA journal_mode')" = wal ] || fail "default: not WAL"
dp show w.cfg --json > s1.json && cmp -s s1.json r1.json || fail "default: show --json differs from run --json"
dp run w.cfg --json - > r2.json 2> /dev/null
dp show w.cfg 2 --json | cmp -s - r2.json || fail "default: show 2 --json (run --json -) differs"
dp show w.cfg 1 --json | cmp -s - r1.json || fail "default: show 1 --json differs after a second run"
dp history w.cfg > hist || fail "default: history exit $?"
[ "$(grep -c ' success ' hist)" = 2 ] || { fail "default: history lacks the runs"; cat hist; }
dp show w.cfg > sum && grep -q '^outcome  success' sum || fail "default: show summary"
# A run without --json: the state makes the JSON itself, compressed as it is written (never held
# whole): the result --json writes, but for its times; `size` its length
dp run w.cfg -q > /dev/null 2>&1
dp show w.cfg 3 --json > s3.json || fail "default: show 3 --json (a run without --json) exit $?"
shape() { jq -S 'walk(if type == "number" then 0 else . end)' "$1"; }
[ -n "$(shape s3.json)" ] && [ "$(shape s3.json)" = "$(shape r2.json)" ] ||
  fail "default: show --json of a run without --json is not the result run --json writes"
[ "$(q "$(sdb w)" 'SELECT encoding, size FROM run_results WHERE run_id = 3')" = "zstd|$(wc -c < s3.json)" ] ||
  fail "default: a run without --json: its result's encoding and size"
mkdir ns && cd ns && chain && dp run w.cfg --no-state > /dev/null 2>&1 && [ ! -e .daggerpool ] ||
  fail "default: --no-state made .daggerpool"
cd ..
dp show w.cfg 9 > /dev/null 2> err; [ $? = 2 ] && grep -q "no run 9" err || fail "default: show of a missing run"
[ $fails = 0 ] && ok default

# ---- resume -----------------------------------------------------------------
newcase resume
chain; touch broken
# --keep-going: D is not cut by B's failure (it would stay unknown and run again)
dp run w.cfg --keep-going -q > /dev/null 2>&1; [ $? = 1 ] || fail "resume: the failing run did not exit 1"
[ "$(ran)" = "A B D " ] || fail "resume: first run ran the wrong jobs"
rm broken
dp run w.cfg --resume --json r.json -q > /dev/null 2>&1 || fail "resume: resumed run failed"
[ "$(ran)" = "B C " ] || fail "resume: --resume ran other jobs, not B C"
[ "$(jq -r '.jobs.A.reused, .jobs.D.reused, .jobs.B.reused' r.json | tr '\n' ' ')" = "true true null " ] ||
  fail "resume: reused flags in the JSON"
dp run w.cfg --resume -q > /dev/null 2>&1
[ "$(ran)" = "" ] || fail "resume: an all-success state still ran jobs"
# A change of B's definition (its params) runs B and C below it, not A or D.
chain X
dp run w.cfg --resume -q > /dev/null 2>&1
[ "$(ran)" = "BX C " ] || fail "resume: after B's change --resume ran the wrong jobs"
# A change of a setting (retries) counts as well.
sed -i 's/{ name = "D"; type/{ name = "D"; retries = 2; type/' w.cfg
dp run w.cfg --resume -q > /dev/null 2>&1
[ "$(ran)" = "D " ] || fail "resume: after D's retries changed --resume ran other jobs, not D"
# Without --resume, everything runs.
dp run w.cfg -q > /dev/null 2>&1
[ "$(ran)" = "A BX C D " ] || fail "resume: a plain run did not run everything"
[ $fails = 0 ] && ok resume

# ---- plan: run --dry-run --resume and run TARGET --resume take the state's reuse ----
newcase plan
chain; touch broken
dp run w.cfg --keep-going -q > /dev/null 2>&1; ran > /dev/null; rm broken
dp run w.cfg --dry-run --resume --json p.json > /dev/null 2>&1 || fail "plan: --dry-run --resume exit $?"
[ "$(jq -r '[.jobs.A.action, .jobs.B.action, .jobs.C.action, .jobs.D.action] | join(" ")' p.json)" = "reused run run reused" ] ||
  fail "plan: the dry run's actions: $(jq -c '.jobs' p.json)"
[ "$(ran)" = "" ] || fail "plan: the dry run ran jobs"
[ "$(q "$(sdb w)" 'SELECT count(*) FROM runs')" = 1 ] || fail "plan: the dry run was recorded as a run"
dp plan w.cfg --resume --json > p2.json 2> /dev/null || fail "plan: plan --resume exit $?"
cmp -s <(jq -c .jobs p.json) <(jq -c .jobs p2.json) || fail "plan: plan --resume and run --dry-run --resume differ"
dp plan w.cfg --json > p3.json 2> /dev/null
[ "$(jq -r .reused p3.json)" = 0 ] || fail "plan: plan without --resume reused jobs"
mkdir elsewhere && (cd elsewhere && dp plan ../w.cfg --resume --json > p4.json 2> /dev/null) &&
  [ "$(jq -r .reused elsewhere/p4.json)" = 0 ] || fail "plan: --resume without a state did not plan every job"
dp run w.cfg C --resume -q > /dev/null 2>&1 || fail "plan: run C --resume exit $?"
[ "$(ran)" = "B C " ] || fail "plan: run C --resume ran other jobs, not B C"
[ $fails = 0 ] && ok plan

# ---- mark -------------------------------------------------------------------
newcase mark
chain; touch broken
dp run w.cfg --keep-going -q > /dev/null 2>&1; ran > /dev/null
dp mark w.cfg B --success > out || fail "mark: exit $?"
grep -q "marked success" out || fail "mark: no confirmation"
dp run w.cfg --resume -q > /dev/null 2>&1 || fail "mark: resumed run failed"
[ "$(ran)" = "C " ] || fail "mark: --resume after mark B ran other jobs, not C"
dp mark w.cfg A --clear > /dev/null || fail "mark --clear: exit $?"
dp run w.cfg --resume -q > /dev/null 2>&1; rc=$?
[ "$(ran)" = "A B " ] || fail "mark: --resume after clear A ran the wrong jobs"
dp history w.cfg > hist
grep -q "$(id -un) marked success: B" hist && grep -q "$(id -un) cleared: A" hist || { fail "mark: history"; cat hist; }
dp mark w.cfg Nope --success > /dev/null 2> err; [ $? = 2 ] && grep -q "no job 'Nope'" err || fail "mark: unknown job"
dp mark w.cfg A > /dev/null 2>&1; [ $? = 2 ] || fail "mark: neither --success nor --clear accepted"
[ $fails = 0 ] && ok mark

# ---- store ------------------------------------------------------------------
newcase store
printf 'workflow: { name = "s"; plugin_path = ["%s"]; };\njobs = ( { name = "W"; type = "good.echo"; params = { message = "m"; }; } );\n' "$GOOD" > s.cfg
dp run s.cfg -q > /dev/null 2>&1 || fail "store: writing run failed"
[ "$(q "$(sdb s)" "SELECT value FROM store WHERE key = 'good.ran.W'")" != "" ] || fail "store: entry not kept"
[ "$(q "$(sdb s)" "SELECT count(*) FROM store WHERE key LIKE 'dp.running/%'")" = 0 ] ||
  fail "store: running snapshots kept"
# The same file now only probes for the entry: ready only if the store came back.
printf 'workflow: { name = "s"; plugin_path = ["%s"]; };\njobs = ( { name = "P"; type = "good.probe"; params = { key = "good.ran.W"; }; } );\n' "$GOOD" > s.cfg
dp run s.cfg -q > /dev/null 2>&1; rc=$?
[ $rc = 0 ] || fail "store: the next run did not see the entry (exit $rc)"
dp run s.cfg -q --no-state > /dev/null 2>&1; rc=$?
[ $rc = 3 ] || fail "store: --no-state saw an entry (exit $rc, want 3)"
[ $fails = 0 ] && ok store

# ---- lock -------------------------------------------------------------------
newcase lock
printf 'workflow: { name = "l"; };\njobs = ( { name = "S"; type = "core.sleep"; params = { duration = "%s"; }; } );\n' 3s > l.cfg
"$DP" run l.cfg -q > /dev/null 2>&1 &
holder=$!
for _ in $(seq 100); do [ -n "$(sdb l)" ] && [ -s "$(sdb l)".lock ] && break; sleep 0.05; done
dp run l.cfg -q > /dev/null 2> err; rc=$?
[ $rc = 2 ] || fail "lock: second process exit $rc, want 2"
grep -q "in use by another daggerpool (pid=$holder host=$(hostname) since=" err || { fail "lock: holder not named"; head -5 err; }
dp run l.cfg -q --wait > /dev/null 2> err; rc=$?
[ $rc = 0 ] || fail "lock: --wait exit $rc"
grep -q "waiting for it" err || fail "lock: --wait said nothing"
wait $holder
# A holder killed with SIGKILL: its lock is the kernel's to drop; the next run takes over.
# (a longer job for this one: the kill must find it running, sanitizers and load included)
sed -i 's/"3s"/"20s"/' l.cfg
"$DP" run l.cfg -q > /dev/null 2> killed.err &
holder=$!
# its lock taken (the holder line names it), then well into its 20 s job
for _ in $(seq 400); do [ -n "$(sdb l)" ] && grep -q "pid=$holder " "$(sdb l)".lock 2> /dev/null && break; sleep 0.05; done
sleep 2
kill -9 $holder || { wait $holder; fail "lock: the run to kill had ended already (exit $?): $(head -c 600 killed.err)"; }
wait $holder 2> /dev/null
sed -i 's/"20s"/"3s"/' l.cfg
dp run l.cfg -v > /dev/null 2> err || fail "lock: run after a killed holder failed"
grep -q "took over the lock.*pid=$holder" err || fail "lock: takeover not logged"
[ "$(q "$(sdb l)" "SELECT outcome FROM runs ORDER BY id" | tr '\n' ' ')" = "success success crashed success " ] ||
  fail "lock: the killed run is not recorded as crashed: $(q "$(sdb l)" 'SELECT outcome FROM runs' | tr '\n' ' ')"
[ $fails = 0 ] && ok lock

# ---- bad --------------------------------------------------------------------
newcase bad
chain
refused() { # CASE FILE PATTERN: exit 2, FILE named with a fix, FILE unchanged
  local sum; sum=$(md5sum < "$2")
  dp run w.cfg --state "$2" -q > /dev/null 2> err; local rc=$?
  [ $rc = 2 ] || fail "bad $1: exit $rc, want 2"
  grep -q "$2" err && grep -q "fix:" err && grep -q "$3" err || { fail "bad $1: message"; head -5 err; }
  [ "$(md5sum < "$2")" = "$sum" ] || fail "bad $1: the file was changed"
  [ ! -e ran ] || fail "bad $1: jobs ran"
}
echo "not a database, just text" > text.db; refused text text.db "not an SQLite database"
head -c 4096 /dev/urandom > noise.db; refused noise noise.db "not an SQLite database"
q foreign.db "CREATE TABLE t (a); INSERT INTO t VALUES (1)"; refused foreign foreign.db "something else"
dp run w.cfg --state newer.db -q > /dev/null 2>&1; ran > /dev/null
q newer.db "PRAGMA user_version = 99"; refused newer newer.db "schema version 99, written by a newer daggerpool"
# a state file whose schema page is garbage: header fine, the rest not
dp run w.cfg --state cut.db -q > /dev/null 2>&1; ran > /dev/null
q cut.db "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null # all of it in the file, then spoil the file
python3 -c "f=open('cut.db','r+b'); f.seek(100); f.write(b'\xa5'*3996)"
refused corrupt cut.db "not a readable SQLite database\|malformed"
mkdir other && printf 'workflow: { name = "v"; };\njobs = ( { name = "X"; type = "core.noop"; } );\n' > other/v.cfg
dp run other/v.cfg --state v.db -q > /dev/null 2>&1
refused other v.db "belongs to workflow 'v'"
# two files of one base name in two directories: a default state each
mkdir twin && cp w.cfg twin/w.cfg
dp run twin/w.cfg -q > /dev/null 2>&1; ran > /dev/null
dp run w.cfg -q > /dev/null 2>&1 || fail "bad twin: the default states of two w.cfg collided"
rm -f ran
[ "$(ls .daggerpool/w-*.db | wc -l)" = 2 ] || fail "bad twin: not two default states"
# one --state for both: the other file's is refused
dp run twin/w.cfg --state shared.db -q > /dev/null 2>&1; ran > /dev/null
sum=$(md5sum < shared.db)
dp run w.cfg --state shared.db -q > /dev/null 2> err; rc=$?
[ $rc = 2 ] && grep -q "belongs to the workflow file" err || fail "bad twin: shared --state exit $rc"
[ "$(md5sum < shared.db)" = "$sum" ] || fail "bad twin: shared state changed"
# moved: the file it belonged to is gone, the state follows
mv twin/w.cfg twin/moved.cfg
dp run twin/moved.cfg --state shared.db -q > /dev/null 2>&1 || fail "bad moved: a state whose workflow file moved was refused"
rm -f ran
dp history w.cfg > /dev/null || fail "bad: history after move"
dp history nope.cfg > /dev/null 2> err; [ $? = 2 ] || fail "bad: history of a missing file"
[ $fails = 0 ] && ok bad

# ---- unwritable --------------------------------------------------------------
newcase unwritable
chain
# a location under a regular file (ENOTDIR) cannot be written, root or not
touch afile
dp run w.cfg --state afile/s.db > out 2> err; rc=$?
[ $rc = 0 ] || fail "unwritable: exit $rc"
[ "$(grep -c 'running without state' err)" = 1 ] || { fail "unwritable: not one warning"; head -5 err; }
rm -f ran
if [ "$(id -u)" != 0 ]; then
  mkdir ro && chmod 555 ro && cd ro && cp ../w.cfg . 2> /dev/null
  cd ..; chmod 755 ro; cp w.cfg ro/; chmod 555 ro
  (cd ro && dp run w.cfg > /dev/null 2> ../err); rc=$?
  [ $rc = 0 ] && grep -q "running without state\|cannot make" err || fail "unwritable: read-only dir exit $rc"
  chmod 755 ro
fi
# A full disk, as a file size limit: the state stops being written with one
# warning; the run goes on and succeeds; the file stays sound.
{
  echo 'workflow: { name = "big"; max_concurrent_jobs = 8; };'
  echo 'jobs = ('
  for i in $(seq 3000); do printf '{ name = "job_with_a_rather_long_name_%05d"; type = "core.noop"; },\n' "$i"; done
  echo '{ name = "last"; type = "core.noop"; } );'
} > big.cfg
dp run big.cfg --no-state -q > /dev/null 2>&1 || fail "unwritable: big workflow does not run"
dp run big.cfg -q > /dev/null 2>&1 || fail "unwritable: big workflow with state"
# 256 KiB: below the file's size and what the run's log (WAL) needs; SIGXFSZ ignored, a write past it fails (EFBIG)
# (stderr through a pipe: the limit is on files, and err is one)
(trap '' XFSZ; ulimit -f 256; exec "$DP" run big.cfg 2>&1 > /dev/null) | grep -v '^\[' > err
rc=${PIPESTATUS[0]}
[ $rc = 0 ] || fail "unwritable: full: exit $rc"
[ "$(grep -c 'cannot record\|cannot keep\|running without state' err)" = 1 ] || { fail "unwritable: full: not one warning"; head -5 err; }
[ "$(q "$(sdb big)" 'PRAGMA integrity_check')" = ok ] || fail "unwritable: full: integrity"
dp run big.cfg -q > /dev/null 2>&1 || fail "unwritable: the run after the full disk"
[ "$(q "$(sdb big)" "SELECT outcome FROM runs ORDER BY id DESC LIMIT 1")" = success ] ||
  fail "unwritable: the run after the full disk is not recorded"
[ $fails = 0 ] && ok unwritable

# ---- watch: every run recorded, each job's hash the same in every run ----
newcase watch
chain
"$DP" watch w.cfg --interval 200ms -q > /dev/null 2>&1 &
wpid=$!
for _ in $(seq 200); do [ -n "$(sdb w)" ] && [ "$(q "$(sdb w)" "SELECT count(*) FROM runs WHERE outcome = 'success'" 2> /dev/null)" -ge 4 ] && break; sleep 0.05; done
kill -TERM $wpid; wait $wpid 2> /dev/null
[ "$(q "$(sdb w)" "SELECT count(*) FROM runs WHERE command = 'watch'")" -ge 4 ] || fail "watch: fewer than 4 runs recorded"
[ "$(q "$(sdb w)" 'SELECT count(DISTINCT def_hash) FROM run_jobs GROUP BY job' | sort -u | tr '\n' ' ')" = "1 " ] ||
  fail "watch: a job's definition hash differs between runs"
rm -f ran
[ $fails = 0 ] && ok watch

# ---- retention ---------------------------------------------------------------
newcase retention
chain
for i in 1 2 3 4 5; do dp run w.cfg --keep-runs 3 -q > /dev/null 2>&1; done
[ "$(q "$(sdb w)" 'SELECT group_concat(id) FROM runs')" = "3,4,5" ] || fail "retention: runs kept $(q "$(sdb w)" 'SELECT group_concat(id) FROM runs')"
[ "$(q "$(sdb w)" 'SELECT count(DISTINCT run_id) FROM run_jobs')" = 3 ] || fail "retention: job rows kept"
[ "$(q "$(sdb w)" 'SELECT count(*) FROM run_results')" = 3 ] || fail "retention: results kept"
dp run w.cfg --keep-runs x > /dev/null 2>&1; [ $? = 2 ] || fail "retention: --keep-runs x accepted"
[ $fails = 0 ] && ok retention

[ $fails = 0 ] && echo "all state cases passed"
exit $((fails > 0))
