#!/usr/bin/env bash
# workflow-tests.sh TEST DAGGERPOOL - workflows of slurm.batch jobs
# (tests/slurm/TEST*.cfg) run through the daggerpool command against the
# cluster named by SLURM_CONF (see cluster-up.sh). Slurm jobs run in a
# scratch directory under the cluster's, where their relative output files
# land. Exit 77 (skipped) only where said.
set -euo pipefail
t=$1 dp=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
work=$(dirname "$SLURM_CONF")/work/workflow-$t
rm -rf "$work"; mkdir -p "$work"; cd "$work"

fail() { echo "FAIL ($t): $*" >&2; exit 1; }
# json FILE PYTHON-EXPR: evaluates EXPR with r = the JSON result.
json() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# is FILE EXPR WANT
is() { local got; got=$(json "$1" "$2") || fail "cannot read $2 from $1"; [ "$got" = "$3" ] || fail "$2 is '$got', expected '$3' (result: $(cat "$1"))"; }
# run CFG: runs the workflow; JSON in result.json, summary+log in run.log, $rc.
run() { set +e; "$dp" run "$here/$1" --json - >result.json 2>run.log; rc=$?; set -e
        echo "--- daggerpool run $1: exit $rc"; cat run.log; cat result.json; echo; }
queue_empty() {
    for _ in $(seq 150); do
        [ -z "$(squeue -h -n "$1" -o %i)" ] && return 0
        sleep 0.1
    done
    fail "Slurm jobs named $1 still in the queue: $(squeue -h -n "$1" -o '%i %T')"
}

case $t in
complete)
    run complete.cfg
    [ $rc = 0 ] || fail "exit status $rc, expected 0"
    is result.json "r['outcome']" success
    is result.json "r['jobs']['hello']['status']" success
    grep -qx 'hello from slurm' complete.out || fail "complete.out: $(cat complete.out 2>&1)"
    ;;
exit_code)
    run exit_code.cfg
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    is result.json "r['jobs']['exits3']['status']" failed
    json result.json "r['jobs']['exits3']['error']" | grep -Eq 'FAILED \(reason NonZeroExitCode, exit code 3\)' ||
        fail "the error does not carry exit code 3"
    ;;
timeout)
    start=$(date +%s)
    run timeout.cfg
    [ $rc = 4 ] || fail "exit status $rc, expected 4 (timeout)"
    is result.json "r['outcome']" timeout
    [ $(( $(date +%s) - start )) -lt 30 ] || fail "the run did not end at its timeout"
    queue_empty dp-wf-timeout
    state=$(sacct -c -n -P -o JobName,State | awk -F'|' '$1=="dp-wf-timeout"{print $2}' | head -1)
    case $state in CANCELLED*) ;; *) fail "the Slurm job ended as '$state', not CANCELLED";; esac
    ;;
dag)
    run dag.cfg
    [ $rc = 3 ] || fail "exit status $rc, expected 3 (not ready)"
    is result.json "r['outcome']" not_ready
    for j in prepare left right join; do is result.json "r['jobs']['$j']['status']" success; done
    is result.json "r['jobs']['slow']['status']" not_ready
    is result.json "r['jobs']['after_slow']['status']" skipped
    [ "$(cat dag-join.txt)" = $'prepared\nright' ] || fail "dag-join.txt: $(cat dag-join.txt 2>&1)"
    # Probed once and handed to a later run: still in the queue.
    [ -n "$(squeue -h -n dp-dag-slow -o %i)" ] || fail "the not-ready Slurm job is no longer queued"
    scancel -n dp-dag-slow
    queue_empty dp-dag-slow
    ;;
watch)
    if ! "$dp" watch --help >/dev/null 2>&1; then
        echo "SKIP: 'daggerpool watch' does not exist yet (hot-swap issue); this test runs once it does" >&2
        exit 77
    fi
    set +e
    timeout 120 "$dp" watch "$here/watch.cfg" --interval 1s --until-ready >watch.log 2>&1
    rc=$?
    set -e
    cat watch.log
    [ $rc = 0 ] || fail "watch exited $rc, expected 0 once the Slurm job completed"
    grep -qx done watch.out || fail "watch.out: $(cat watch.out 2>&1)"
    # Every Slurm job of that name, live or finished: exactly one.
    n=$( { squeue -h -t all -n dp-watch-once -o %i; sacct -c -n -P -o JobID,JobName |
           awk -F'|' '$2=="dp-watch-once"{print $1}'; } | sort -u | wc -l)
    [ "$n" = 1 ] || fail "expected exactly one Slurm job submitted by watch, found $n"
    ;;
bad_params)
    run bad_nowrap.cfg
    [ $rc = 2 ] || fail "exit status $rc, expected 2 (invalid input)"
    grep -q "slurm.batch needs 'wrap' (a command) or 'script'" run.log || fail "no clear message for a missing wrap"
    run bad_partition.cfg
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    json result.json "r['jobs']['nowhere']['error']" | grep -q 'invalid partition specified: nosuch' ||
        fail "the error does not carry sbatch's message"
    ;;
*) fail "unknown test" ;;
esac
echo "PASS ($t)"
