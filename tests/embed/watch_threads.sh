#!/bin/sh
# watch_threads.sh DAGGERPOOL - `daggerpool watch` runs its workers on
# threads kept from run to run (an executor), not on threads made and
# joined every run: over six or more runs of a workflow whose two jobs run
# at once, the process shows a handful of thread ids in all (main, the
# plugin watcher, the console's, the two workers), where threads made per
# run showed two new ones each run (38 ids over 18 runs before).
# Every process it starts is killed by pid on exit.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_watch_threads.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cat > "$WORK/wf.cfg" <<'CFG'
workflow = { name = "threads"; max_concurrent_jobs = 2; };
jobs = (
  { name = "a"; type = "core.sleep"; params = { duration = "30ms"; }; },
  { name = "b"; type = "core.sleep"; params = { duration = "30ms"; }; },
  { name = "c"; type = "core.sleep"; depends_on = ["a", "b"]; params = { duration = "30ms"; }; }
);
CFG
: > "$WORK/err" # made before the watch starts: the loop below may read it first
"$DP" watch --interval 50ms "$WORK/wf.cfg" > "$WORK/out" 2> "$WORK/err" &
pid=$!
# Samples the thread ids every 10 ms until six runs ended (at most 60 s).
: > "$WORK/tids"
i=0
while [ "$(grep -c 'next run in' "$WORK/err")" -lt 6 ]; do
  ls "/proc/$pid/task" >> "$WORK/tids" 2>/dev/null || { echo "FAIL: watch exited"; cat "$WORK/err"; exit 1; }
  i=$((i + 1))
  [ $i -gt 6000 ] && { echo "FAIL: six runs did not end within 60 s"; tail -5 "$WORK/err"; exit 1; }
  sleep 0.01
done
kill -TERM "$pid"
wait "$pid"
pid=
runs=$(grep -c 'next run in' "$WORK/err")
tids=$(sort -u "$WORK/tids" | wc -l)
grep -q 'run 1: success' "$WORK/err" || { echo "FAIL: the runs did not succeed"; tail -5 "$WORK/err"; exit 1; }
if [ "$tids" -gt 6 ]; then
  echo "FAIL: $tids thread ids over $runs runs: workers are made per run, not kept"
  exit 1
fi
echo "ok: $tids thread ids over $runs runs"
echo "1 passed, 0 failed"
