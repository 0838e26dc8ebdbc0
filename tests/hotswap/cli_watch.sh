#!/bin/sh
# cli_watch.sh DAGGERPOOL HS_DIR - `daggerpool watch` as its help and the man
# page describe it:
#   1. a plugin file touched, or replaced by an identical copy, is left alone
#      (no "reloaded" line, the same version and generation); a real change
#      still reloads;
#   2. with -q, a truncated replacement prints an error line naming the file
#      and the reason (it is a refused reload, not a passing warning);
#   3. SIGINT cancels the run under way at once (not "after the current
#      run"): exit 130 well before the 20 s job would end, the run's JSON
#      line written, the job unknown without an error;
#   4. watch takes --allow-insecure-plugins: a group-writable plugin file is
#      refused without it (exit 2) and loaded with it.
# Every process it starts is killed by pid on exit.
set -u
DP=$1 HS=$2
WORK=$(mktemp -d /tmp/dp_watch.XXXXXX)
chmod 700 "$WORK"
mkdir -m 700 "$WORK/p"
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
install() { cp "$HS/$1/hs.so" "$WORK/p/.hs.new" && mv "$WORK/p/.hs.new" "$WORK/p/hs.so"; }
# waits up to $2 seconds for file $1 to contain $3 (an extended regex)
wait_for() { i=0; while ! grep -Eq -- "$3" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1; sleep 0.05; done; }
# waits up to $2 seconds until file $1 has at least $4 lines matching $3
wait_count() { i=0; while [ "$(grep -Ec -- "$3" "$1" 2>/dev/null)" -lt "$4" ]; do i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1; sleep 0.05; done; }
stop() { kill -TERM "$pid"; wait "$pid"; rc=$?; pid=; }

SAME="holds the same bytes as plugin hs"
cat > "$WORK/wf.cfg" <<CFG
workflow: { name = "wf"; };
plugins = { hs = { path = "$WORK/p/hs.so"; }; };
jobs = ( { name = "X"; type = "hs.work"; } );
CFG

# ---- 1. touch and an identical copy are left alone; a change reloads ----
install v1
"$DP" watch "$WORK/wf.cfg" --interval 100ms --json-lines "$WORK/id.jsonl" >/dev/null 2>"$WORK/id.err" &
pid=$!
wait_for "$WORK/id.jsonl" 20 '"X"' || fail "identical: no first run"
touch -m -d "2001-02-03 04:05:06" "$WORK/p/hs.so"
# The answer is one or the other, once the file settles (50 ms).
wait_for "$WORK/id.err" 20 "$SAME|reloaded plugin" || fail "touch: neither left alone nor reloaded"
if grep -q "reloaded plugin" "$WORK/id.err"; then
  fail "touch reloaded the plugin"
else
  ok "touch: left alone"
fi
install v1
wait_count "$WORK/id.err" 20 "$SAME|reloaded plugin" 2 || fail "identical copy: neither left alone nor reloaded"
if grep -q "reloaded plugin" "$WORK/id.err"; then
  fail "an identical copy renamed over it reloaded the plugin"
else
  ok "identical copy: left alone"
fi
install v2
if wait_for "$WORK/id.err" 20 "reloaded plugin hs: 1 \(generation 1\) -> 2 \(generation 2\)"; then
  ok "a real change reloads (generation 1 -> 2: nothing was reloaded before)"
else
  fail "v2 was not reloaded as generation 2"
fi
wait_for "$WORK/id.jsonl" 20 '"plugin_version":"2"' || fail "no run on version 2"
stop
[ $rc -eq 130 ] || fail "identical: SIGTERM gave exit $rc"
[ $fails -eq 0 ] || { echo "--- stderr"; cat "$WORK/id.err"; }

# ---- 2. watch -q: a truncated replacement is an error ----
f0=$fails
install v1
"$DP" watch -q "$WORK/wf.cfg" --interval 100ms --json-lines "$WORK/q.jsonl" >/dev/null 2>"$WORK/q.err" &
pid=$!
wait_for "$WORK/q.jsonl" 20 '"X"' || fail "-q: no first run"
size=$(wc -c < "$HS/v2/hs.so")
head -c $((size / 2)) "$HS/v2/hs.so" > "$WORK/p/.hs.new" && mv "$WORK/p/.hs.new" "$WORK/p/hs.so"
# Refused once it has stayed cut short for a while (about 2 s): allow 30.
if wait_for "$WORK/q.err" 30 "cut short"; then
  line=$(grep "cut short" "$WORK/q.err" | head -n 1)
  case $line in
    *error*"reload of plugin hs refused"*"$WORK/p/hs.so looks cut short"*) ok "-q: truncated file refused as an error: $line" ;;
    *) fail "-q: the line is not an error naming the file and the reason: $line" ;;
  esac
else
  fail "-q: nothing said about the truncated file"
fi
grep -q " info " "$WORK/q.err" && fail "-q: info lines shown"
tail -n 1 "$WORK/q.jsonl" | jq -e '.jobs.X.plugin_version == "1"' >/dev/null || fail "-q: version 1 does not serve on"
stop
[ $rc -eq 130 ] || fail "-q: SIGTERM gave exit $rc"
[ $fails -eq $f0 ] || { echo "--- stderr"; cat "$WORK/q.err"; }

# ---- 3. SIGINT cancels the run under way at once ----
f0=$fails
cat > "$WORK/long.cfg" <<'CFG'
workflow: { name = "long"; };
jobs = ( { name = "L"; type = "core.sleep"; params = { duration = "20s"; }; } );
CFG
"$DP" watch -v "$WORK/long.cfg" --json-lines "$WORK/long.jsonl" >/dev/null 2>"$WORK/long.err" &
pid=$!
wait_for "$WORK/long.err" 20 "job=L attempt=1 .*started" || fail "SIGINT: L never started"
t0=$(date +%s)
kill -INT $pid
wait $pid; rc=$?
pid=
t=$(($(date +%s) - t0))
if [ $rc -eq 130 ] && [ $t -lt 10 ] &&
   jq -e '.run == 1 and .outcome == "cancelled" and .jobs.L.status == "unknown" and .jobs.L.error == null' \
     "$WORK/long.jsonl" >/dev/null; then
  ok "SIGINT: run 1 cancelled at once (${t}s), its result written, exit 130"
else
  fail "SIGINT: exit $rc after ${t}s"; cat "$WORK/long.jsonl" "$WORK/long.err"
fi
"$DP" watch --help | grep -q "after the current run" && fail "watch --help still says \"after the current run\""
"$DP" watch --help | grep -q "cancel the run under way at once" || fail "watch --help does not say the run is cancelled at once"

# ---- 4. watch --allow-insecure-plugins ----
mkdir -m 700 "$WORK/ins"
cp "$HS/v1/hs.so" "$WORK/ins/hs.so"
chmod 664 "$WORK/ins/hs.so"
cat > "$WORK/ins.cfg" <<CFG
workflow: { name = "ins"; };
plugins = { hs = { path = "$WORK/ins/hs.so"; }; };
jobs = ( { name = "X"; type = "hs.work"; } );
CFG
"$DP" watch "$WORK/ins.cfg" --until-ready >/dev/null 2>"$WORK/ins1.err"
rc1=$?
"$DP" watch "$WORK/ins.cfg" --until-ready --allow-insecure-plugins >/dev/null 2>"$WORK/ins2.err"
rc2=$?
if [ $rc1 -eq 2 ] && grep -q "insecure" "$WORK/ins1.err" && [ $rc2 -eq 0 ]; then
  ok "watch: a group-writable plugin refused (2), loaded with --allow-insecure-plugins (0)"
else
  fail "watch --allow-insecure-plugins: exit $rc1 without, $rc2 with"; cat "$WORK/ins1.err" "$WORK/ins2.err"
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
