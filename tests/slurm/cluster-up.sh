#!/usr/bin/env bash
# cluster-up.sh DIR - start a real single-node Slurm cluster on loopback.
#
# Everything lives in DIR (config, state, spool, logs, its own munged and
# munge key), so the cluster never touches /etc/slurm or a system munged, and
# cluster-down.sh DIR stops exactly this cluster. Uses Debian's packages
# (slurmctld, slurmd, slurm-client, munge), installing the missing ones with
# apt-get. No systemd, no containers, no cgroups.
#
# Prints, as its last line, the export every Slurm client needs:
#   export SLURM_CONF=DIR/slurm.conf
#
# Environment:
#   DP_SLURM_PORT         first of the two TCP ports (slurmctld, slurmd);
#                         default: the first free pair from 16817 up.
#   DP_SLURM_MIN_JOB_AGE  seconds a finished job stays in squeue (default 10).
#   DP_SLURM_NO_INSTALL=1 never run apt-get; fail if a package is missing.
#
# Idempotent: when DIR already holds a running cluster that answers, it only
# prints the export again. Must run as root (slurmd launches jobs as their
# submitting user; munged runs as the munge user).
set -euo pipefail

die() { echo "cluster-up: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: cluster-up.sh DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their user); try sudo"

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
    [ "${DP_SLURM_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${need[*]} (apt-get install ${need[*]})"
    echo "cluster-up: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
        die "apt-get install ${need[*]} failed"
fi
PATH=$PATH:/usr/sbin:/sbin
id munge >/dev/null 2>&1 || die "user 'munge' missing (the munge package creates it)"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- already running? ---------------------------------------------------------
if [ -f "$CONF" ] && pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" &&
    pid_alive "$DIR/munge/munged.pid" && scontrol ping >/dev/null 2>&1; then
    echo "cluster-up: cluster in $DIR already running" >&2
    echo "export SLURM_CONF=$CONF"
    exit 0
fi
# Leftovers of a half-started cluster in the same DIR would hold the ports.
if [ -f "$CONF" ]; then
    "$(dirname "$0")/cluster-down.sh" "$DIR" >&2 || die "could not stop the previous cluster in $DIR"
fi

# --- layout -------------------------------------------------------------------
# munged must reach its files through DIR, and refuses directories writable
# by others.
chmod 0755 "$DIR"
rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge"
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge"
chmod 0755 "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
chown munge:munge "$DIR/munge"
chmod 0755 "$DIR/munge"  # clients need execute permission to reach the socket

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${DP_SLURM_PORT:-}" ]; then
    P1=$DP_SLURM_PORT
else
    P1=16817
    while ! { port_free "$P1" && port_free $((P1 + 1)); }; do
        P1=$((P1 + 2))
        [ "$P1" -lt 17817 ] || die "no free port pair in 16817-17817 (set DP_SLURM_PORT)"
    done
fi
P2=$((P1 + 1))

# --- munge: a private daemon with a private key --------------------------------
MUNGE_SOCKET=$DIR/munge/munge.socket.2
runuser -u munge -- mungekey --create --keyfile="$DIR/munge/munge.key" --bits=1024 ||
    die "mungekey failed"
runuser -u munge -- munged \
    --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" --num-threads=2 ||
    die "munged failed to start; see $DIR/munge/munged.log"
for _ in $(seq 100); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.05; done
[ -S "$MUNGE_SOCKET" ] || die "munged did not create $MUNGE_SOCKET; see $DIR/munge/munged.log"

# --- slurm.conf -----------------------------------------------------------------
HOST=$(hostname -s)
# The node's real topology, e.g. "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105".
TOPO=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]* //')
[ -n "$TOPO" ] || die "slurmd -C printed nothing"
cat >"$CONF" <<EOF
# Written by daggerpool tests/slurm/cluster-up.sh: a single-node cluster in
# $DIR, listening on ports $P1 (slurmctld) and $P2 (slurmd).
ClusterName=daggerpool
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$P2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
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
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST $TOPO State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons --------------------------------------------------------------------
slurmctld -c -f "$CONF" || die "slurmctld failed to start; see $DIR/log/slurmctld.log"
slurmd -f "$CONF" -N "$HOST" || die "slurmd failed to start; see $DIR/log/slurmd.log"

# Ready once the node reports idle (slurmd registered with slurmctld).
state=
for _ in $(seq 300); do
    state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.1
done
if [ "$state" != idle ]; then
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "node $HOST is '${state:-unreachable}', not idle, after 30 s; logs in $DIR/log"
fi
echo "cluster-up: cluster running in $DIR (node $HOST, ports $P1/$P2)" >&2
echo "export SLURM_CONF=$CONF"
