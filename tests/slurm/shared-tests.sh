#!/usr/bin/env bash
# shared-tests.sh TEST DAGGERPOOL PLUGIN - slurm.batch jobs that share the
# plugin's status looks (plugins/slurm/status.c) and scancel calls
# (cancel.c), through the daggerpool command, against the cluster named by
# SLURM_CONF. Light enough for every preset (ASan, TSan): the checks of
# many jobs run on several workers at once.
#
# The plugin's clients are counted by wrappers put first on PATH
# (work/bin/squeue ...: one line per call in work/calls, then the real
# client), so other tests using the cluster at the same time do not count.
#
#   many     40 jobs (`sleep 1`..`sleep 3`), readiness period 500 ms: all
#            succeed, with at most 2 squeue calls per period for all of
#            them (each job polling on its own made ~40 per period).
#   hotswap  a plugin copy swapped in while 10 jobs poll on the old one;
#            10 jobs started after it poll on the new one; the old copy is
#            unloaded when its last job ends: all 21 succeed, the swap is
#            logged with jobs in flight, and each copy's squeue calls stay
#            within 2 per period.
#   refail   fail-fast cuts 70 jobs short (one job exits 3) under `watch`:
#            the next run submits the 70 again (the store says this
#            plugin cancelled them) instead of reporting them CANCELLED,
#            which it did for all but the last 64 before.
set -euo pipefail
t=$1 dp=$2 plugin=$3
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(dirname "$SLURM_CONF")/work/shared-$t
rm -rf "$work"; mkdir -p "$work/bin" "$work/plugins"; cd "$work"

fail() { echo "FAIL ($t): $*" >&2; exit 1; }
now() { date +%s.%N; }
for c in squeue sacct scontrol scancel sbatch; do
    real=$(command -v $c) || fail "$c is not on PATH"
    printf '#!/bin/sh\necho "%s $*" >>%s/calls\nexec %s "$@"\n' "$c" "$work" "$real" >"bin/$c"
    chmod +x "bin/$c"
done
export PATH=$work/bin:$PATH
: >calls
cp "$plugin" plugins/slurm.so
name=dp-shared-$t-$$
# shellcheck source=tests/slurm/job-procs.sh
. "$here/job-procs.sh"
# None of the jobs or their processes outlives the test, even one the
# controller forgot.
trap 'scancel -n "$name" 2>/dev/null || true; job_procs_sweep "$name" 30 || true' EXIT
job() {   # job NAME COMMAND [DEPENDS]
    printf '  { name = "%s"; type = "slurm.batch"; params = { wrap = "%s"; job_name = "%s"; output = "/dev/null"; }; %s },\n' \
        "$1" "$2" "$name" "${3:+depends_on = [ \"$3\" ];}"
}
# run: the workflow in w.cfg; $rc, $secs, log in run.log, JSON in result.json.
run() {
    local t0 t1
    t0=$(now)
    set +e
    "$dp" run w.cfg -v --json result.json >run.log 2>&1
    rc=$?
    set -e
    t1=$(now)
    secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    tail -n 3 run.log
}
succeeded() { python3 -c 'import json; r=json.load(open("result.json")); print(sum(j["status"]=="success" for j in r["jobs"].values()))'; }
# at_most_per_period COUNT PERIOD_S SECONDS WHAT
at_most_per_period() {
    python3 - "$@" <<'EOF' || fail "$4: $1 squeue calls in $3 s, more than 2 per period of $2 s (+4)"
import sys
n, p, s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"{sys.argv[4]}: {n} squeue calls in {s} s: {n / (s / p):.2f} per period of {p} s")
sys.exit(0 if n <= 2 * s / p + 4 else 1)
EOF
}

case $t in
many)
    {
        echo 'workflow: { name = "slurm-shared-many"; max_concurrent_jobs = 40; timeout = "3m"; plugin_path = [ "plugins" ]; };'
        echo 'defaults = { readiness = { period = "500ms"; timeout = "2m"; }; };'
        echo 'jobs = ('
        for i in $(seq 0 39); do job "j$i" "sleep $((1 + i % 3))"; done | sed -e '$ s/,$//'
        echo ');'
    } >w.cfg
    run
    [ $rc = 0 ] || fail "exit status $rc, expected 0 (log in $work/run.log)"
    [ "$(succeeded)" = 40 ] || fail "$(succeeded) of 40 jobs succeeded"
    [ "$(grep -c '^sbatch ' calls)" = 40 ] || fail "$(grep -c '^sbatch ' calls) sbatch calls, expected 40"
    at_most_per_period "$(grep -c '^squeue ' calls)" 0.5 "$secs" "40 jobs"
    ;;
hotswap)
    {
        echo 'workflow: { name = "slurm-shared-hotswap"; max_concurrent_jobs = 32; timeout = "3m"; plugin_path = [ "plugins" ]; };'
        echo 'defaults = { readiness = { period = "500ms"; timeout = "2m"; }; };'
        echo 'jobs = ('
        {
            for i in $(seq 0 9); do job "early$i" "sleep 8"; done
            job gate "sleep 3"
            for i in $(seq 0 9); do job "late$i" "sleep 2" gate; done
        } | sed -e '$ s/,$//'
        echo ');'
    } >w.cfg
    ( # A copy with other bytes (one more at its end: still a whole ELF file)
      # renamed over the plugin while the early jobs and the gate poll: once
      # all 11 are submitted (they then poll for 3-8 s), however long a
      # sanitizer build under load takes to get there.
      i=0
      while [ "$(grep -c '^sbatch ' calls 2>/dev/null)" -lt 11 ] && [ $i -lt 1200 ]; do
          sleep 0.05; i=$((i + 1))
      done
      { cat "$plugin"; printf x; } >plugins/.slurm.so.new
      mv plugins/.slurm.so.new plugins/slurm.so ) &
    swapper=$!
    run
    wait $swapper
    [ $rc = 0 ] || fail "exit status $rc, expected 0 (log in $work/run.log)"
    [ "$(succeeded)" = 21 ] || fail "$(succeeded) of 21 jobs succeeded"
    grep -E 'reloaded plugin slurm: .*[1-9][0-9]* job\(s\) still in flight finish on the old version' run.log ||
        fail "no swap with jobs in flight in the log"
    [ "$(grep -c '^sbatch ' calls)" = 21 ] || fail "$(grep -c '^sbatch ' calls) sbatch calls, expected 21"
    # Two copies, each with its own looks, for a while: 2 per period each.
    at_most_per_period "$(($(grep -c '^squeue ' calls) / 2))" 0.5 "$secs" "two copies (half the calls)"
    ;;
refail)
    {
        echo 'workflow: { name = "slurm-shared-refail"; max_concurrent_jobs = 80; timeout = "2m"; plugin_path = [ "plugins" ]; };'
        echo 'defaults = { readiness = { period = "500ms"; timeout = "2m"; }; };'
        echo 'jobs = ('
        {
            for i in $(seq 0 69); do job "j$i" "exec sleep 300"; done
            job bad "sleep 4; exit 3"
        } | sed -e '$ s/,$//'
        echo ');'
    } >w.cfg
    "$dp" watch w.cfg --interval 1s --json-lines runs.jsonl >run.log 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        [ "$(wc -l <runs.jsonl 2>/dev/null || echo 0)" -ge 2 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    kill -INT $pid 2>/dev/null || true
    wait $pid || true
    tail -n 3 run.log
    [ "$(wc -l <runs.jsonl)" -ge 2 ] || fail "watch ended fewer than 2 runs (log in $work/run.log)"
    for k in 1 2; do
        err=$(sed -n "${k}p" runs.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["first_error"])')
        echo "run $k: first error: $err"
        grep -q 'exit code 3' <<<"$err" || fail "run $k failed with '$err', expected the job that exits 3"
    done
    cancelled=$(sed -n 2p runs.jsonl | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum("CANCELLED" in (j["error"] or "") for j in r["jobs"].values()))')
    [ "$cancelled" = 0 ] || fail "run 2 reported $cancelled jobs CANCELLED: the ones run 1 cancelled were adopted"
    [ "$(grep -c '^sbatch ' calls)" -ge 142 ] || fail "$(grep -c '^sbatch ' calls) sbatch calls, expected 71 per run"
    for _ in $(seq 100); do [ -z "$(squeue -h -n "$name" -o %i)" ] && break; sleep 0.1; done
    [ -z "$(squeue -h -n "$name" -o %i)" ] || fail "jobs left in the queue: $(squeue -h -n "$name" -o '%i %T' | head -3)"
    ;;
*) fail "unknown test" ;;
esac
echo "PASS ($t)"
