#!/bin/sh
# cli_hotswap.sh DAGGERPOOL HS_DIR WORK - hot swap through the command:
#   1. `run` picks up a plugin fixed mid-run for the jobs it has not started;
#   2. SIGHUP during `run` reloads the plugins;
#   3. `watch --until-ready` ends once a not-ready job becomes ready;
#   4. `watch` reloads a changed workflow (a valid one from the next run on,
#      an invalid one refused while the old one stays), swaps a plugin
#      between runs, and ends with 130 on SIGTERM.
# Each result records the plugin version a job ran on (plugin_version).
set -u
DP=$1 HS=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK/p" && chmod 700 "$WORK" "$WORK/p"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
install() { cp "$HS/$1/hs.so" "$WORK/p/.hs.new" && mv "$WORK/p/.hs.new" "$WORK/p/hs.so"; }
# waits up to $2 seconds for file $1 to contain $3
wait_for() { i=0; while ! grep -q -- "$3" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1; sleep 0.05; done; }
field() { jq -r "$2" "$1"; }
# waits up to $2 seconds for the last line of JSON-lines file $1 to satisfy
# jq expression $3 (the next runs, however long a loaded machine makes them)
wait_last() { i=0; until tail -n 1 "$1" 2>/dev/null | jq -e "$3" >/dev/null 2>&1; do i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1; sleep 0.05; done; }

# ---- 1. run: a plugin fixed mid-run serves the jobs not started yet ----
install v1
cat > "$WORK/chain.cfg" <<CFG
workflow: { name = "chain"; max_concurrent_jobs = 1; };
plugins = { hs = { path = "$WORK/p/hs.so"; }; };
jobs = (
  { name = "A"; type = "hs.work"; params = { ms = 1500; }; },
  { name = "B"; type = "hs.work"; depends_on = [ "A" ]; },
  { name = "C"; type = "hs.work"; depends_on = [ "B" ]; }
);
CFG
# A sleeps long enough for the swap to happen while it runs.
"$DP" run "$WORK/chain.cfg" --json "$WORK/chain.json" -v 2>"$WORK/chain.err" >/dev/null &
pid=$!
# Swap once A runs (its start line), not after a fixed sleep: a sanitizer
# build under load may take longer than one to start.
wait_for "$WORK/chain.err" 30 "A: started" || fail "run: A did not start"
install v2
wait $pid; rc=$?
if [ $rc -eq 0 ] && [ "$(field "$WORK/chain.json" '.jobs.A.plugin_version')" = 1 ] &&
   [ "$(field "$WORK/chain.json" '.jobs.B.plugin_version')" = 2 ] &&
   [ "$(field "$WORK/chain.json" '.jobs.C.plugin_version')" = 2 ] &&
   grep -q "reloaded plugin hs: 1 (generation 1) -> 2 (generation 2); 1 job(s) still in flight" "$WORK/chain.err"; then
  ok "run: A ran on 1, B and C (started after the swap) on 2"
else
  fail "run mid-run swap (exit $rc)"; cat "$WORK/chain.err"; cat "$WORK/chain.json"
fi

# ---- 2. run: SIGHUP reloads every plugin ----
install v1
"$DP" run "$WORK/chain.cfg" --json "$WORK/hup.json" -v 2>"$WORK/hup.err" >/dev/null &
pid=$!
# Once A runs, the SIGHUP handler is installed (a signal before it would
# end the process: exit 129).
wait_for "$WORK/hup.err" 30 "A: started" || fail "run: A did not start"
kill -HUP $pid
wait $pid; rc=$?
if [ $rc -eq 0 ] && grep -q "reloaded plugin hs: 1 (generation 1) -> 1 (generation 2)" "$WORK/hup.err"; then
  ok "run: SIGHUP reloaded the plugin"
else
  fail "run SIGHUP (exit $rc)"; cat "$WORK/hup.err"
fi

# ---- 3. watch --until-ready ends once a not-ready job becomes ready ----
rm -f "$WORK/flag"
cat > "$WORK/ready.cfg" <<CFG
workflow: { name = "ready"; };
jobs = ( { name = "R"; type = "fs.exists"; params = { path = "$WORK/flag"; }; } );
CFG
"$DP" watch "$WORK/ready.cfg" --interval 100ms --until-ready --json-lines "$WORK/ready.jsonl" >/dev/null 2>"$WORK/ready.err" &
pid=$!
wait_for "$WORK/ready.jsonl" 10 not_ready || fail "watch: no not_ready run seen"
touch "$WORK/flag"
i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -0 $pid 2>/dev/null && { fail "watch --until-ready did not end"; kill -KILL $pid; }
wait $pid; rc=$?
last=$(tail -n 1 "$WORK/ready.jsonl" | jq -r .outcome)
first=$(head -n 1 "$WORK/ready.jsonl" | jq -r .outcome)
n=$(wc -l < "$WORK/ready.jsonl")
if [ $rc -eq 0 ] && [ "$first" = not_ready ] && [ "$last" = success ] && [ "$n" -ge 2 ]; then
  ok "watch --until-ready: $n runs, not_ready then success, exit 0"
else
  fail "watch --until-ready (exit $rc, $n lines, first $first, last $last)"; cat "$WORK/ready.err"
fi

# ---- 4. watch: workflow reload (valid, invalid), plugin swap, SIGTERM ----
install v1
cat > "$WORK/wf.cfg" <<CFG
workflow: { name = "wf"; };
plugins = { hs = { path = "$WORK/p/hs.so"; }; };
jobs = ( { name = "X"; type = "hs.work"; } );
CFG
"$DP" watch "$WORK/wf.cfg" --interval 100ms --json-lines "$WORK/wf.jsonl" >/dev/null 2>"$WORK/wf.err" &
pid=$!
wait_for "$WORK/wf.jsonl" 10 '"X"' || fail "watch: no first run"
# An invalid workflow (unknown key) is refused; X keeps running.
cat > "$WORK/wf.cfg.new" <<CFG
workflow: { name = "wf"; };
plugins = { hs = { path = "$WORK/p/hs.so"; }; };
jobs = ( { name = "Y"; type = "hs.work"; depnds_on = [ ]; } );
CFG
mv "$WORK/wf.cfg.new" "$WORK/wf.cfg"
wait_for "$WORK/wf.err" 10 "refused; the previous version stays in use" || fail "watch: invalid workflow not refused"
grep -q "depnds_on" "$WORK/wf.err" || fail "watch: the refusal does not name the bad key"
lines=$(wc -l < "$WORK/wf.jsonl")
wait_count_gt() { i=0; while [ "$(wc -l < "$1")" -le "$2" ]; do i=$((i + 1)); [ $i -gt 200 ] && return 1; sleep 0.05; done; }
wait_count_gt "$WORK/wf.jsonl" "$lines" || fail "watch: no run after the refusal"
tail -n 1 "$WORK/wf.jsonl" | jq -e '.jobs.X' >/dev/null || fail "watch: the old workflow did not stay"
# A plugin swap between runs.
install v2
wait_for "$WORK/wf.err" 10 "reloaded plugin hs: 1" || fail "watch: plugin not reloaded"
wait_last "$WORK/wf.jsonl" 10 '.jobs.X.plugin_version == "2"' || fail "watch: X not on version 2 after the swap"
# A valid workflow, written in place: Y from the next run on.
cat > "$WORK/wf.cfg" <<CFG
workflow: { name = "wf"; };
plugins = { hs = { path = "$WORK/p/hs.so"; }; };
jobs = ( { name = "Y"; type = "hs.work"; } );
CFG
wait_for "$WORK/wf.err" 10 "is valid: 1 job(s)" || fail "watch: valid workflow not taken"
wait_last "$WORK/wf.jsonl" 10 '.jobs.Y and (.jobs.X | not) and .workflow_generation == 2' ||
  fail "watch: the reloaded workflow is not in use"
kill -TERM $pid
wait $pid; rc=$?
[ $rc -eq 130 ] || fail "watch: SIGTERM gave exit $rc, not 130"
bad=$(jq -r 'select(.outcome != "success") | .outcome' "$WORK/wf.jsonl" | grep -v cancelled | head -1)
[ -z "$bad" ] || fail "watch: a run was $bad"
if [ $fails -eq 0 ]; then
  ok "watch: invalid workflow refused, valid one taken at the next run, plugin swapped, SIGTERM -> 130 ($(wc -l < "$WORK/wf.jsonl") runs)"
else
  cat "$WORK/wf.err" | tail -20
fi

[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $fails
