#!/usr/bin/env bash
# state_migrate.sh DAGGERPOOL - a state file of schema version 1 (tests/state/v1: made by the
# daggerpool before version 2) read as it is by history, show and plan, then migrated by the
# first run that writes it: the file says version 3, passes integrity_check, and every earlier
# row reads the same (run_jobs, now a view over the batches of run_ends; show --json the bytes
# run --json wrote; the plugin versions of a swapped plugin); the run left open is recorded
# crashed and its ends count for --resume, with the definition hashes of version 1 (all five
# jobs reused). Then the definition hashes kept in the state (def_hashes): a run of an
# unchanged file reads them, an edited file gets its own (--resume runs what changed). Then a
# file of schema version 2 (tests/state/v2) migrated to 3 keeps hash version 1 (--resume reuses
# what it reused before), while a new file gets hash version 2: other values, the same reuse,
# and the order of params and dependencies in the file does not count.
set -u
DP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
FIX=$(cd "$(dirname "$0")" && pwd)/v1
fails=0
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dp-state-migrate.XXXXXX") || exit 1
trap '[ -n "${KEEP:-}" ] || rm -rf "$ROOT"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
dp() { timeout -k 2 60 "$DP" "$@"; }
q() { sqlite3 -cmd ".timeout 5000" v1.db "$1"; }
cd "$ROOT" || exit 1
cp "$FIX/w.cfg" . && sqlite3 v1.db < "$FIX/state.sql" || { echo "FAIL: cannot make the version 1 file"; exit 1; }
q "UPDATE meta SET value = '$PWD/w.cfg' WHERE key = 'workflow_file'"
[ "$(q 'PRAGMA user_version')" = 1 ] || fail "the fixture is not version 1"
rows() { q "SELECT * FROM run_jobs WHERE run_id <= 3 ORDER BY run_id, job"; }
rows > rows.before

# Readers take a version 1 file as it is, and write nothing.
dp history w.cfg --state v1.db > hist 2>&1 || fail "history of version 1: exit $?"
grep -q '^3 .* running ' hist || fail "history of version 1: run 3 not listed as running: $(cat hist)"
dp show w.cfg 1 --state v1.db --json | cmp -s - "$FIX/run1.json" || fail "show 1 --json of version 1 differs"
dp show w.cfg 2 --state v1.db > sum 2>&1 || fail "show 2 of version 1: exit $?"
grep -q 'success *C (.*\[1.1.0\]' sum || fail "show 2 of version 1: C's own plugin version: $(cat sum)"
dp plan w.cfg --state v1.db --resume > plan 2>&1 || fail "plan --resume of version 1: exit $?"
grep -q 'A: succeeded before, unchanged' plan || fail "plan --resume of version 1 does not reuse A: $(cat plan)"
[ "$(q 'PRAGMA user_version')" = 1 ] || fail "a reader changed the file's version"

# The first writer migrates it.
dp run w.cfg --state v1.db --resume --json r4.json -q > out 2>&1 || fail "run --resume on version 1: exit $?: $(cat out)"
[ "$(q 'PRAGMA user_version')" = 3 ] || fail "not migrated: user_version $(q 'PRAGMA user_version')"
[ "$(q "SELECT value FROM meta WHERE key = 'def_hash'")" = 1 ] || fail "a migrated file does not keep hash version 1"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity after the migration"
[ "$(q "SELECT type FROM sqlite_master WHERE name = 'run_jobs'")" = view ] || fail "run_jobs is not the view"
rows | cmp -s rows.before - || { fail "the rows of runs 1-3 changed in the migration"; rows | diff rows.before - | head; }
[ "$(q 'SELECT outcome FROM runs WHERE id = 3')" = crashed ] || fail "run 3 not recorded crashed"
# A, B from earlier successes, C from the crashed run 3 (after its clear), D marked, S from run 2:
# every hash as version 1 computed it
[ "$(jq -r '[.jobs[] | .reused] | map(tostring) | join(" ")' r4.json)" = "true true true true true" ] ||
  fail "--resume after the migration: $(jq -c '[.jobs | to_entries[] | {(.key): .value.reused}]' r4.json)"
dp show w.cfg 1 --state v1.db --json | cmp -s - "$FIX/run1.json" || fail "show 1 --json after the migration differs"
dp show w.cfg 2 --state v1.db --json | cmp -s - "$FIX/run2.json" || fail "show 2 --json after the migration differs"
dp show w.cfg 4 --state v1.db --json | cmp -s - r4.json || fail "show 4 --json (the new run) differs from run --json"
[ "$(q 'SELECT encoding FROM run_results WHERE run_id = 4')" = zstd ] || fail "the new run's JSON is not compressed"
dp show w.cfg 2 --state v1.db > sum 2>&1
grep -q 'success *C (.*\[1.1.0\]' sum && grep -q 'success *B (.*\[1.0.0\]' sum ||
  fail "show 2 after the migration: the swapped plugin's versions: $(cat sum)"
dp history w.cfg --state v1.db > hist 2>&1
grep -q '^3 .* crashed ' hist && grep -q 'marked success: D "quoted"' hist || fail "history after the migration: $(cat hist)"

# The definition hashes kept: computed once for a file that did not change in the last two
# seconds, read back by the next run; an edit (even within those seconds) counts.
sleep 2.2
dp run w.cfg --state v1.db -q > /dev/null 2>&1
key=$(q "SELECT key || jobs FROM def_hashes WHERE key NOT LIKE 'ends %'")
[ -n "$key" ] && [ "$(q "SELECT count(*) FROM def_hashes WHERE key NOT LIKE 'ends %'")" = 1 ] || fail "no definition hashes kept"
dp run w.cfg --state v1.db -q > /dev/null 2>&1
[ "$(q "SELECT key || jobs FROM def_hashes WHERE key NOT LIKE 'ends %'")" = "$key" ] || fail "an unchanged file got other kept hashes"
sed -i 's/echo C/echo C2/' w.cfg
dp run w.cfg --state v1.db --resume --json r.json -q > /dev/null 2>&1
[ "$(jq -r '[.jobs.A.reused, .jobs.C.reused, .jobs.S.reused] | map(tostring) | join(" ")' r.json)" = "true null null" ] ||
  fail "--resume right after an edit: $(jq -c '.jobs | map_values(.reused)' r.json)"
sleep 2.2
sed -i 's/echo A/echo A2/' w.cfg
touch -d '1 hour ago' w.cfg # the mtime set back: the ctime still tells
sleep 2.2
dp run w.cfg --state v1.db --resume --json r.json -q > /dev/null 2>&1
[ "$(jq -r '[.jobs.A.reused, .jobs.B.reused, .jobs."D \"quoted\"".reused] | map(tostring) | join(" ")' r.json)" = "null null true" ] ||
  fail "--resume after an older edit: $(jq -c '.jobs | map_values(.reused)' r.json)"
[ "$(q "SELECT key || jobs FROM def_hashes WHERE key NOT LIKE 'ends %'")" != "$key" ] || fail "an edited file kept the old hashes' key"
dp run w.cfg --state v1.db --resume --json r.json -q > /dev/null 2>&1
[ "$(jq -r '[.jobs[] | .reused] | map(tostring) | join(" ")' r.json)" = "true true true true true" ] ||
  fail "--resume with the kept hashes: $(jq -c '.jobs | map_values(.reused)' r.json)"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity at the end"

# Schema version 2 to 3: the hashes recorded stay version 1's.
mkdir v2 && cd v2 || exit 1
FIX2=$(cd "$FIX/../v2" && pwd)
cp "$FIX/w.cfg" . && sqlite3 v2.db < "$FIX2/state.sql" || { echo "FAIL: cannot make the version 2 file"; exit 1; }
q2() { sqlite3 -cmd ".timeout 5000" "$1" "$2"; }
q2 v2.db "UPDATE meta SET value = '$PWD/w.cfg' WHERE key = 'workflow_file'"
[ "$(q2 v2.db 'PRAGMA user_version')" = 2 ] || fail "the fixture is not version 2"
dp plan w.cfg --state v2.db --resume > plan 2>&1 || fail "plan --resume of version 2: exit $?"
grep -q 'C: succeeded before, unchanged' plan || fail "plan --resume of version 2 does not reuse C: $(cat plan)"
dp run w.cfg --state v2.db --resume --json r3.json -q > out 2>&1 || fail "run --resume on version 2: exit $?: $(cat out)"
[ "$(q2 v2.db 'PRAGMA user_version')" = 3 ] && [ "$(q2 v2.db "SELECT value FROM meta WHERE key = 'def_hash'")" = 1 ] ||
  fail "version 2 migrated: user_version $(q2 v2.db 'PRAGMA user_version'), hash version $(q2 v2.db "SELECT value FROM meta WHERE key = 'def_hash'")"
[ "$(jq -r '[.jobs.A.reused, .jobs.B.reused, .jobs.C.reused, .jobs."D \"quoted\"".reused, .jobs.S.reused] | map(tostring) | join(" ")' r3.json)" = "true true true null true" ] ||
  fail "--resume after the migration from version 2: $(jq -c '.jobs | map_values(.reused)' r3.json)"
dp show w.cfg 1 --state v2.db --json | cmp -s - "$FIX2/run1.json" || fail "show 1 --json after the migration from version 2 differs"
[ "$(q2 v2.db 'PRAGMA integrity_check')" = ok ] || fail "integrity after the migration from version 2"

# A new file: hash version 2, other values than version 1's for the same jobs, the same reuse.
dp run w.cfg --state new.db -q > /dev/null 2>&1 || fail "a run with a new state: exit $?"
[ "$(q2 new.db 'PRAGMA user_version')" = 3 ] && [ "$(q2 new.db "SELECT value FROM meta WHERE key = 'def_hash'")" = 2 ] ||
  fail "a new file: user_version $(q2 new.db 'PRAGMA user_version'), hash version $(q2 new.db "SELECT value FROM meta WHERE key = 'def_hash'")"
old=$(q2 v2.db "SELECT job || ' ' || def_hash FROM job_last ORDER BY job")
new=$(q2 new.db "SELECT job || ' ' || def_hash FROM job_last ORDER BY job")
[ "$(echo "$new" | wc -l)" = 5 ] && [ -z "$(comm -12 <(echo "$old") <(echo "$new"))" ] ||
  fail "hash version 2 gives version 1's values: $old / $new"
[ "$(q2 new.db 'SELECT count(DISTINCT def_hash) FROM job_last')" = 5 ] || fail "hash version 2: two jobs share a hash"
# Reordered params and dependencies count for neither version; a changed value does.
cat > w2.cfg <<'CFG'
workflow: { name = "w2"; };
jobs = (
  { name = "P"; type = "shell.command"; params = { command = "true"; env = { X = "1"; Y = "2"; }; }; },
  { name = "Q"; type = "shell.command"; params = { command = "true"; }; },
  { name = "R"; type = "shell.command"; depends_on = ["P", "Q"]; params = { command = "true"; }; }
);
CFG
for f in new old; do
  dp run w2.cfg --state "w2-$f.db" -q > /dev/null 2>&1 || fail "w2 ($f): first run exit $?"
done
q2 w2-old.db "UPDATE meta SET value = '1' WHERE key = 'def_hash'" # hash version 1, as a migrated file
dp run w2.cfg --state w2-old.db -q > /dev/null 2>&1
sed -i 's/env = { X = "1"; Y = "2"; }; }/env = { Y = "2"; X = "1"; }; }/; s/\["P", "Q"\]/["Q", "P"]/' w2.cfg
grep -q '\["Q", "P"\]' w2.cfg && grep -q 'Y = "2"; X' w2.cfg || fail "w2: the reordering edit did not apply"
for f in new old; do
  dp run w2.cfg --state "w2-$f.db" --resume --json "w2-$f.json" -q > /dev/null 2>&1
  [ "$(jq -r '[.jobs[] | .reused] | map(tostring) | join(" ")' "w2-$f.json")" = "true true true" ] ||
    fail "w2 ($f): --resume after reordering: $(jq -c '.jobs | map_values(.reused)' "w2-$f.json")"
done
sed -i 's/X = "1"/X = "3"/' w2.cfg
for f in new old; do
  dp run w2.cfg --state "w2-$f.db" --resume --json "w2-$f.json" -q > /dev/null 2>&1
  [ "$(jq -r '[.jobs.P.reused, .jobs.Q.reused, .jobs.R.reused] | map(tostring) | join(" ")' "w2-$f.json")" = "null true null" ] ||
    fail "w2 ($f): --resume after a nested value changed: $(jq -c '.jobs | map_values(.reused)' "w2-$f.json")"
done
# A hash version this daggerpool does not know: refused, the file untouched.
cp new.db newer.db && q2 newer.db "UPDATE meta SET value = '9' WHERE key = 'def_hash'"
sum=$(md5sum < newer.db)
dp run w.cfg --state newer.db -q > out 2>&1; rc=$?
[ $rc = 2 ] && grep -q "definition hash version .9., which this daggerpool .* does not know" out && [ "$(md5sum < newer.db)" = "$sum" ] ||
  fail "an unknown hash version: exit $rc: $(cat out)"
cd ..

[ $fails = 0 ] && echo "ok: state.migrate" && exit 0
echo "$fails failure(s)"
exit 1
