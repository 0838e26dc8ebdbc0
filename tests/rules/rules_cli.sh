#!/bin/sh
# rules_cli.sh DAGGERPOOL WORK - trigger rules and final jobs through the
# command (README.md, "Trigger rules and final jobs"):
#   1. keep going on a 12-job workflow: all_success, all_done, any_failed
#      and a not-needed handler decide; statuses, reasons, frontiers,
#      boundary and exit 1 in the JSON and the summary;
#   2. continue_on_failure: the only failure is tolerated: exit 0;
#   3. fail-fast: the cleanup and the failed job's handler run after the
#      cancellation; exit 1, cleanup_after "fail_fast";
#   4. --timeout: the cleanup runs; exit 4 (and still 4 when the cleanup
#      fails);
#   5. --timeout with a cleanup that hangs: cleanup_timeout bounds it, it
#      fails "cleanup_timeout (1s) passed", exit 4;
#   6. SIGINT: the cleanup runs; exit 130; with a cleanup that hangs, it is
#      bounded by its cleanup_timeout;
#   7. validate refuses what cannot mean anything (a rule without
#      dependencies, an unknown rule, a grace on a job that is no final job
#      or in defaults with no final job), with FILE:LINE; graph
#      draws the rules;
#   8. a workflow that uses no rule has none of the new JSON keys.
# After every case no process of the case is left. Every `daggerpool run`
# is bounded by a guard far above what the case needs.
set -u
DP=$1 WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && chmod 700 "$WORK"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Long sleeps carry this run's pid as their fraction: pgrep finds what a
# case left behind, and nothing else.
LONG="60.$$"
MARK_RE="sleep [0-9]+\\.$$([^0-9]|\$)"
GUARD=45

cleanup() {
  [ -n "${bg:-}" ] && kill -KILL "$bg" 2>/dev/null
  for p in $(pgrep -f "$MARK_RE"); do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

no_leftovers() {
  i=0
  while [ -n "$(pgrep -f "$MARK_RE")" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
      fail "$1: left running: $(pgrep -f "$MARK_RE" | tr '\n' ' ')"
      cleanup
      return 1
    fi
    sleep 0.05
  done
}

# run NAME CFG [ARGS...]: JSON to NAME.json, summary to NAME.out, stderr to
# NAME.err; sets rc and took (ms).
run() {
  name=$1 cfg=$2
  shift 2
  t0=$(now_ms)
  timeout -s KILL $GUARD "$DP" run "$cfg" --json "$WORK/$name.json" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
  took=$(($(now_ms) - t0))
}
field() { jq -r "$2" "$WORK/$1.json" 2>/dev/null; }
show() { echo "--- $1.err:"; tail -n 20 "$WORK/$1.err"; echo "--- $1.out:"; cat "$WORK/$1.out"; echo "--- $1.json:"; cat "$WORK/$1.json" 2>/dev/null; }
# Each job's status, "name=status" joined by spaces, in name order.
statuses() { jq -r '[.jobs | to_entries[] | "\(.key)=\(.value.status)"] | join(" ")' "$WORK/$1.json" 2>/dev/null; }

# ---- 1. keep going, every rule ----
cat >"$WORK/keep.cfg" <<CFG
workflow: { name = "keep"; fail_fast = false; max_concurrent_jobs = 4; };
jobs = (
  { name = "a"; type = "core.noop"; },
  { name = "b"; type = "core.sleep"; depends_on = [ "a" ]; params = { duration = "5ms"; error = "b broke"; }; },
  { name = "c"; type = "core.noop"; depends_on = [ "a" ]; },
  { name = "d"; type = "core.noop"; depends_on = [ "b" ]; },
  { name = "e"; type = "core.noop"; depends_on = [ "d" ]; },
  { name = "f"; type = "core.noop"; depends_on = [ "c" ]; },
  { name = "g"; type = "core.noop"; depends_on = [ "e", "f" ]; },
  { name = "h"; type = "core.noop"; depends_on = [ "b" ]; run_if = "any_failed"; },
  { name = "i"; type = "core.noop"; depends_on = [ "c" ]; run_if = "any_failed"; },
  { name = "j"; type = "core.noop"; depends_on = [ "i" ]; },
  { name = "k"; type = "shell.command"; depends_on = [ "g", "h" ]; run_if = "all_done";
    params = { command = "touch $WORK/keep.k"; }; },
  { name = "l"; type = "core.noop"; depends_on = [ "k" ]; }
);
CFG
run keep "$WORK/keep.cfg"
want="a=success b=failed c=success d=skipped e=skipped f=success g=skipped h=success i=skipped j=skipped k=success l=success"
if [ $rc -eq 1 ] && [ "$(statuses keep)" = "$want" ] && [ -e "$WORK/keep.k" ] &&
  [ "$(field keep .outcome)" = failed ] &&
  [ "$(field keep .jobs.h.reason)" = "a dependency failed" ] &&
  [ "$(field keep .jobs.i.reason)" = "no dependency failed" ] &&
  [ "$(field keep .jobs.j.reason)" = "a dependency was not needed" ] &&
  [ "$(field keep .jobs.k.reason)" = "dependencies ended" ] &&
  [ "$(field keep .jobs.k.run_if)" = all_done ] &&
  [ "$(field keep '.jobs.a | has("reason")')" = false ] &&
  [ "$(field keep '[.frontiers[].job] | join(",")')" = b ] &&
  [ "$(field keep '.boundary | join(",")')" = "a,c,f" ] &&
  [ "$(field keep 'has("cleanup_after")')" = false ] &&
  grep -q "why: no dependency failed (run_if any_failed)" "$WORK/keep.out"; then
  ok "keep going: every rule decided (exit 1)"
else
  fail "keep going (exit $rc): $(statuses keep)"; show keep
fi

# ---- 2. continue_on_failure ----
cat >"$WORK/cof.cfg" <<CFG
workflow: { name = "cof"; };
jobs = (
  { name = "a"; type = "core.noop"; },
  { name = "lint"; type = "core.sleep"; depends_on = [ "a" ]; params = { duration = "1ms"; error = "style"; };
    continue_on_failure = true; },
  { name = "z"; type = "core.noop"; depends_on = [ "lint" ]; }
);
CFG
run cof "$WORK/cof.cfg"
if [ $rc -eq 0 ] && [ "$(statuses cof)" = "a=success lint=failed z=success" ] &&
  [ "$(field cof .outcome)" = success ] && [ "$(field cof .first_error)" = null ] &&
  [ "$(field cof .jobs.lint.error)" = style ] && [ "$(field cof .jobs.lint.continue_on_failure)" = true ]; then
  ok "continue_on_failure: its failure tolerated (exit 0)"
else
  fail "continue_on_failure (exit $rc)"; show cof
fi

# ---- 3. fail-fast: the cleanup and the handler run after the cancel ----
cat >"$WORK/ff.cfg" <<CFG
workflow: { name = "ff"; max_concurrent_jobs = 4; };
jobs = (
  { name = "a"; type = "core.noop"; },
  { name = "slow"; type = "shell.command"; depends_on = [ "a" ]; params = { command = "sleep $LONG"; }; },
  { name = "bad"; type = "core.sleep"; depends_on = [ "a" ]; params = { duration = "200ms"; error = "bad broke"; }; },
  { name = "after"; type = "core.noop"; depends_on = [ "slow", "bad" ]; },
  { name = "on_bad"; type = "shell.command"; depends_on = [ "bad" ]; run_if = "any_failed";
    params = { command = "touch $WORK/ff.handler"; }; },
  { name = "cleanup"; type = "shell.command"; depends_on = [ "after", "on_bad" ]; run_if = "all_done";
    params = { command = "test -e $WORK/ff.handler && touch $WORK/ff.cleanup"; }; }
);
CFG
run ff "$WORK/ff.cfg"
if [ $rc -eq 1 ] && [ -e "$WORK/ff.cleanup" ] && [ "$took" -lt 20000 ] &&
  [ "$(field ff .cleanup_after)" = fail_fast ] && [ "$(field ff .first_error)" = "bad broke" ] &&
  [ "$(field ff .jobs.cleanup.status)" = success ] && [ "$(field ff .jobs.on_bad.status)" = success ] &&
  [ "$(field ff .jobs.cleanup.reason)" = "cleanup after fail-fast" ] &&
  [ "$(field ff .jobs.slow.status)" = unknown ] &&
  grep -q "cleanup: the final jobs ran after fail-fast cut the run" "$WORK/ff.out"; then
  ok "fail-fast: handler, then cleanup ran after the cancel (exit 1, ${took}ms)"
else
  fail "fail-fast cleanup (exit $rc, ${took}ms)"; show ff
fi
no_leftovers "fail-fast"

# ---- 4. --timeout: the cleanup runs; the exit stays 4 ----
for cleanup_fails in 0 1; do
  if [ $cleanup_fails = 1 ]; then cmd="touch $WORK/to$cleanup_fails.cleanup; exit 3"; else cmd="touch $WORK/to$cleanup_fails.cleanup"; fi
  cat >"$WORK/to$cleanup_fails.cfg" <<CFG
workflow: { name = "to"; };
jobs = (
  { name = "slow"; type = "shell.command"; params = { command = "sleep $LONG"; }; },
  { name = "cleanup"; type = "shell.command"; depends_on = [ "slow" ]; run_if = "all_done";
    params = { command = "$cmd"; }; }
);
CFG
  run to$cleanup_fails "$WORK/to$cleanup_fails.cfg" --timeout 500ms
  want_status=success; [ $cleanup_fails = 1 ] && want_status=failed
  if [ $rc -eq 4 ] && [ -e "$WORK/to$cleanup_fails.cleanup" ] && [ "$took" -lt 20000 ] &&
    [ "$(field to$cleanup_fails .timed_out)" = true ] && [ "$(field to$cleanup_fails .cleanup_after)" = timeout ] &&
    [ "$(field to$cleanup_fails .jobs.cleanup.status)" = $want_status ] &&
    [ "$(field to$cleanup_fails .jobs.slow.status)" = unknown ]; then
    ok "--timeout: the cleanup ran, $want_status (exit 4, ${took}ms)"
  else
    fail "--timeout cleanup $want_status (exit $rc, ${took}ms)"; show to$cleanup_fails
  fi
  no_leftovers "--timeout"
done

# ---- 5. --timeout with a cleanup that hangs: bounded ----
cat >"$WORK/hang.cfg" <<CFG
workflow: { name = "hang"; };
jobs = (
  { name = "slow"; type = "shell.command"; params = { command = "sleep $LONG"; }; },
  { name = "cleanup"; type = "shell.command"; depends_on = [ "slow" ]; run_if = "all_done"; cleanup_timeout = "1s";
    params = { command = "sleep $LONG"; }; }
);
CFG
run hang "$WORK/hang.cfg" --timeout 300ms
if [ $rc -eq 4 ] && [ "$took" -ge 1000 ] && [ "$took" -lt 20000 ] &&
  [ "$(field hang .jobs.cleanup.status)" = failed ] &&
  [ "$(field hang .jobs.cleanup.error)" = "cleanup_timeout (1s) passed" ] &&
  [ "$(field hang .first_error)" = "timeout after 300ms" ] &&
  ! grep -q "cleanup: unknown" "$WORK/hang.err" && grep -q "cleanup: failed after 1 attempt: cleanup_timeout" "$WORK/hang.err"; then
  ok "a hanging cleanup is bounded by cleanup_timeout (exit 4, ${took}ms)"
else
  fail "hanging cleanup (exit $rc, ${took}ms)"; show hang
fi
no_leftovers "hanging cleanup"

# ---- 6. SIGINT: the cleanup runs, bounded ----
for variant in quick hang; do
  rm -f "$WORK/started" "$WORK/int_$variant.cleanup"
  if [ $variant = hang ]; then cmd="touch $WORK/int_$variant.cleanup; sleep $LONG"; else cmd="touch $WORK/int_$variant.cleanup"; fi
  cat >"$WORK/int_$variant.cfg" <<CFG
workflow: { name = "int"; };
jobs = (
  { name = "slow"; type = "shell.command"; params = { command = "touch $WORK/started; sleep $LONG"; }; },
  { name = "cleanup"; type = "shell.command"; depends_on = [ "slow" ]; run_if = "all_done"; cleanup_timeout = "1s";
    params = { command = "$cmd"; }; }
);
CFG
  # Not under timeout(1): it would pass the signal on twice, which
  # daggerpool reads as "quit at once".
  "$DP" run "$WORK/int_$variant.cfg" --json "$WORK/int_$variant.json" >"$WORK/int_$variant.out" 2>"$WORK/int_$variant.err" &
  bg=$!
  i=0; while [ ! -e "$WORK/started" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  t0=$(now_ms)
  kill -INT $bg
  i=0; while kill -0 $bg 2>/dev/null && [ $i -lt $((GUARD * 20)) ]; do sleep 0.05; i=$((i + 1)); done
  kill -0 $bg 2>/dev/null && kill -KILL $bg
  wait $bg
  rc=$?
  bg=
  took=$(($(now_ms) - t0))
  want_status=success; [ $variant = hang ] && want_status=failed
  if [ $rc -eq 130 ] && [ -e "$WORK/int_$variant.cleanup" ] && [ "$took" -lt 15000 ] &&
    [ "$(field int_$variant .outcome)" = cancelled ] && [ "$(field int_$variant .cleanup_after)" = cancelled ] &&
    [ "$(field int_$variant .first_error)" = cancelled ] &&
    [ "$(field int_$variant .jobs.cleanup.status)" = $want_status ] &&
    [ "$(field int_$variant .jobs.cleanup.reason)" = "cleanup after cancellation" ]; then
    ok "SIGINT: the cleanup ran ($variant: $want_status, exit 130, ${took}ms)"
  else
    fail "SIGINT cleanup $variant (exit $rc, ${took}ms)"; show int_$variant
  fi
  no_leftovers "SIGINT $variant"
done

# ---- 7. validate and graph ----
cat >"$WORK/bad.cfg" <<CFG
workflow: { name = "bad"; };
jobs = (
  { name = "a"; type = "core.noop"; run_if = "all_done"; },
  { name = "b"; type = "core.noop"; depends_on = [ "a" ]; run_if = "sometimes"; },
  { name = "c"; type = "core.noop"; depends_on = [ "a" ]; cleanup_timeout = "2s"; }
);
CFG
"$DP" validate "$WORK/bad.cfg" >"$WORK/bad.out" 2>"$WORK/bad.err"
rc=$?
if [ $rc -eq 2 ] && grep -q "bad.cfg:3: job 'a' has run_if = \"all_done\" but no depends_on" "$WORK/bad.err" &&
  grep -q "bad.cfg:4: 'run_if' of job 'b' must be \"all_success\"" "$WORK/bad.err" &&
  grep -q "bad.cfg:5: job 'c' has cleanup_timeout but is no final job" "$WORK/bad.err"; then
  ok "validate: a rule without dependencies, an unknown rule, a stray cleanup_timeout (exit 2)"
else
  fail "validate (exit $rc)"; cat "$WORK/bad.err"
fi
cat >"$WORK/grace.cfg" <<CFG
workflow: { name = "grace"; };
defaults = {
  cleanup_timeout = "5s"; };
jobs = ( { name = "a"; type = "core.noop"; }, { name = "b"; type = "core.noop"; depends_on = [ "a" ]; } );
CFG
"$DP" validate "$WORK/grace.cfg" >/dev/null 2>"$WORK/grace.err"
rc=$?
if [ $rc -eq 2 ] && grep -q "grace.cfg:3: defaults.cleanup_timeout is set but no job is a final job" "$WORK/grace.err"; then
  ok "validate: a default cleanup_timeout without any final job (exit 2)"
else
  fail "validate grace (exit $rc)"; cat "$WORK/grace.err"
fi
"$DP" validate "$WORK/keep.cfg" >/dev/null 2>&1 || fail "validate refused keep.cfg"
"$DP" graph "$WORK/keep.cfg" >"$WORK/keep.dot" 2>&1
"$DP" graph "$WORK/keep.cfg" --format mermaid >"$WORK/keep.mmd" 2>&1
if grep -q '"g" -> "k" \[style=dashed, label="all_done"\]' "$WORK/keep.dot" &&
  grep -q '"b" -> "h" \[style=dashed, label="any_failed"' "$WORK/keep.dot" &&
  grep -q '"a" -> "b";' "$WORK/keep.dot" && grep -q -- '-. all_done .->' "$WORK/keep.mmd"; then
  ok "graph draws the rules"
else
  fail "graph"; cat "$WORK/keep.dot" "$WORK/keep.mmd"
fi

# ---- 8. no rule, no new key ----
cat >"$WORK/plain.cfg" <<CFG
workflow: { name = "plain"; fail_fast = false; };
jobs = (
  { name = "a"; type = "core.noop"; },
  { name = "b"; type = "core.sleep"; depends_on = [ "a" ]; params = { duration = "1ms"; error = "no"; }; },
  { name = "c"; type = "core.noop"; depends_on = [ "b" ]; }
);
CFG
run plain "$WORK/plain.cfg"
keys=$(jq -r '[paths | map(tostring) | last] | unique | join(",")' "$WORK/plain.json")
case ",$keys," in
*,run_if,* | *,reason,* | *,continue_on_failure,* | *,cleanup_after,*) fail "new keys in a plain workflow's JSON: $keys" ;;
*) if [ $rc -eq 1 ]; then ok "a workflow without rules has no new JSON key"; else fail "plain (exit $rc)"; show plain; fi ;;
esac

[ $fails -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
