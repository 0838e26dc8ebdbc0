# shellcheck shell=bash
# job-procs.sh - sourced by the slurm tests: the processes of a test's
# Slurm jobs on this machine, so that none outlives the test even when
# Slurm loses track of one.
#
# Why: the controller can drop a cancelled job from its queue while the
# node still runs it. On CI (slurm.scale.cancel, 1000 jobs cancelled
# while a hundred were being launched) one `sleep 300` and its
# slurmstepd ran on for minutes after the queue was empty, and
# cluster-down.sh found them. Nothing the controller knows of is left, so
# scancel can do no more; the test kills them by pid.

# job_procs NAME: "PID JOBID job" for each process of a job named NAME
# (its environment carries SLURM_JOB_NAME=NAME and this cluster's
# SLURM_CONF), then "PID JOBID stepd" for each slurmstepd of those jobs.
# Pure bash: no fork per process.
job_procs() {
    local want=$1 d p e name conf id comm cmd vars ids=" " found=()
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        vars=()
        mapfile -d '' vars 2>/dev/null <"$d/environ" || continue
        name='' conf='' id=''
        for e in "${vars[@]}"; do
            case $e in
            SLURM_JOB_NAME=*) name=${e#SLURM_JOB_NAME=} ;;
            SLURM_CONF=*) conf=${e#SLURM_CONF=} ;;
            SLURM_JOB_ID=*) id=${e#SLURM_JOB_ID=} ;;
            esac
        done
        if [ "$name" = "$want" ] && [ "$conf" = "$SLURM_CONF" ] && [ -n "$id" ]; then
            found+=("$p $id job")
            ids+="$id "
        fi
    done
    [ ${#found[@]} -gt 0 ] || return 0
    for d in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$d/comm" || continue
        [ "$comm" = slurmstepd ] || continue
        cmd=
        read -r -d '' cmd 2>/dev/null <"$d/cmdline" || true
        # "slurmstepd: [ID.batch]" (or .extern, .0, ...)
        [[ $cmd =~ \[([0-9]+)\. ]] || continue
        [[ $ids == *" ${BASH_REMATCH[1]} "* ]] && found+=("${d#/proc/} ${BASH_REMATCH[1]} stepd")
    done
    printf '%s\n' "${found[@]}"
}

# job_procs_running NAME: how many processes the jobs named NAME run
# (their own, not their stepds).
job_procs_running() { job_procs "$1" | grep -c ' job$' || true; }

# job_procs_sweep NAME SECONDS: waits up to SECONDS for every process of
# the jobs named NAME to end; kills (SIGKILL) and names any still there,
# and returns 1 then.
job_procs_sweep() {
    local want=$1 limit=$(($2 * 5)) i left
    for ((i = 0; i < limit; i++)); do
        left=$(job_procs "$want")
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    echo "note: processes of Slurm jobs named $want still run $2 s after the controller let them go; killing them:" >&2
    # shellcheck disable=SC2086
    ps -o pid,args -p "$(echo "$left" | awk '{ print $1 }' | paste -sd,)" >&2 2>/dev/null || true
    echo "$left" | awk '{ print $1 }' | xargs -r kill -KILL 2>/dev/null || true
    return 1
}
