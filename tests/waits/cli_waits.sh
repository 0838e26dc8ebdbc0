#!/bin/sh
# cli_waits.sh DAGGERPOOL ABI_V1_2_PLUGIN - the 1.2 waits through the
# command:
#   1. readiness thresholds, a growing period and an initial delay on a
#      13-job graph: statuses, and "readiness" in the JSON of the jobs that
#      set them (probes, consecutive successes and failures, the period);
#   2. deadlines over retries on a 10-job graph ("deadline_hit", the
#      messages naming the deadline: a backoff past it not waited, an
#      attempt it cut);
#   3. a retry delay suggested by a plugin (ABI 1.2), in process and
#      isolated ("retry_after_ms" instead of a 30 s backoff), and as the
#      requeue hint of a not-ready run;
#   4. bad values refused by validate with FILE:LINE (exit 2);
#   5. jobs that set none of this keep exactly the JSON keys they had.
set -u
DP=$1
PLUGIN=$2
WORK=$(mktemp -d /tmp/dp_waits.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
show() { for f in "$@"; do echo "--- $f"; cat "$f"; done; }
j() { jq -c "$2" "$1"; }

# probe.sh NAME PATTERN: the check, one letter of PATTERN per call (the
# last repeats): R exit 0 (ready), N exit 75 (not ready), E exit 3 (error).
cat > "$WORK/probe.sh" <<'SH'
#!/bin/sh
c="$(dirname "$0")/count.$1"
n=$(( $(cat "$c" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$c"
p=$2
i=$n
[ "$i" -gt "${#p}" ] && i=${#p}
l=$(printf '%s' "$p" | cut -c "$i")
case $l in
R) exit 0 ;;
N) exit 75 ;;
*) echo "probe $n of $1 failed" >&2; exit 3 ;;
esac
SH
chmod +x "$WORK/probe.sh"

# ---- 1. readiness ----
job() { # NAME PATTERN READINESS [DEPS]
  printf '  { name = "%s"; type = "shell.command"; params = { command = "true"; check = "%s/probe.sh %s %s"; };\n    readiness = { %s };%s },\n' \
    "$1" "$WORK" "$1" "$2" "$3" "${4:+ depends_on = [ $4 ];}"
}
{
  echo 'workflow: { name = "probes"; fail_fast = false; max_concurrent_jobs = 4; };'
  echo 'jobs = ('
  job T1 RNRR 'period = "20ms"; success_threshold = 2; timeout = "20s";'
  job T2 EER 'period = "20ms"; failure_threshold = 3; timeout = "20s";'
  job T3 E 'period = "20ms"; failure_threshold = 3; timeout = "20s";'
  job T4 N 'period = "20ms"; backoff = 2.0; max_period = "80ms"; timeout = "3s";'
  job T5 R 'initial_delay = "300ms";'
  job T6 NR 'period = "20ms"; initial_delay = "100ms"; success_threshold = 1;'
  job OLD NR 'period = "20ms";'
  job A1 R 'period = "20ms";' '"T1", "T2"'
  job A2 R 'period = "20ms";' '"T3"'
  job A3 R 'period = "20ms";' '"T4"'
  echo '  { name = "B1"; type = "core.noop"; depends_on = [ "T5", "T6" ]; },'
  echo '  { name = "B2"; type = "core.noop"; depends_on = [ "B1", "OLD" ]; },'
  echo '  { name = "B3"; type = "core.noop"; depends_on = [ "A1" ]; }'
  echo ');'
} > "$WORK/probes.cfg"
"$DP" run "$WORK/probes.cfg" --json "$WORK/p.json" >"$WORK/p.out" 2>"$WORK/p.err"
rc=$?
st=$(j "$WORK/p.json" '[.jobs | to_entries[] | "\(.key)=\(.value.status)"] | join(" ")')
want='"A1=success A2=skipped A3=skipped B1=success B2=success B3=success OLD=success T1=success T2=success T3=failed T4=not_ready T5=success T6=success"'
if [ $rc -eq 1 ] && [ "$st" = "$want" ]; then
  ok "readiness: statuses (exit 1: T3 failed)"
else
  fail "readiness: exit $rc, statuses $st"; show "$WORK/p.json" "$WORK/p.err"
fi
rd() { j "$WORK/p.json" ".jobs.$1.readiness | [.probes, .consecutive_successes, .consecutive_failures, .period_ms]"; }
if [ "$(rd T1)" = "[4,2,0,20]" ] && [ "$(rd T2)" = "[3,1,0,20]" ] && [ "$(rd T3)" = "[3,0,3,20]" ] &&
   [ "$(rd T5)" = "[1,1,0,0]" ] && [ "$(rd T6)" = "[2,1,0,20]" ] &&
   [ "$(j "$WORK/p.json" '.jobs.T4.readiness | .period_ms')" = 80 ]; then
  ok "readiness: probe counts and periods in the JSON"
else
  fail "readiness: counts T1 $(rd T1) T2 $(rd T2) T3 $(rd T3) T4 $(rd T4) T5 $(rd T5) T6 $(rd T6)"
  show "$WORK/p.json"
fi
if [ "$(j "$WORK/p.json" '.jobs.T3.error')" = '"exit status 3: probe 3 of T3 failed"' ] &&
   grep -q 'readiness probe failed (2 in a row; 3 end the wait)' "$WORK/p.err" &&
   [ "$(j "$WORK/p.json" '.jobs.T2.error')" = null ] &&
   [ "$(j "$WORK/p.json" '.jobs.T5.duration_ms >= 300')" = true ]; then
  ok "readiness: the failure that ended the wait is the error, tolerated ones are logged; the initial delay waited"
else
  fail "readiness: errors or delay"; show "$WORK/p.json" "$WORK/p.err"
fi
if [ "$(j "$WORK/p.json" '[.jobs.OLD, .jobs.A1, .jobs.B1 | has("readiness")]')" = "[false,false,false]" ]; then
  ok "readiness: no readiness key on jobs without the new settings"
else
  fail "readiness: a job without the settings has the key"; show "$WORK/p.json"
fi

# ---- 2. deadlines ----
cat > "$WORK/deadline.cfg" <<'CFG'
workflow: { name = "deadlines"; fail_fast = false; };
jobs = (
  { name = "DL1"; type = "core.sleep"; params = { duration = "1ms"; error = "boom"; };
    retries = 100; backoff = { initial = "150ms"; factor = 1.0; }; deadline = "400ms"; },
  { name = "DL2"; type = "core.sleep"; params = { duration = "20s"; }; timeout = "200ms"; retries = 2;
    backoff = { initial = "10ms"; factor = 1.0; }; deadline = "300ms"; },
  { name = "DL3"; type = "core.noop"; deadline = "1m"; },
  { name = "C1"; type = "core.noop"; depends_on = [ "DL1" ]; },
  { name = "C2"; type = "core.noop"; depends_on = [ "DL2" ]; },
  { name = "C3"; type = "core.noop"; depends_on = [ "DL3" ]; },
  { name = "C4"; type = "core.noop"; depends_on = [ "C3" ]; },
  { name = "C5"; type = "core.noop"; depends_on = [ "C3" ]; },
  { name = "C6"; type = "core.noop"; depends_on = [ "C4", "C5" ]; },
  { name = "C7"; type = "core.noop"; }
);
CFG
t0=$(date +%s)
"$DP" run "$WORK/deadline.cfg" --json "$WORK/d.json" >"$WORK/d.out" 2>"$WORK/d.err"
rc=$?
t1=$(date +%s)
e1=$(j "$WORK/d.json" '.jobs.DL1.error')
if [ $rc -eq 1 ] && [ $((t1 - t0)) -lt 8 ] &&
   [ "$(j "$WORK/d.json" '[.jobs.DL1.status, .jobs.DL2.status, .jobs.DL3.status, .jobs.C1.status, .jobs.C2.status, .jobs.C6.status]')" = '["failed","failed","success","skipped","skipped","success"]' ] &&
   [ "$e1" = '"boom; not retried: a retry in 150ms would start past the deadline of 400ms"' ] &&
   [ "$(j "$WORK/d.json" '.jobs.DL2.error')" = '"deadline of 300ms passed during attempt 2"' ] &&
   [ "$(j "$WORK/d.json" '.jobs.DL2.attempts')" = 2 ] &&
   [ "$(j "$WORK/d.json" '[.jobs.DL1.deadline_hit, .jobs.DL2.deadline_hit, .jobs.DL3.deadline_hit]')" = '[true,true,false]' ] &&
   [ "$(j "$WORK/d.json" '[.jobs.C1, .jobs.C3, .jobs.C7 | has("deadline_hit")]')" = '[false,false,false]' ]; then
  ok "deadline: bounds retries and backoffs, named in the error, deadline_hit where set"
else
  fail "deadline: exit $rc in $((t1 - t0)) s, DL1 error $e1"; show "$WORK/d.json" "$WORK/d.err"
fi

# ---- 3. a suggested retry delay (ABI 1.2 plugin) ----
for iso in none process; do
  cat > "$WORK/ra.cfg" <<CFG
workflow: { name = "ra"; };
plugins = { abi_v1_2 = { path = "$PLUGIN"; }; };
jobs = (
  { name = "R"; type = "abi_v1_2.suggest"; params = { after = 120; }; retries = 2;
    backoff = { initial = "30s"; }; isolation = "$iso"; },
  { name = "S"; type = "core.noop"; depends_on = [ "R" ]; }
);
CFG
  "$DP" run "$WORK/ra.cfg" --json "$WORK/ra.json" >"$WORK/ra.out" 2>"$WORK/ra.err"
  rc=$?
  if [ $rc -eq 0 ] && [ "$(j "$WORK/ra.json" '[.jobs.R.attempts, .jobs.R.retry_after_ms, .jobs.R.duration_ms < 10000, .jobs.S.status]')" = '[2,120,true,"success"]' ] &&
     grep -q 'retry in 120ms (the job'"'"'s suggestion)' "$WORK/ra.err"; then
    ok "retry_after ($iso): the plugin's 120 ms instead of the 30 s backoff"
  else
    fail "retry_after ($iso): exit $rc"; show "$WORK/ra.json" "$WORK/ra.err"
  fi
done
# Retries spent: the suggestion is the requeue hint of the failed run.
sed -e 's/retries = 2;/retries = 0;/' "$WORK/ra.cfg" > "$WORK/ra0.cfg"
"$DP" run "$WORK/ra0.cfg" --json "$WORK/ra0.json" >"$WORK/ra0.out" 2>"$WORK/ra0.err"
rc=$?
if [ $rc -eq 1 ] && [ "$(j "$WORK/ra0.json" '[.requeue_after_ms, .jobs.R.retry_after_ms]')" = '[120,120]' ] &&
   grep -q "requeue after: 120ms" "$WORK/ra0.out"; then
  ok "retry_after: the requeue hint of a run whose job failed with a suggestion"
else
  fail "retry_after: requeue hint (exit $rc)"; show "$WORK/ra0.json" "$WORK/ra0.out"
fi

# ---- 4. refusals with FILE:LINE ----
bad() { # NAME LINE_TEXT EXPECTED_MESSAGE_PART
  name=$1
  {
    echo 'workflow: { name = "bad"; };'
    echo 'jobs = ('
    echo '  { name = "X"; type = "shell.command"; params = { command = "true"; check = "true"; };'
    echo "    $2"
    echo '  }'
    echo ');'
  } > "$WORK/$name.cfg"
  "$DP" validate "$WORK/$name.cfg" >"$WORK/$name.out" 2>&1
  rc=$?
  if [ $rc -eq 2 ] && grep -q "$WORK/$name.cfg:4: .*$3" "$WORK/$name.out"; then
    ok "validate refuses $name at line 4"
  else
    fail "validate $name: exit $rc"; show "$WORK/$name.out"
  fi
}
bad threshold0 'readiness = { period = "1s"; success_threshold = 0; };' "success_threshold"
bad fthreshold0 'readiness = { period = "1s"; failure_threshold = 0; };' "failure_threshold"
bad backoff 'readiness = { period = "1s"; backoff = 0.5; };' "backoff"
bad maxperiod 'readiness = { period = "2s"; backoff = 2.0; max_period = "1s"; };' "max_period of job 'X' (1s) is shorter than its period (2s)"
bad noperiod 'readiness = { success_threshold = 2; };' "readiness.success_threshold of job 'X' needs a poll"
bad delay 'readiness = { period = "1s"; timeout = "5s"; initial_delay = "5s"; };' "initial_delay of job 'X' (5s) is not shorter than its readiness timeout (5s)"
bad deadline 'timeout = "10s"; deadline = "5s";' "deadline of job 'X' (5s) is shorter than its timeout (10s)"
bad deadline_type 'deadline = true;' "deadline"

# ---- 5. jobs without the settings keep their keys ----
keys=$(jq -c '[.jobs[] | keys] | unique' "$WORK/d.json")
keys_old=$(jq -c '[.jobs.C1, .jobs.C7 | keys] | unique' "$WORK/d.json")
if [ "$keys_old" = '[["attempts","duration_ms","error","plugin","plugin_version","start_ms","status"]]' ] &&
   [ "$(jq -c '[.jobs.OLD, .jobs.A1, .jobs.B3 | keys] | unique' "$WORK/p.json")" = "$keys_old" ]; then
  ok "jobs without the settings: the JSON keys of before"
else
  fail "keys: $keys"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
