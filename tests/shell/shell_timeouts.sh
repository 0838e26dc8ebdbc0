#!/bin/sh
# shell_timeouts.sh DAGGERPOOL WORK - shell.command's timeouts and cancellation
# through the command, whatever the command writes (issue 12, part 2):
#   1. a job timeout after output (and its retry);
#   2. the run's timeout after output;
#   3. fail-fast cancelling a chatty sibling;
#   4. SIGINT and SIGTERM to `daggerpool run` while a chatty job runs;
#   5. stderr filled beyond a pipe's capacity while stdout is open (the
#      command ends; the message carries the tail of stderr);
#   6. a background child that keeps the output open after the shell exited,
#      and one that does not: the job ends with the shell, both are stopped;
#   7. a readiness check that prints and then hangs (same runner);
# and after every case: no process of the case is left (each command records
# its process group, and every long sleep carries this run's marker).
# Every `daggerpool run` is bounded by a guard far above what the case needs,
# so a regression fails instead of hanging.
set -u
DP=$1 WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && chmod 700 "$WORK"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Long sleeps carry this run's pid as their fraction (sleep 20.$$, sleep
# 60.$$): `pgrep -f "$MARK_RE"` finds what a case left behind, and nothing
# else.
MARK="20.$$" LONG="60.$$"
MARK_RE="sleep [0-9]+\\.$$([^0-9]|\$)"
PGIDS=$WORK/pgids # each command appends its process group ($$ of its shell)
: >"$PGIDS"
GUARD=45          # seconds: a case that hangs is killed and fails

cleanup() {
  [ -n "${bg:-}" ] && kill -KILL "$bg" 2>/dev/null
  while read -r pg; do kill -KILL -"$pg" 2>/dev/null; done <"$PGIDS"
  for p in $(pgrep -f "$MARK_RE"); do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Nothing of the case is left: every recorded group is empty (zombies are
# reaped by whoever adopted them: give that a few seconds) and no sleep with
# the marker runs.
no_leftovers() {
  i=0
  while :; do
    left=""
    while read -r pg; do kill -0 -"$pg" 2>/dev/null && left="$left group $pg"; done <"$PGIDS"
    p=$(pgrep -f "$MARK_RE" | tr '\n' ' ')
    [ -n "$p" ] && left="$left sleep $p"
    [ -z "$left" ] && return 0
    i=$((i + 1))
    if [ $i -gt 100 ]; then
      fail "$1: left running:$left"
      ps -o pid,pgid,stat,args -e | grep -E "$MARK_RE" | grep -v grep
      cleanup
      : >"$PGIDS"
      return 1
    fi
    sleep 0.05
  done
}

# run NAME CFG [ARGS...]: runs the workflow (JSON to NAME.json, stderr to
# NAME.err); sets rc and took (ms).
run() {
  name=$1 cfg=$2
  shift 2
  t0=$(now_ms)
  timeout -s KILL $GUARD "$DP" run "$cfg" --json "$WORK/$name.json" "$@" >/dev/null 2>"$WORK/$name.err"
  rc=$?
  took=$(($(now_ms) - t0))
}
field() { jq -r "$2" "$WORK/$1.json" 2>/dev/null; }
show() { echo "--- $1.err:"; tail -n 20 "$WORK/$1.err"; echo "--- $1.json:"; cat "$WORK/$1.json" 2>/dev/null; }
rec='echo $$ >> '"$PGIDS"';'

# ---- 1. job timeout after output ----
cat >"$WORK/job_timeout.cfg" <<CFG
workflow: { name = "t"; timeout = "30s"; };
jobs = ( { name = "a"; type = "shell.command"; timeout = "1s"; retries = 1;
           backoff = { initial = "100ms"; };
           params = { command = "$rec echo started; echo on stderr >&2; sleep $MARK"; }; } );
CFG
run job_timeout "$WORK/job_timeout.cfg"
if [ $rc -eq 1 ] && [ $took -lt 10000 ] && [ "$(field job_timeout .jobs.a.status)" = failed ] &&
   [ "$(field job_timeout .jobs.a.error)" = "timed out after 1s" ] &&
   [ "$(field job_timeout .jobs.a.attempts)" = 2 ]; then
  ok "job timeout after output: failed 'timed out after 1s' after 2 attempts in ${took}ms"
else
  fail "job timeout after output (exit $rc, ${took}ms)"; show job_timeout
fi
no_leftovers "job timeout"

# ---- 2. the run's timeout after output ----
cat >"$WORK/run_timeout.cfg" <<CFG
workflow: { name = "t"; timeout = "1s"; };
jobs = ( { name = "a"; type = "shell.command";
           params = { command = "$rec echo started; sleep $MARK"; }; } );
CFG
run run_timeout "$WORK/run_timeout.cfg"
if [ $rc -eq 4 ] && [ $took -lt 10000 ] && [ "$(field run_timeout .jobs.a.status)" = unknown ] &&
   [ "$(field run_timeout .outcome)" = timeout ]; then
  ok "run timeout after output: exit 4 in ${took}ms"
else
  fail "run timeout after output (exit $rc, ${took}ms)"; show run_timeout
fi
no_leftovers "run timeout"

# ---- 3. fail-fast cancels a chatty sibling ----
cat >"$WORK/fail_fast.cfg" <<CFG
workflow: { name = "t"; timeout = "30s"; };
jobs = (
  { name = "chatty"; type = "shell.command";
    params = { command = "$rec while :; do echo tick; echo tock >&2; sleep 0.01; done"; }; },
  { name = "flood"; type = "shell.command"; params = { command = "$rec yes"; }; },
  { name = "bad"; type = "shell.command";
    params = { command = "$rec sleep 0.5; echo broken >&2; exit 1"; }; }
);
CFG
run fail_fast "$WORK/fail_fast.cfg"
if [ $rc -eq 1 ] && [ $took -lt 10000 ] && [ "$(field fail_fast .jobs.bad.error)" = "exit status 1: broken" ] &&
   [ "$(field fail_fast .jobs.chatty.status)" = unknown ] &&
   [ "$(field fail_fast .jobs.flood.status)" = unknown ]; then
  ok "fail-fast: chatty siblings cancelled, exit 1 in ${took}ms"
else
  fail "fail-fast with chatty siblings (exit $rc, ${took}ms)"; show fail_fast
fi
no_leftovers "fail-fast"

# ---- 4. SIGINT and SIGTERM while a chatty job runs ----
for sig in INT TERM; do
  rm -f "$WORK/started"
  cat >"$WORK/sig$sig.cfg" <<CFG
workflow: { name = "t"; };
jobs = ( { name = "chatty"; type = "shell.command";
           params = { command = "$rec touch $WORK/started; while :; do echo tick; echo tock >&2; sleep 0.01; done"; }; },
         { name = "sleepy"; type = "shell.command";
           params = { command = "$rec echo started; sleep $MARK"; }; } );
CFG
  # Not under timeout(1): it would pass the signal on twice (to the child
  # and to its group), which daggerpool reads as "quit at once".
  "$DP" run "$WORK/sig$sig.cfg" --json "$WORK/sig$sig.json" >/dev/null 2>"$WORK/sig$sig.err" &
  bg=$!
  i=0; while [ ! -e "$WORK/started" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  sleep 0.3
  t0=$(now_ms)
  kill -$sig $bg
  i=0; while kill -0 $bg 2>/dev/null && [ $i -lt $((GUARD * 20)) ]; do sleep 0.05; i=$((i + 1)); done
  kill -0 $bg 2>/dev/null && kill -KILL $bg
  wait $bg; rc=$?
  took=$(($(now_ms) - t0))
  bg=
  if [ $rc -eq 130 ] && [ $took -lt 5000 ] && [ "$(field sig$sig .outcome)" = cancelled ] &&
     [ "$(field sig$sig .jobs.chatty.status)" = unknown ]; then
    ok "SIG$sig during a chatty job: exit 130 ${took}ms after the signal"
  else
    fail "SIG$sig during a chatty job (exit $rc, ${took}ms after the signal)"; show sig$sig
  fi
  no_leftovers "SIG$sig"
done

# ---- 5. stderr beyond a pipe's capacity while stdout is open ----
cat >"$WORK/flood.cfg" <<CFG
workflow: { name = "t"; timeout = "30s"; };
jobs = (
  { name = "zeros"; type = "shell.command";
    params = { command = "echo x; head -c 100000 /dev/zero >&2; echo done"; }; },
  { name = "tail"; type = "shell.command";
    params = { command = "echo x; head -c 300000 /dev/zero | tr '\\\\0' z >&2; echo >&2; echo last words >&2; echo done; exit 3"; }; }
);
CFG
run flood "$WORK/flood.cfg" --keep-going
err=$(field flood .jobs.tail.error)
case "$err" in
  "exit status 3: zzz"*"; last words") tail_ok=1 ;;
  *) tail_ok=0 ;;
esac
if [ $rc -eq 1 ] && [ $took -lt 10000 ] && [ "$(field flood .jobs.zeros.status)" = success ] && [ $tail_ok = 1 ] &&
   [ ${#err} -lt 1100 ]; then
  ok "stderr beyond the pipe: both commands ended in ${took}ms; message ends '; last words' (${#err} bytes)"
else
  fail "stderr beyond the pipe (exit $rc, ${took}ms, error: $(printf '%.80s' "$err")...)"; tail -n 5 "$WORK/flood.err"
fi

# ---- 6. a background child keeps the output open after the shell exited ----
cat >"$WORK/background.cfg" <<CFG
workflow: { name = "t"; timeout = "30s"; };
jobs = (
  { name = "holds"; type = "shell.command"; params = { command = "$rec sleep $MARK & echo bye"; }; },
  { name = "quiet"; type = "shell.command";
    params = { command = "$rec sleep $LONG >/dev/null 2>&1 & echo bye"; }; },
  { name = "stubborn"; type = "shell.command";
    params = { command = "$rec sh -c 'trap \"\" TERM; echo stubborn; sleep $MARK' & sleep 0.2; echo bye";
               kill_grace = "500ms"; }; }
);
CFG
run background "$WORK/background.cfg"
if [ $rc -eq 0 ] && [ $took -lt 8000 ] && [ "$(field background .outcome)" = success ]; then
  ok "background children holding the output: the jobs ended with their shells (${took}ms)"
else
  fail "background children (exit $rc, ${took}ms)"; show background
fi
no_leftovers "background children"

# ---- 7. a readiness check that prints, then hangs ----
cat >"$WORK/check.cfg" <<CFG
workflow: { name = "t"; timeout = "30s"; };
jobs = ( { name = "a"; type = "shell.command"; readiness = { probe_timeout = "1s"; };
           params = { command = "true"; check = "$rec echo probing; sleep $MARK"; }; } );
CFG
run check "$WORK/check.cfg"
if [ $rc -eq 1 ] && [ $took -lt 10000 ] &&
   [ "$(field check .jobs.a.error)" = "readiness probe timed out after 1s" ]; then
  ok "check timeout after output: failed in ${took}ms"
else
  fail "check timeout after output (exit $rc, ${took}ms)"; show check
fi
no_leftovers "check"

[ $fails -eq 0 ] && rm -rf "$WORK"
echo "$fails failure(s)"
[ $fails -eq 0 ]
