#!/bin/sh
# cli_unknown_no_error.sh DAGGERPOOL - results after cancellation are not
# trusted (README, "Execution semantics"): a job the run's timeout, a
# fail-fast cancel or SIGINT cut off is `unknown` and carries no error (JSON
# "error": null, no error line in the summary, no error in the trace's span
# for that attempt); the run's first_error says why it stopped.
#   1. the run's timeout cuts a sleeping job (A) and a job in its backoff (B);
#   2. fail-fast: X fails, the running Y is cancelled;
#   3. SIGINT cancels the running S.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_unknown.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# waits up to $2 seconds for file $1 to contain $3
wait_for() { i=0; while ! grep -q -- "$3" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1; sleep 0.05; done; }
# the error of job $2 in result $1 ("null" when none)
err_of() { jq -r ".jobs.\"$2\".error" "$1"; }
status_of() { jq -r ".jobs.\"$2\".status" "$1"; }
# trace spans of job $2 in trace $1 that are unknown and carry an error
unknown_trace_errors() {
  jq "[.traceEvents[] | select(.ph == \"X\" and .args.job == \"$2\" and .args.status == \"unknown\" and (.args | has(\"error\")))] | length" "$1"
}
unknown_trace_spans() {
  jq "[.traceEvents[] | select(.ph == \"X\" and .args.job == \"$2\" and .args.status == \"unknown\")] | length" "$1"
}
show() { for f in "$@"; do echo "--- $f"; cat "$f"; done; }

# ---- 1. the run's timeout ----
cat > "$WORK/timeout.cfg" <<'CFG'
workflow: { name = "t"; timeout = "500ms"; };
jobs = (
  { name = "A"; type = "core.sleep"; params = { duration = "20s"; }; },
  { name = "B"; type = "core.sleep"; retries = 3; backoff = { initial = "20s"; };
    params = { duration = "10ms"; error = "boom"; }; },
  { name = "C"; type = "core.noop"; depends_on = [ "A" ]; }
);
CFG
"$DP" run "$WORK/timeout.cfg" --json "$WORK/t.json" --trace "$WORK/t.trace" >"$WORK/t.out" 2>"$WORK/t.err"
rc=$?
if [ $rc -eq 4 ] && [ "$(jq -r .first_error "$WORK/t.json")" = "timeout after 500ms" ] &&
   [ "$(status_of "$WORK/t.json" A)" = unknown ] && [ "$(err_of "$WORK/t.json" A)" = null ] &&
   [ "$(status_of "$WORK/t.json" B)" = unknown ] && [ "$(err_of "$WORK/t.json" B)" = null ] &&
   [ "$(err_of "$WORK/t.json" C)" = null ]; then
  ok "timeout: A and B unknown with error null, first_error says the timeout"
else
  fail "timeout: JSON (exit $rc)"; show "$WORK/t.json" "$WORK/t.err"
fi
# The summary's only error line is the run's first error.
if grep -q "first error: timeout after 500ms" "$WORK/t.out" && ! grep -q "interrupted" "$WORK/t.out" &&
   ! grep -q "boom" "$WORK/t.out" && ! grep -q "^ *error:" "$WORK/t.out"; then
  ok "timeout: the summary shows no error for an unknown job"
else
  fail "timeout: summary"; show "$WORK/t.out"
fi
# A's one attempt ended unknown, without an error; B's failed attempt keeps
# its own message (that attempt did fail).
if [ "$(unknown_trace_spans "$WORK/t.trace" A)" = 1 ] && [ "$(unknown_trace_errors "$WORK/t.trace" A)" = 0 ] &&
   [ "$(jq -r '[.traceEvents[] | select(.ph == "X" and .args.job == "B")][0].args.error' "$WORK/t.trace")" = boom ]; then
  ok "timeout: the trace's unknown span carries no error"
else
  fail "timeout: trace"; show "$WORK/t.trace"
fi

# ---- 2. fail-fast ----
cat > "$WORK/ff.cfg" <<'CFG'
workflow: { name = "ff"; };
jobs = (
  { name = "X"; type = "core.sleep"; params = { duration = "100ms"; error = "boom"; }; },
  { name = "Y"; type = "core.sleep"; params = { duration = "20s"; }; }
);
CFG
"$DP" run "$WORK/ff.cfg" --json "$WORK/ff.json" --trace "$WORK/ff.trace" >"$WORK/ff.out" 2>"$WORK/ff.err"
rc=$?
if [ $rc -eq 1 ] && [ "$(status_of "$WORK/ff.json" X)" = failed ] && [ "$(err_of "$WORK/ff.json" X)" = boom ] &&
   [ "$(status_of "$WORK/ff.json" Y)" = unknown ] && [ "$(err_of "$WORK/ff.json" Y)" = null ] &&
   [ "$(jq -r .first_error "$WORK/ff.json")" = boom ] &&
   ! grep -q "interrupted" "$WORK/ff.out" && [ "$(unknown_trace_errors "$WORK/ff.trace" Y)" = 0 ] &&
   [ "$(unknown_trace_spans "$WORK/ff.trace" Y)" = 1 ]; then
  ok "fail-fast: X failed with boom, Y unknown with no error"
else
  fail "fail-fast (exit $rc)"; show "$WORK/ff.json" "$WORK/ff.out" "$WORK/ff.trace" "$WORK/ff.err"
fi

# ---- 3. SIGINT ----
cat > "$WORK/int.cfg" <<'CFG'
workflow: { name = "int"; };
jobs = ( { name = "S"; type = "core.sleep"; params = { duration = "20s"; }; } );
CFG
"$DP" run "$WORK/int.cfg" --json "$WORK/int.json" --trace "$WORK/int.trace" >"$WORK/int.out" 2>"$WORK/int.err" &
pid=$!
wait_for "$WORK/int.err" 20 "S: started" || fail "SIGINT: S never started"
kill -INT $pid
wait $pid; rc=$?
pid=
if [ $rc -eq 130 ] && [ "$(jq -r .outcome "$WORK/int.json")" = cancelled ] &&
   [ "$(jq -r .first_error "$WORK/int.json")" = cancelled ] &&
   [ "$(status_of "$WORK/int.json" S)" = unknown ] && [ "$(err_of "$WORK/int.json" S)" = null ] &&
   ! grep -q "interrupted" "$WORK/int.out" && [ "$(unknown_trace_errors "$WORK/int.trace" S)" = 0 ]; then
  ok "SIGINT: S unknown with no error, first_error cancelled"
else
  fail "SIGINT (exit $rc)"; show "$WORK/int.json" "$WORK/int.out" "$WORK/int.trace" "$WORK/int.err"
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
