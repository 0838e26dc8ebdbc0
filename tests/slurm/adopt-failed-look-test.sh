#!/bin/sh
# adopt-failed-look-test.sh DAGGERPOOL - a job whose Slurm job was submitted
# by an earlier run is adopted even when the look that should confirm it
# fails (squeue timed out against a busy controller): it is neither failed
# (with fail-fast that cancelled every job adopted beside it, and the next
# run submitted them all again: slurm.scale.restart on a loaded machine) nor
# submitted again; check looks again and finds it COMPLETED.
# No cluster needed: fake clients on PATH. sbatch counts its calls; squeue
# fails while the file "squeue-fails" exists, else shows job 42 in the
# state the file "state" holds.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_slurm_adopt.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin"
cat > "$WORK/bin/sbatch" <<SH
#!/bin/sh
echo x >> "$WORK/sbatch-calls"
echo 42
SH
cat > "$WORK/bin/squeue" <<SH
#!/bin/sh
if [ -e "$WORK/squeue-fails" ]; then
  rm -f "$WORK/squeue-fails"
  echo "squeue: error: slurm_load_jobs: Socket timed out on send/recv operation" >&2
  exit 1
fi
read state < "$WORK/state"
echo "42|\$state|None|N/A"
SH
printf '#!/bin/sh\necho "sacct: error: Slurm accounting storage is disabled" >&2\nexit 1\n' > "$WORK/bin/sacct"
chmod +x "$WORK/bin/sbatch" "$WORK/bin/squeue" "$WORK/bin/sacct"
for t in env sh rm; do ln -s "$(command -v $t)" "$WORK/bin/$t"; done
# wf TIMEOUT: the workflow, one job whose readiness wait gives up after
# TIMEOUT (the job is left running, as a watch's run leaves it).
wf() {
  cat > "$WORK/wf.cfg" <<CFG
workflow = { name = "adopt"; timeout = "30s"; };
defaults = { readiness = { period = "200ms"; timeout = "$1"; }; };
jobs = ( { name = "s"; type = "slurm.batch"; params = { wrap = "true"; }; } );
CFG
}
run() {
  PATH="$WORK/bin" "$DP" run -v --state "$WORK/state.db" "$WORK/wf.cfg" --json "$WORK/r.json" >/dev/null 2>"$WORK/err"
}
fail() { echo "FAIL: $*"; cat "$WORK/err" "$WORK/r.json" 2>/dev/null; exit 1; }

# Run 1: submits job 42, which stays RUNNING: the run ends not ready.
wf 1s
echo RUNNING > "$WORK/state"
run
grep -q "submitted Slurm job 42" "$WORK/err" || fail "run 1 submitted no job"
# Run 2: the first look fails, the next one sees the job COMPLETED.
wf 15s
echo COMPLETED > "$WORK/state"
: > "$WORK/squeue-fails"
run
rc=$?
[ -e "$WORK/squeue-fails" ] && fail "run 2 never looked at Slurm"
calls=$(wc -l < "$WORK/sbatch-calls")
[ "$calls" = 1 ] || fail "sbatch called $calls times, expected once (run 2 submitted again)"
[ "$rc" = 0 ] || fail "run 2 exited $rc, expected 0 (the adopted job completed)"
grep -q "adopting Slurm job 42" "$WORK/err" || fail "run 2 did not say it adopted job 42 despite the failed look"
echo "ok: a failed look adopts the earlier Slurm job (one sbatch in two runs; run 2 succeeded)"
