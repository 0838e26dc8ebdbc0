#!/usr/bin/env bash
# state-restart-test.sh DAGGERPOOL - the store survives a restart (issue 15,
# docs/state.md): `daggerpool watch` is killed with SIGKILL while its Slurm
# jobs are pending or running, then started again on the same state; it
# adopts the jobs slurm.batch kept in the store (their ids, persisted)
# instead of submitting them again. Counts sbatch submissions per job name
# on the cluster (squeue and sacct): one each, never two. Before the store
# was persisted, the restart submitted `a` and `b` a second time.
set -euo pipefail
dp=$1
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
work=$(dirname "$SLURM_CONF")/work/state-restart
rm -rf "$work"; mkdir -p "$work"; cd "$work"
# Job names unique to this test's run: the cluster's accounting keeps the
# names of earlier runs' jobs.
tag=$$
sed "s/dp-restart-\([a-z]*\)/dp-restart-\1-$tag/" "$here/state_restart.cfg" > state_restart.cfg
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2> /dev/null; scancel -n dp-restart-a-$tag,dp-restart-b-$tag,dp-restart-after-$tag 2> /dev/null || true; }
trap cleanup EXIT
fail() { echo "FAIL (state restart): $*" >&2; exit 1; }
submitted() { # NAME: how many Slurm jobs of that name the cluster has seen
  { squeue -h -t all -n "$1" -o %i; sacct -c -n -P -o JobID,JobName | awk -F'|' -v n="$1" '$2==n{print $1}'; } |
    sed 's/[._].*//' | sort -u | wc -l
}
"$dp" watch state_restart.cfg --interval 1s --until-ready > watch1.log 2>&1 &
pid=$!
for _ in $(seq 300); do
  [ "$(submitted dp-restart-a-$tag)" -ge 1 ] && [ "$(submitted dp-restart-b-$tag)" -ge 1 ] && break
  sleep 0.1
done
[ "$(submitted dp-restart-a-$tag)" = 1 ] && [ "$(submitted dp-restart-b-$tag)" = 1 ] || fail "a and b were not submitted once each"
state=$(squeue -h -n dp-restart-a-$tag -o %T)
echo "killing watch $pid with SIGKILL; dp-restart-a is $state"
kill -9 "$pid"; wait "$pid" 2> /dev/null || true; pid=
set +e
timeout 150 "$dp" watch state_restart.cfg --interval 1s --until-ready -v > watch2.log 2>&1
rc=$?
set -e
echo "--- first watch"; tail -5 watch1.log; echo "--- restarted watch: exit $rc"; tail -15 watch2.log
[ $rc = 0 ] || fail "the restarted watch exited $rc, expected 0"
grep -q "store entr" watch2.log || fail "the restarted watch loaded no store entry"
for j in a b after; do
  n=$(submitted dp-restart-$j-$tag)
  echo "dp-restart-$j: $n submission(s)"
  [ "$n" = 1 ] || fail "dp-restart-$j was submitted $n times, expected once"
done
[ "$(cat restart-after.txt)" = a ] || fail "restart-after.txt: $(cat restart-after.txt 2>&1)"
echo "ok: each Slurm job submitted once across a SIGKILL and a restart"
