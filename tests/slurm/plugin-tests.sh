#!/usr/bin/env bash
# plugin-tests.sh TEST DRIVER PLUGIN - the slurm plugin driven directly
# (tests/slurm/slurm_drive.c: create/run/check/destroy through a minimal host
# table) against the cluster named by SLURM_CONF (see cluster-up.sh).
# Each test prints what it checks and fails with the reason.
set -euo pipefail
t=$1 drive=$2 plugin=$3
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(dirname "$SLURM_CONF")/work/plugin-$t
rm -rf "$work"; mkdir -p "$work"; cd "$work"
# shellcheck source=tests/slurm/job-procs.sh
. "$here/job-procs.sh"

fail() { echo "FAIL ($t): $*" >&2; exit 1; }
# expect OUTPUT REGEX: a line of OUTPUT matches the extended REGEX.
expect() { grep -Eq -- "$2" <<<"$1" || fail "expected a line matching /$2/ in:"$'\n'"$1"; }
drive() { "$drive" "$plugin" "$@"; }
# queue_empty NAME: no live Slurm job named NAME within 15 s; then none
# of their processes left either (one Slurm forgot is killed and named:
# job-procs.sh).
queue_empty() {
    for _ in $(seq 150); do
        if [ -z "$(squeue -h -n "$1" -o %i)" ]; then
            job_procs_sweep "$1" 30 || echo "note: Slurm kept running jobs named $1 it no longer lists (killed above)" >&2
            return 0
        fi
        sleep 0.1
    done
    fail "Slurm jobs named $1 still in the queue: $(squeue -h -n "$1" -o '%i %T')"
}

case $t in
submit)   # completes; its output file holds what it printed; env reaches it
    out=$(drive p-submit wrap='echo hello from $GREETING' output="$work/submit.out" \
          env.GREETING=slurm time_limit=2m cpus=1 memory=100M nodes=1 \
          -- create run wait store destroy)
    echo "$out"
    expect "$out" '^run: ready$'
    expect "$out" '^wait: ready$'
    expect "$out" '^store: [0-9]+$'
    grep -qx 'hello from slurm' "$work/submit.out" || fail "submit.out: $(cat "$work/submit.out" 2>&1)"
    ;;
exit_code)   # exits 3: the error names the state, the reason and exit code 3; retry submits again
    out=$(drive p-exit3 wrap='exit 3' -- create run wait store destroy create run wait destroy)
    echo "$out"
    expect "$out" '^wait: error: Slurm job [0-9]+ FAILED \(reason NonZeroExitCode, exit code 3\)$'
    expect "$out" '^store: [0-9]+ done$'
    [ "$(grep -c '^wait: error: .*exit code 3' <<<"$out")" = 2 ] || fail "the retry did not run again"
    ids=$(grep -oE 'Slurm job [0-9]+' <<<"$out" | sort -u | wc -l)
    [ "$ids" = 2 ] || fail "expected two Slurm jobs (first try and retry), saw $ids"
    ;;
cancel)   # the context ends while waiting: the Slurm job is scancelled
    # `exec`: with proctrack/linuxproc a job's child can outlive a scancel (reparented
    # to init when the batch shell dies first); a job of one process cannot.
    out=$(drive p-cancel wrap='exec sleep 300' -- create run deadline@2500 wait store destroy)
    echo "$out"
    expect "$out" '^wait: error: cancelled; Slurm job [0-9]+ was cancelled$'
    queue_empty p-cancel
    # An attempt cut short between two polls (the end hook sees it cut).
    out=$(drive p-cut wrap='exec sleep 300' -- create run check sleep@300 check sleep@300 cancel@0 end destroy)
    echo "$out"
    queue_empty p-cut
    ;;
idempotent)   # probe-once attempts adopt the stored job: exactly one submission
    out=$(drive p-idem wrap='sleep 3' -- create run check end destroy create run check end destroy \
          sleep@4000 create run wait end destroy 2>&1)
    echo "$out"
    n=$(grep -c 'submitted Slurm job' <<<"$out" || true)
    [ "$n" = 1 ] || fail "expected exactly one submission, saw $n"
    expect "$out" 'submitted earlier for this job is (PENDING|RUNNING|COMPLETING|COMPLETED): not submitting again'
    expect "$out" '^wait: ready$'
    ;;
bad_params)
    expect "$(drive b -- create)" "^create: error: slurm.batch needs 'wrap' \(a command\) or 'script'"
    expect "$(drive b wrap=x script=y -- create)" "^create: error: slurm.batch takes 'wrap' or 'script', not both"
    expect "$(drive b wrap=x cpus=two -- create)" "^create: error: param 'cpus': expected a positive integer"
    expect "$(drive b wrap=x time_limit=soon -- create)" "^create: error: param 'time_limit': expected a duration"
    expect "$(drive b wrap=x colour=red -- create)" "^create: error: unknown param 'colour'"
    expect "$(drive b script=/nonexistent/job.sh -- create)" "^create: error: param 'script': cannot read \"/nonexistent/job.sh\""
    expect "$(drive b wrap=x env.1BAD=y -- create)" "^create: error: param 'env': '1BAD' is not a valid variable name"
    out=$(drive b wrap=true partition=nosuch -- create run)
    echo "$out"
    expect "$out" "^run: error: submitting to Slurm failed: sbatch: exit status 1: sbatch: error: invalid partition specified: nosuch"
    ;;
*) fail "unknown test" ;;
esac
echo "PASS ($t)"
