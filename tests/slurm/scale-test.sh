#!/usr/bin/env bash
# scale-test.sh TEST DAGGERPOOL [N] - N (default 1000) slurm.batch jobs at
# once against the cluster named by SLURM_CONF (cluster-up.sh declares its
# node with 1024 CPUs, so they run side by side). Labels slurm and
# slurm_scale: only in the plain suite, one at a time (RUN_SERIAL), since
# the controller's RPC counts (sdiag) are the cluster's, not the test's.
#
#   complete  N jobs `sleep 1`..`sleep 5`, readiness period 2 s: all succeed;
#             the controller answers at most 2 status queries (squeue's
#             REQUEST_JOB_INFO, REQUEST_JOB_INFO_SINGLE) per period for the
#             whole workflow (plus a few for the first and last periods);
#             prints submissions per second and status queries per period.
#   watch     N jobs `sleep 1`..`sleep 5` without a readiness group under
#             `watch --interval 2s --until-ready`: each run probes each job
#             once, the next run adopts the Slurm jobs the store names (one
#             look for all of them): exit 0, exactly N submissions.
#   restart   durable state (the `state` work: the store in a file): a watch
#             submits N jobs `sleep 20`..`sleep 29` (no readiness group),
#             is stopped between two runs (SIGTERM: nothing in flight, so
#             nothing cancelled), and a new watch --until-ready adopts all N
#             from the state file: exit 0, no submission after the first N.
#             Exit 77 (skipped) when the command has no durable state.
#   cancel    N jobs (a tenth `sleep 300` running, the rest held pending by
#             --begin) in flight, then SIGINT: exit 130, at most
#             N/50 + 5 scancel calls (the plugin's log says how many ids each
#             took), and none of the jobs left in the queue (a process
#             Slurm runs on after that is killed and named: job-procs.sh).
#
# DP_SCALE_KEEP=1 keeps the work dir's files; the figures in bench/README.md
# come from this script's output.
set -euo pipefail
t=$1 dp=$2 n=${3:-1000}
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
work=$(dirname "$SLURM_CONF")/work/scale-$t
rm -rf "$work"; mkdir -p "$work"; cd "$work"

ctl_log=$(dirname "$SLURM_CONF")/log/slurmctld.log
ctl_from=$(($(wc -l <"$ctl_log" 2>/dev/null || echo 0) + 1))
# explain: what a failure needs to be understood from CI's output alone: the
# controller's complaints since this test began (a node set DOWN kills its
# jobs) and the command's warnings and errors, numbers folded, most common
# first (why jobs failed, were submitted again, or looks failed).
explain() {
    echo "--- slurmctld.log since the test began: errors, node and requeue events (last 15)" >&2
    tail -n +"$ctl_from" "$ctl_log" 2>/dev/null |
        grep -E -i 'error|not responding|node_fail|requeue|launch fail|drain|down' | tail -n 15 >&2 || true
    local f
    for f in first.log run.log; do
        [ -s "$f" ] || continue
        echo "--- $f: warnings (but not_ready), errors and submissions again, by kind (numbers as N)" >&2
        grep -E ' (warn|error) |submitting again' "$f" | grep -v -E 'not_ready after|ended: not_ready' |
            cut -d' ' -f2- | sed -E 's/[0-9]+/N/g' |
            sort | uniq -c | sort -rn | head -n 15 >&2 || true
    done
    echo "--- the test's jobs in the queue, by state and reason" >&2
    squeue -h -t all -n "$name" -o '%T %r' 2>/dev/null | sort | uniq -c >&2 || true
    sinfo -h -o '%N %T %E' >&2 2>/dev/null || true
}
fail() {
    echo "FAIL (scale $t): $*" >&2
    explain
    exit 1
}
now() { date +%s.%N; }
# rpc NAME...: the controller's count of those RPC types (sdiag), summed.
rpc() {
    sdiag | awk -v want=" $* " '
        /Remote Procedure Call statistics by message type/ { on = 1; next }
        /Remote Procedure Call statistics by user/ { on = 0 }
        on && index(want, " " $1 " ") { sub(/.*count:/, ""); split($0, a, " "); s += a[1] }
        END { print s + 0 }'
}
STATUS_RPCS="REQUEST_JOB_INFO REQUEST_JOB_INFO_SINGLE"
name=dp-scale-$t-$$
# The queue's jobs of this test: none may be left when it ends.
in_queue() { squeue -h -n "$name" -o %i | wc -l; }
# shellcheck source=tests/slurm/job-procs.sh
. "$here/job-procs.sh"
# None of its processes either, even one the controller forgot.
cleanup() {
    scancel -n "$name" 2>/dev/null || true
    job_procs_sweep "$name" 30 || true
}
trap cleanup EXIT

# gen FILE: N jobs, no dependencies between them.
gen() {
    {
        echo "workflow: { name = \"slurm-scale-$t\"; max_concurrent_jobs = $n; timeout = \"$1\"; };"
        # probe_timeout 5m, not the default 30 s: while this 2-CPU VM's
        # controller takes 1000 submissions at once, one shared status look
        # has taken over 30 s (fresh check, 19:13 UTC), and every check
        # waiting on it timed out; the test counts looks, not their speed.
        case $t in watch | restart) ;; *) echo "defaults = { readiness = { period = \"2s\"; timeout = \"10m\"; probe_timeout = \"5m\"; }; };" ;; esac
        echo "jobs = ("
        for ((i = 0; i < n; i++)); do
            case $t in
            complete | watch) cmd="exec sleep $((1 + i % 5))" args= ;;
            restart) cmd="exec sleep $((20 + i % 10))" args= ;;
            cancel)
                if ((i % 10 == 0)); then cmd="exec sleep 300" args=; else cmd="exec sleep 300" args="sbatch_args = [ \"--begin=now+3600\" ];"; fi ;;
            esac
            printf '  { name = "j%04d"; type = "slurm.batch"; params = { wrap = "%s"; job_name = "%s"; output = "/dev/null"; %s }; }%s\n' \
                "$i" "$cmd" "$name" "$args" "$( ((i + 1 < n)) && echo ,)"
        done
        echo ");"
    }
}

case $t in
complete)
    gen 8m >scale.cfg
    q0=$(rpc $STATUS_RPCS) s0=$(rpc REQUEST_SUBMIT_BATCH_JOB) t0=$(now)
    set +e
    "$dp" run scale.cfg -v --json result.json >run.log 2>&1
    rc=$?
    set -e
    t1=$(now) q1=$(rpc $STATUS_RPCS) s1=$(rpc REQUEST_SUBMIT_BATCH_JOB)
    tail -n 5 run.log
    # Submissions per second: the log's lines carry the time; from the
    # run's start to the last "submitted Slurm job" line. Status queries:
    # the controller's count over the whole run.
    python3 - "$n" "$t0" "$t1" "$q0" "$q1" "$s0" "$s1" <<'EOF'
import sys, re, datetime
n, t0, t1, q0, q1, s0, s1 = int(sys.argv[1]), *map(float, sys.argv[2:4]), *map(int, sys.argv[4:8])
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
start, subs = None, []
for line in open("run.log"):
    m = re.match(r"(\S+Z) info .*: run started", line)
    if m and start is None:
        start = ts(m.group(1))
    m = re.match(r"(\S+Z) info .*: submitted Slurm job", line)
    if m:
        subs.append(ts(m.group(1)))
span = max(subs) - start if subs and start else float("nan")
secs = t1 - t0
periods = secs / 2.0
q = q1 - q0
print(f"scale complete: {n} jobs in {secs:.1f} s; {len(subs)} submitted ({s1 - s0} sdiag "
      f"REQUEST_SUBMIT_BATCH_JOB) in {span:.1f} s from the run's start: {len(subs) / span:.1f}/s; "
      f"{q} status queries (sdiag REQUEST_JOB_INFO + REQUEST_JOB_INFO_SINGLE) over {periods:.1f} "
      f"periods of 2 s: {q / periods:.2f} per period")
# At most 2 per period, plus a few for the first and the last periods.
if q > 2 * periods + 6:
    print(f"FAIL (scale complete): {q} status queries, more than 2 per period ({2 * periods + 6:.0f})")
    sys.exit(1)
EOF
    [ $rc = 0 ] || fail "exit status $rc, expected 0 (log in $work/run.log)"
    ok=$(python3 -c 'import json,sys; r=json.load(open("result.json")); print(sum(j["status"]=="success" for j in r["jobs"].values()))')
    [ "$ok" = "$n" ] || fail "$ok of $n jobs succeeded"
    ;;
watch)
    gen 5m >scale.cfg
    q0=$(rpc $STATUS_RPCS) s0=$(rpc REQUEST_SUBMIT_BATCH_JOB) t0=$(now)
    set +e
    timeout 480 "$dp" watch scale.cfg --interval 2s --until-ready --json-lines runs.jsonl >run.log 2>&1
    rc=$?
    set -e
    t1=$(now) q1=$(rpc $STATUS_RPCS) s1=$(rpc REQUEST_SUBMIT_BATCH_JOB)
    tail -n 3 run.log
    [ $rc = 0 ] || fail "watch exited $rc, expected 0 (log in $work/run.log)"
    runs=$(wc -l <runs.jsonl)
    adopted=$(grep -c 'submitted earlier for this job is' run.log || true)
    echo "scale watch: $n jobs in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s, $runs runs; $((s1 - s0)) submissions;" \
        "$adopted adoptions; $((q1 - q0)) status queries"
    [ $((s1 - s0)) = "$n" ] || fail "$((s1 - s0)) submissions, expected exactly $n"
    [ "$runs" -ge 2 ] || fail "only $runs run(s): nothing was adopted"
    ;;
restart)
    "$dp" run --help 2>&1 | grep -q -- '--state' || {
        echo "SKIP: this daggerpool keeps no durable state (run --state): a restarted watch cannot adopt" >&2
        exit 77
    }
    gen 8m >scale.cfg
    s0=$(rpc REQUEST_SUBMIT_BATCH_JOB) q0=$(rpc $STATUS_RPCS)
    "$dp" watch scale.cfg --interval 10m --json-lines first.jsonl >first.log 2>&1 &
    pid=$!
    for ((i = 0; i < 3000; i++)); do
        [ -s first.jsonl ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    [ -s first.jsonl ] || { kill -KILL $pid 2>/dev/null; fail "the first watch ended no run (log in $work/first.log)"; }
    # Between two runs: nothing in flight, nothing to cancel.
    kill -TERM $pid
    set +e
    wait $pid
    set -e
    s1=$(rpc REQUEST_SUBMIT_BATCH_JOB) live=$(in_queue)
    [ $((s1 - s0)) = "$n" ] || fail "the first watch made $((s1 - s0)) submissions, expected $n"
    t0=$(now) q1=$(rpc $STATUS_RPCS)
    set +e
    timeout 480 "$dp" watch scale.cfg --interval 2s --until-ready --json-lines runs.jsonl >run.log 2>&1
    rc=$?
    set -e
    t1=$(now) s2=$(rpc REQUEST_SUBMIT_BATCH_JOB) q2=$(rpc $STATUS_RPCS)
    tail -n 3 run.log
    adopted=$(grep -c 'submitted earlier for this job is' run.log || true)
    first=$(head -n 1 runs.jsonl | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(j["status"] in ("success","not_ready") for j in r["jobs"].values()))')
    echo "scale restart: $n jobs submitted by a first watch ($((q1 - q0)) status queries), $live of them still" \
        "queued when it stopped; the restarted watch: $(python3 -c "print(f'{$t1 - $t0:.1f}')") s," \
        "$(wc -l <runs.jsonl) runs, $((s2 - s1)) submissions, $adopted adoptions, $((q2 - q1)) status queries"
    [ $rc = 0 ] || fail "the restarted watch exited $rc, expected 0 (log in $work/run.log)"
    [ $((s2 - s1)) = 0 ] || fail "the restarted watch submitted $((s2 - s1)) jobs again, expected none"
    [ "$first" = "$n" ] || fail "its first run saw $first of $n jobs adopted"
    ;;
cancel)
    gen 8m >scale.cfg
    k0=$(rpc REQUEST_KILL_JOB)
    "$dp" run scale.cfg -v --json result.json >run.log 2>&1 &
    pid=$!
    # Every job in flight: all N in the queue (the workflow keeps them
    # waiting), at most 5 minutes.
    for ((i = 0; i < 3000; i++)); do
        [ "$(in_queue)" -ge "$n" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    queued=$(in_queue)
    [ "$queued" -ge "$n" ] || { kill -KILL $pid 2>/dev/null; fail "only $queued of $n jobs reached the queue"; }
    # And the tenth that runs running: their processes started, not still
    # being launched when cancelled (a launch that crosses its cancel is
    # how Slurm loses track of a job; see job-procs.sh), at most 2 minutes.
    for ((i = 0; i < 240; i++)); do
        [ "$(job_procs_running "$name")" -ge $((n / 10)) ] && break
        sleep 0.5
    done
    running=$(job_procs_running "$name")
    [ "$running" -ge $((n / 10)) ] || { kill -KILL $pid 2>/dev/null; fail "only $running of $((n / 10)) jobs started running"; }
    t0=$(now)
    kill -INT $pid
    set +e
    wait $pid
    rc=$?
    set -e
    t1=$(now)
    tail -n 5 run.log
    [ $rc = 130 ] || fail "exit status $rc, expected 130 (interrupted)"
    left=$(in_queue)
    # scancel's ids count as cancelled once the controller has them; give
    # it a moment to drop them from the queue.
    for ((i = 0; i < 100 && left > 0; i++)); do sleep 0.2; left=$(in_queue); done
    calls=$(grep -c 'with one scancel' run.log || true)
    ids=$( (grep -o 'cancelled [0-9]* Slurm jobs\? with one scancel' run.log || true) | awk '{ s += $2 } END { print s + 0 }')
    singles=$(grep -c 'cancelled Slurm job [0-9]' run.log || true)
    echo "scale cancel: $n jobs in flight; SIGINT to exit in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s;" \
        "$calls scancel calls for $ids ids ($singles jobs logged as cancelled);" \
        "$(($(rpc REQUEST_KILL_JOB) - k0)) REQUEST_KILL_JOB; $left left in the queue"
    [ "$left" = 0 ] || fail "$left jobs left in the queue: $(squeue -h -n "$name" -o '%i %T' | head)"
    # The controller has none of them; their processes end within KillWait
    # (5 s). One that does not is Slurm's to explain, not the command's
    # (it cancelled every id), so it is killed and named, not failed on.
    job_procs_sweep "$name" 30 || echo "note: Slurm kept running jobs it no longer lists (killed above)" >&2
    [ "$ids" -ge "$n" ] || fail "the log names $ids cancelled ids, expected $n"
    [ "$calls" -le $((n / 50 + 5)) ] || fail "$calls scancel calls, more than $((n / 50 + 5))"
    ;;
*) fail "unknown test" ;;
esac
[ "${DP_SCALE_KEEP:-0}" = 1 ] || rm -f scale.cfg
echo "PASS (scale $t)"
