#!/usr/bin/env bash
# cluster-up.sh DIR - start a real single-node Slurm cluster on loopback.
#
# The cluster is private: its own config, state, spool, logs, munged and munge
# key, so it never touches /etc/slurm or a system munged, and
# cluster-down.sh DIR stops exactly this cluster. Uses Debian's packages
# (slurmctld, slurmd, slurm-client, munge), installing the missing ones with
# scripts/deps.sh. No systemd, no containers, no cgroups.
#
# Where things live:
#   DIR       slurm.conf, log/ (slurmctld, slurmd, jobcomp.txt; munged.log
#             once stopped), work/ (the tests' scratch dirs), and the file
#             `runtime` naming the runtime dir. DIR may be anywhere root can
#             write, e.g. in a checkout under /root (mode 0700).
#   runtime   a fresh `mktemp -d` under DP_SLURM_RUNTIME_PARENT (default
#             /tmp), mode 0755: munge/ (key, socket, pid, log), state/,
#             spool/ (job scripts), run/ (pid files). It holds what users
#             other than root must reach: munged runs as the munge user,
#             and jobs run as their submitting user from the spool. A DIR
#             under a private home directory cannot give them that, which
#             is why it is kept apart. cluster-down.sh removes it.
# The Slurm clients (sbatch, squeue, ...) read DIR/slurm.conf, so a user
# other than root can use the cluster only if DIR is readable to them.
#
# Prints, as its last line, the export every Slurm client needs:
#   export SLURM_CONF=DIR/slurm.conf
#
# Environment:
#   DP_SLURM_PORT         first of the two TCP ports (slurmctld, slurmd);
#                         default: a free pair in 16817-17816, tried from a
#                         random start; a pair taken by a cluster starting
#                         at the same moment is given up for the next one.
#   DP_SLURM_MIN_JOB_AGE  seconds a finished job stays in squeue (default 10).
#   DP_SLURM_CPUS         CPUs the node declares (default 1024, whatever the
#                         machine has): many tiny jobs (`sleep 1`) run at
#                         once instead of queueing behind two real cores,
#                         which the 1 000-job test (slurm.scale) needs. 0
#                         keeps the machine's real topology.
#   DP_SLURM_NO_INSTALL=1 never install; fail if a package is missing.
#   DP_SLURM_RUNTIME_PARENT  where the runtime dir is made (default /tmp):
#                         must be searchable by the munge user, and not
#                         mounted noexec (job scripts run from the spool).
#
# Idempotent: when DIR already holds a running cluster that answers, it only
# prints the export again. Must run as root (slurmd launches jobs as their
# submitting user; munged runs as the munge user).
set -euo pipefail

die() { echo "cluster-up: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: cluster-up.sh DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their user); try sudo"
here=$(cd "$(dirname "$0")" && pwd -P)

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

# --- packages --------------------------------------------------------------
need=()
command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || [ -x /usr/sbin/slurmd ] || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
    [ "${DP_SLURM_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${need[*]} (scripts/deps.sh ${need[*]})"
    echo "cluster-up: installing ${need[*]}" >&2
    # deps.sh is the project's one installer; its output must not reach
    # stdout, whose last line is the export.
    "$here/../../scripts/deps.sh" "${need[@]}" >&2 || die "scripts/deps.sh ${need[*]} failed"
fi
PATH=$PATH:/usr/sbin:/sbin
id munge >/dev/null 2>&1 || die "user 'munge' missing (the munge package creates it)"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- already running? ---------------------------------------------------------
RT=
[ -s "$DIR/runtime" ] && RT=$(cat "$DIR/runtime")
if [ -f "$CONF" ] && [ -n "$RT" ] && pid_alive "$RT/run/slurmctld.pid" &&
    pid_alive "$RT/run/slurmd.pid" && pid_alive "$RT/munge/munged.pid" &&
    scontrol ping >/dev/null 2>&1; then
    echo "cluster-up: cluster in $DIR already running (runtime $RT)" >&2
    echo "export SLURM_CONF=$CONF"
    exit 0
fi
# Leftovers of a half-started cluster in the same DIR would hold the ports,
# and its runtime dir would be left behind.
if [ -f "$CONF" ] || [ -e "$DIR/runtime" ]; then
    "$here/cluster-down.sh" "$DIR" >&2 || die "could not stop the previous cluster in $DIR"
fi

# --- layout -------------------------------------------------------------------
rm -rf "$DIR/log" "$CONF"
mkdir -p "$DIR/log"
parent=$(cd "${DP_SLURM_RUNTIME_PARENT:-/tmp}" && pwd -P) ||
    die "DP_SLURM_RUNTIME_PARENT=${DP_SLURM_RUNTIME_PARENT:-} is not a directory"
RT=$(mktemp -d "$parent/dp-slurm.XXXXXXXX") ||
    die "cannot make the runtime dir in $parent (set DP_SLURM_RUNTIME_PARENT to a writable directory)"
# From here on a failure must not leave the runtime dir or a daemon behind:
# cluster-down.sh finds both through DIR/runtime.
echo "$RT" >"$DIR/runtime"
# The marker lets cluster-down.sh check that what it is about to remove is
# the runtime dir of this DIR, whatever DIR/runtime says.
echo "$DIR" >"$RT/.daggerpool-cluster"
started=0
cleanup() {
    if [ $started = 0 ]; then
        echo "cluster-up: removing what this failed start left" >&2
        "$here/cluster-down.sh" "$DIR" >&2 || true
    fi
}
trap cleanup EXIT
fail() { echo "cluster-up: $*" >&2; exit 1; }

chmod 0755 "$RT"
mkdir "$RT/state" "$RT/spool" "$RT/run" "$RT/munge"
chmod 0755 "$RT/state" "$RT/spool" "$RT/run"
chown munge:munge "$RT/munge"
chmod 0755 "$RT/munge"  # clients need execute permission to reach the socket

# Say exactly why not, before munged says something vaguer.
if ! runuser -u munge -- test -w "$RT/munge"; then
    d=$RT
    while [ "$d" != / ]; do   # the outermost directory the munge user cannot enter
        runuser -u munge -- test -x "$d" || blocked=$d
        d=$(dirname "$d")
    done
    fail "the munge user cannot reach $RT/munge:" \
        "${blocked:-$RT} is $(stat -c '%A, owned by %U' "${blocked:-$RT}") (not searchable by others)." \
        "Set DP_SLURM_RUNTIME_PARENT to a directory every user can reach, such as /tmp."
fi
printf '#!/bin/sh\nexit 0\n' >"$RT/spool/exec-probe"
chmod 0755 "$RT/spool/exec-probe"
if ! "$RT/spool/exec-probe" 2>/dev/null; then
    fail "cannot execute files in $RT (is $parent mounted noexec?): Slurm runs job scripts" \
        "from its spool there. Set DP_SLURM_RUNTIME_PARENT to a directory that allows execution."
fi
rm -f "$RT/spool/exec-probe"

# --- munge: a private daemon with a private key --------------------------------
MUNGE_SOCKET=$RT/munge/munge.socket.2
runuser -u munge -- mungekey --create --keyfile="$RT/munge/munge.key" --bits=1024 ||
    fail "mungekey failed"
runuser -u munge -- munged \
    --socket="$MUNGE_SOCKET" --key-file="$RT/munge/munge.key" \
    --pid-file="$RT/munge/munged.pid" --log-file="$RT/munge/munged.log" \
    --seed-file="$RT/munge/munged.seed" --num-threads=2 ||
    fail "munged failed to start; see $RT/munge/munged.log: $(tail -n 3 "$RT/munge/munged.log" 2>/dev/null)"
for _ in $(seq 100); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.05; done
[ -S "$MUNGE_SOCKET" ] || fail "munged did not create $MUNGE_SOCKET; see $RT/munge/munged.log"

# --- slurm.conf -----------------------------------------------------------------
# uname, not hostname(1): the hostname package is not in a minimal Debian.
HOST=$(uname -n)
HOST=${HOST%%.*}
# The node's real topology, e.g. "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105".
TOPO=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]* //')
[ -n "$TOPO" ] || fail "slurmd -C printed nothing"
# Many CPUs declared on one machine: one socket of DP_SLURM_CPUS cores, the
# real memory; SlurmdParameters=config_overrides has slurmd take the
# declared topology instead of draining the node for having fewer CPUs.
NCPUS=${DP_SLURM_CPUS:-1024}
case $NCPUS in ''|*[!0-9]*) fail "DP_SLURM_CPUS=$NCPUS is not a number of CPUs" ;; esac
OVERRIDES=
if [ "$NCPUS" != 0 ]; then
    MEM=$(sed -n -e 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$TOPO")
    TOPO="CPUs=$NCPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPUS ThreadsPerCore=1 RealMemory=${MEM:-1000}"
    OVERRIDES=SlurmdParameters=config_overrides
fi

write_conf() {   # write_conf CTLD_PORT SLURMD_PORT
    cat >"$CONF" <<EOF
# Written by daggerpool tests/slurm/cluster-up.sh: a single-node cluster
# listening on ports $1 (slurmctld) and $2 (slurmd). Its runtime state (munge,
# state, spool, pid files) is in $RT; cluster-down.sh $DIR removes it.
ClusterName=daggerpool
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$RT/state
SlurmdSpoolDir=$RT/spool
SlurmctldPidFile=$RT/run/slurmctld.pid
SlurmdPidFile=$RT/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: plain process tracking, no task containment.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No accounting database: finished jobs go to a text file that 'sacct -c' reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=${DP_SLURM_MIN_JOB_AGE:-10}
ReturnToService=2
SlurmctldTimeout=30
# Slurm's default (300 s), not 30: a slurmd that a loaded machine keeps from
# answering the controller's pings for SlurmdTimeout gets its node set DOWN
# (seen here with slurmd stopped for 150 s), and the jobs running on it fail
# (NODE_FAIL). The likeliest cause of what CI once saw: the restarted watch
# of slurm.scale.restart submitted 357 jobs again and never converged.
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
# A busy machine (1 000 jobs starting at once on two cores) can keep slurmd
# from confirming a launch within the default 10 s; the job would then be
# requeued and held back for two minutes.
MessageTimeout=30
$OVERRIDES
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST $TOPO State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

# stop_daemons: kills this cluster's slurmctld and slurmd (a failed start).
stop_daemons() {
    local f p
    for f in "$RT/run/slurmctld.pid" "$RT/run/slurmd.pid"; do
        p=$( [ -s "$f" ] && cat "$f" ) || continue
        kill -TERM "$p" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -f "$RT/run/slurmctld.pid" "$RT/run/slurmd.pid"
}

# start P1 P2: 0 once the node is idle; 2 when a port turned out to be taken
# (a daemon exited saying so); 1 on any other failure (reason on stderr).
start() {
    local state='' i log pidf
    write_conf "$1" "$2"
    : >"$DIR/log/slurmctld.log"; : >"$DIR/log/slurmd.log"
    slurmctld -c -f "$CONF" 2>>"$DIR/log/slurmctld.log" || true
    slurmd -f "$CONF" -N "$HOST" 2>>"$DIR/log/slurmd.log" || true
    # Ready once the node reports idle (slurmd registered with slurmctld).
    for ((i = 0; i < 300; i++)); do
        state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null || true)
        [ "$state" = idle ] && return 0
        # A port taken since the check: slurmctld and slurmd log it, then
        # retry the bind for a while before they give up; do not wait.
        for log in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
            if grep -qiE 'address already in use|unable to bind' "$log"; then
                echo "cluster-up: $(basename "$log" .log) cannot bind its port ($1/$2 taken)" >&2
                return 2
            fi
        done
        # A daemon that exited (no pid file, or its process gone) will not
        # come back: look at why at once rather than after 30 s.
        for pidf in "$RT/run/slurmctld.pid" "$RT/run/slurmd.pid"; do
            if { [ -s "$pidf" ] && ! pid_alive "$pidf"; } || { ((i >= 100)) && [ ! -s "$pidf" ]; }; then
                break 2
            fi
        done
        sleep 0.1
    done
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    echo "cluster-up: node $HOST is '${state:-unreachable}', not idle; logs in $DIR/log" >&2
    return 1
}

# --- daemons --------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_pair() { P1=$((P1 + 2)); [ "$P1" -lt 17817 ] || P1=16817; }
# Two build trees starting clusters at once: a random start spreads them, and
# a pair lost to a race between the check and the bind is given up for the next.
if [ -n "${DP_SLURM_PORT:-}" ]; then
    P1=$DP_SLURM_PORT
else
    P1=$((16817 + 2 * (RANDOM % 500)))
fi
rc=none
for ((try = 0; try < 500; try++)); do
    if [ -z "${DP_SLURM_PORT:-}" ] && ! { port_free "$P1" && port_free $((P1 + 1)); }; then
        next_pair
        continue
    fi
    rc=0
    start "$P1" $((P1 + 1)) || rc=$?
    if [ $rc = 2 ] && [ -z "${DP_SLURM_PORT:-}" ]; then
        echo "cluster-up: ports $P1/$((P1 + 1)) were taken since the check; trying others" >&2
        stop_daemons
        next_pair
        continue
    fi
    break
done
[ "$rc" = 0 ] || stop_daemons   # a failed start: no need for an orderly shutdown
case $rc in
    0) ;;
    none) fail "no free port pair in 16817-17816 (set DP_SLURM_PORT)" ;;
    2) fail "ports $P1/$((P1 + 1)) are in use: choose another pair than DP_SLURM_PORT=$P1" ;;
    *) fail "the cluster did not start" ;;
esac
started=1
echo "cluster-up: cluster running in $DIR (node $HOST, ports $P1/$((P1 + 1)), runtime $RT)" >&2
echo "export SLURM_CONF=$CONF"
