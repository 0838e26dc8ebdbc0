#!/usr/bin/env bash
# cluster-down.sh DIR - stop the cluster that cluster-up.sh DIR started,
# leaving no process behind, and remove its runtime dir.
#
# Order matters: cancel every job and wait for an empty queue first (a
# `scontrol shutdown` with running jobs orphans their steps), then shut the
# Slurm daemons down, then munged. Then every process that belongs to this
# cluster (a daemon naming DIR or its runtime dir, a slurmstepd or job
# process carrying its SLURM_CONF) is looked for; any found is killed and
# reported, and the script fails. Last, munged's log is kept in DIR/log and
# the runtime dir (named by DIR/runtime; see cluster-up.sh) is removed.
# Exit 0 means: nothing of this cluster runs any more, and its runtime dir is gone.
set -uo pipefail

die() { echo "cluster-down: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: cluster-down.sh DIR"
[ -d "$1" ] || { echo "cluster-down: $1 does not exist; nothing to stop" >&2; exit 0; }
DIR=$(cd "$1" && pwd -P)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF
PATH=$PATH:/usr/sbin:/sbin
status=0

# The runtime dir: only one that cluster-up.sh made for this DIR (its marker
# names DIR) is used, and removed.
RT=
if [ -s "$DIR/runtime" ]; then
    RT=$(cat "$DIR/runtime")
    if [ ! -d "$RT" ]; then
        echo "cluster-down: runtime dir $RT (from $DIR/runtime) is gone already" >&2
        RT=
    elif [ "$(cat "$RT/.daggerpool-cluster" 2>/dev/null)" != "$DIR" ]; then
        echo "cluster-down: $RT (from $DIR/runtime) is not this cluster's runtime dir" \
            "(its .daggerpool-cluster does not name $DIR); not touching it" >&2
        RT=
        status=1
    fi
fi

pid_of() { [ -s "$1" ] && cat "$1"; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# wait_gone SECONDS PID...: 0 once every PID has exited.
wait_gone() {
    local limit=$(( $1 * 10 )) i p left; shift
    for ((i = 0; i < limit; i++)); do
        left=0
        for p in "$@"; do alive "$p" && left=1; done
        [ $left = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

ctld='' slurmd='' munged=''
if [ -n "$RT" ]; then
    ctld=$(pid_of "$RT/run/slurmctld.pid")
    slurmd=$(pid_of "$RT/run/slurmd.pid")
    munged=$(pid_of "$RT/munge/munged.pid")
fi

if [ -f "$CONF" ] && alive "$ctld"; then
    # 1. Cancel everything and wait until no job is pending, running or completing.
    jobs=$(squeue -h -o '%i' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
    fi
    empty=0
    for _ in $(seq 300); do
        if [ -z "$(squeue -h -o '%i' 2>/dev/null)" ]; then empty=1; break; fi
        sleep 0.1
    done
    if [ $empty = 0 ]; then
        echo "cluster-down: queue not empty after 30 s:" >&2
        squeue -o '%i %T %r' >&2 || true
        status=1
    fi
    # 2. Shut the Slurm daemons down.
    scontrol shutdown >/dev/null 2>&1 || echo "cluster-down: scontrol shutdown failed" >&2
fi
pids=()
for p in "$ctld" "$slurmd"; do alive "$p" && pids+=("$p"); done
if [ ${#pids[@]} -gt 0 ] && ! wait_gone 20 "${pids[@]}"; then
    echo "cluster-down: slurm daemons still running after 20 s; sending SIGTERM" >&2
    kill -TERM "${pids[@]}" 2>/dev/null
    wait_gone 5 "${pids[@]}" || kill -KILL "${pids[@]}" 2>/dev/null
    status=1
fi

# 3. munged (runs as munge; root may signal it).
if alive "$munged"; then
    kill -TERM "$munged" 2>/dev/null
    if ! wait_gone 10 "$munged"; then
        echo "cluster-down: munged did not stop after SIGTERM; killing it" >&2
        kill -KILL "$munged" 2>/dev/null
        status=1
    fi
fi

# 4. Verify: no process of this cluster remains.
# Pure bash (no fork per process): a busy CI machine has many processes.
leftovers() {
    local d p comm cmd env job
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" = $$ ] && continue
        comm="" cmd=() env=()
        read -r comm 2>/dev/null <"$d/comm" || continue
        mapfile -d '' cmd 2>/dev/null <"$d/cmdline" || continue
        mapfile -d '' env 2>/dev/null <"$d/environ" || env=()
        ours=0 job=0
        for e in "${env[@]}"; do
            [ "$e" = "SLURM_CONF=$CONF" ] && ours=1
            [[ $e == SLURM_JOB_ID=* ]] && job=1
        done
        case $comm in
            slurmctld|slurmd|slurmstepd|munged)
                [[ "${cmd[*]}" == *"$DIR"* ]] && ours=1
                [ -n "$RT" ] && [[ "${cmd[*]}" == *"$RT"* ]] && ours=1
                [ $ours = 1 ] && echo "$p"
                continue ;;
        esac
        # A job's own process: it carries a job id and this cluster's config.
        [ $ours = 1 ] && [ $job = 1 ] && echo "$p"
    done
}
left=$(leftovers | tr '\n' ' ')
if [ -n "${left// /}" ]; then
    echo "cluster-down: processes of the cluster in $DIR still running; killing them:" >&2
    list=$(echo $left | tr ' ' ',')
    ps -o pid,user,args -p "$list" >&2 2>/dev/null || true
    # What Slurm logged of their jobs: CI keeps nothing but this output.
    for id in $(ps -o args= -p "$list" 2>/dev/null | sed -n -E 's/.*\[([0-9]+)\..*/\1/p' | sort -u); do
        echo "cluster-down: what the logs say of job $id:" >&2
        grep -h -E "(JobId=|job |\[)$id([^0-9]|$)" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" 2>/dev/null |
            sort | tail -n 20 >&2 || true
    done
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
    status=1
fi
others=$(for n in slurmctld slurmd slurmstepd munged; do pgrep -x "$n"; done | tr '\n' ' ')
if [ -n "${others// /}" ]; then
    # Not ours (another cluster, or a system service): mentioned, never touched.
    echo "cluster-down: note: slurm/munge processes of another instance still run: $others" >&2
fi
# 5. Keep munged's log with the others; remove the runtime dir.
if [ -n "$RT" ]; then
    mkdir -p "$DIR/log"
    [ -f "$RT/munge/munged.log" ] && cp "$RT/munge/munged.log" "$DIR/log/munged.log"
    rm -rf "$RT" || { echo "cluster-down: could not remove $RT" >&2; status=1; }
fi
[ $status = 0 ] && rm -f "$DIR/runtime"
[ $status = 0 ] && echo "cluster-down: cluster in $DIR stopped, no process left${RT:+, $RT removed}" >&2
exit $status
