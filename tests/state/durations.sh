#!/bin/sh
# durations.sh DAGGERPOOL - with state, the previous run's durations weight
# the critical path (issue 16: "by the previous run's durations when state
# exists"). At -j 1, `long` (one job of 600 ms) and `b` -> `c` (two jobs of
# 20 ms): by job count b's path is the longer, so the first run starts b
# first; the second run knows the durations and starts `long` first.
# Without state (--no-state) every run starts b first.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_state_durations.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
cat > wf.cfg <<'CFG'
workflow = { name = "durations"; max_concurrent_jobs = 1; };
jobs = (
  { name = "long"; type = "core.sleep"; params = { duration = "600ms"; }; },
  { name = "b"; type = "core.sleep"; params = { duration = "20ms"; }; },
  { name = "c"; type = "core.sleep"; depends_on = ["b"]; params = { duration = "20ms"; }; }
);
CFG
first() { # the job that started first in JSON result $1
  jq -r '.jobs | to_entries | sort_by(.value.start_ms) | .[0].key' "$1"
}
fail() { echo "FAIL: $*"; exit 1; }
"$DP" run -q wf.cfg --json r1.json >/dev/null 2>&1 || fail "run 1"
[ "$(first r1.json)" = b ] || fail "run 1 (no durations yet) started $(first r1.json), not b"
"$DP" run -q wf.cfg --json r2.json >/dev/null 2>&1 || fail "run 2"
[ "$(first r2.json)" = long ] || fail "run 2 (durations known) started $(first r2.json), not long"
"$DP" run -q --no-state wf.cfg --json r3.json >/dev/null 2>&1 || fail "run 3"
[ "$(first r3.json)" = b ] || fail "run 3 (--no-state) started $(first r3.json), not b"
echo "ok: the previous run's durations order the next run"
