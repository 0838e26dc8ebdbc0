#!/usr/bin/env bash
# begin-test.sh DAGGERPOOL - slurm.batch on a job pending until a known time
# (sbatch --begin, squeue reason BeginTime): the plugin suggests looking
# again then (ABI 1.2 retry_after), so the readiness poll probes once instead
# of every second, and the not-ready run's requeue hint is the time left
# (not the 1 s period). Against the cluster named by SLURM_CONF.
set -euo pipefail
dp=$1
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${SLURM_CONF:-}" ] || { echo "SLURM_CONF is not set: start a cluster with tests/slurm/cluster-up.sh" >&2; exit 1; }
work=$(dirname "$SLURM_CONF")/work/workflow-begin
rm -rf "$work"; mkdir -p "$work"; cd "$work"
trap 'scancel -n dp-wf-begin 2>/dev/null || true' EXIT
fail() { echo "FAIL (begin): $*" >&2; exit 1; }
json() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
set +e
"$dp" run "$here/begin.cfg" --json - -vv >result.json 2>run.log
rc=$?
set -e
cat run.log result.json
[ $rc = 3 ] || fail "exit status $rc, expected 3 (not ready)"
[ "$(json result.json "r['jobs']['later']['status']")" = not_ready ] || fail "later is not not_ready"
rq=$(json result.json "r['requeue_after_ms']")
ra=$(json result.json "r['jobs']['later'].get('retry_after_ms', -1)")
[ "$rq" -ge 90000 ] && [ "$rq" -le 121000 ] || fail "requeue_after_ms $rq, expected what is left of 120 s"
[ "$ra" -ge 100000 ] && [ "$ra" -le 121000 ] || fail "retry_after_ms $ra, expected ~120 s"
# One probe: the suggestion outlasts the readiness timeout.
n=$(grep -c "is PENDING (reason BeginTime)" run.log || true)
[ "$n" = 1 ] || fail "probed $n times, expected once"
echo "PASS (begin)"
