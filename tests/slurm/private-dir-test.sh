#!/usr/bin/env bash
# private-dir-test.sh - cluster-up.sh DIR with DIR under a directory only
# root can enter, as a checkout in /root (mode 0700) is: the cluster starts,
# runs jobs as root and as another user, and cluster-down.sh DIR stops it and
# removes its runtime dir. A runtime parent the munge user cannot reach is
# refused with the reason, leaving nothing behind. Runs next to the fixture's
# cluster (SLURM_CONF), which must still answer at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -n "${SLURM_CONF:-}" ] || fail "SLURM_CONF is not set: the slurm_cluster fixture must be up"
fixture_conf=$SLURM_CONF
PATH=$PATH:/usr/sbin:/sbin

tmp=$(mktemp -d)   # mode 0700, owned by root: like /root
chmod 0700 "$tmp"
cleanup() {
    "$here/cluster-down.sh" "$tmp/refused" >/dev/null 2>&1 || true
    "$here/cluster-down.sh" "$tmp/c" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. A runtime parent the munge user cannot enter: refused, with the reason.
set +e
out=$(DP_SLURM_RUNTIME_PARENT=$tmp "$here/cluster-up.sh" "$tmp/refused" 2>&1)
rc=$?
set -e
echo "--- cluster-up.sh with DP_SLURM_RUNTIME_PARENT=$tmp: exit $rc"; echo "$out"
[ $rc != 0 ] || fail "cluster-up.sh accepted a runtime parent the munge user cannot reach"
grep -q "the munge user cannot reach $tmp/dp-slurm\.[^/]*/munge: $tmp is drwx------" <<<"$out" ||
    fail "the refusal does not say which directory the munge user cannot enter"
grep -q 'DP_SLURM_RUNTIME_PARENT' <<<"$out" || fail "the refusal does not say what to do"
left=$(find "$tmp" -maxdepth 1 -name 'dp-slurm.*')
[ -z "$left" ] || fail "the refused start left its runtime dir: $left"
[ ! -e "$tmp/refused/runtime" ] || fail "the refused start left $tmp/refused/runtime"

# 2. DIR under the private directory: starts, and runs jobs.
out=$("$here/cluster-up.sh" "$tmp/c")
echo "$out"
[ "$(tail -n 1 <<<"$out")" = "export SLURM_CONF=$tmp/c/slurm.conf" ] || fail "no export line"
export SLURM_CONF=$tmp/c/slurm.conf
rt=$(cat "$tmp/c/runtime")
[ -d "$rt" ] || fail "runtime dir $rt missing"
[ "$(stat -c %a "$tmp")" = 700 ] || fail "cluster-up.sh changed the mode of $tmp"
mkdir -p "$tmp/c/work"
(cd "$tmp/c/work" && sbatch --wait -J dp-private -o private.out --wrap 'echo ran as $(id -un)') ||
    fail "a job as root did not complete"
[ "$(cat "$tmp/c/work/private.out")" = "ran as root" ] || fail "private.out: $(cat "$tmp/c/work/private.out" 2>&1)"
# Another user's job runs its script from the spool: the runtime dir must be
# reachable for it, although DIR is not.
sbatch --wait -J dp-private-nobody --uid=nobody --gid="$(id -g nobody)" --chdir=/ -o /dev/null \
    --wrap 'test "$(id -un)" = nobody' || fail "a job as user nobody did not complete"

# 3. cluster-down.sh: everything stopped, the runtime dir removed.
"$here/cluster-down.sh" "$tmp/c" || fail "cluster-down.sh failed"
[ ! -e "$rt" ] || fail "cluster-down.sh left the runtime dir $rt"
[ ! -e "$tmp/c/runtime" ] || fail "cluster-down.sh left $tmp/c/runtime"
[ -s "$tmp/c/log/munged.log" ] || fail "munged.log was not kept in $tmp/c/log"
for d in /proc/[0-9]*; do
    cmd=$( { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null) || continue
    case $cmd in
        *"$rt"* | *"$tmp/c/"*) fail "process ${d#/proc/} of the stopped cluster still runs: $cmd" ;;
    esac
done

# The fixture's cluster, started the same way, still answers.
SLURM_CONF=$fixture_conf scontrol ping >/dev/null || fail "the fixture's cluster stopped answering"
echo PASS
