#!/bin/sh
# slow-look-test.sh DAGGERPOOL - a status look that outlasts the readiness
# probe's probe_timeout (squeue slow under a busy controller) is cut short
# before the probe ends and counts as one failed look: the checks that
# waited for it are not ready and look again. Before, the probes timed out
# waiting for it, which failed the jobs (and, seen as a cancellation,
# scancelled their Slurm jobs): with fail-fast the whole run.
# No cluster needed: fake clients on PATH. sbatch hands out its pid as the job id;
# squeue sleeps once, as many seconds as the file "slow" says (and removes
# it), else shows every job asked about COMPLETED; scancel records its calls.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_slurm_slowlook.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin"
cat > "$WORK/bin/sbatch" <<SH
#!/bin/sh
echo x >> "$WORK/sbatch-calls"
echo \$\$
SH
cat > "$WORK/bin/squeue" <<SH
#!/bin/sh
if [ -e "$WORK/slow" ]; then
  read secs < "$WORK/slow"
  rm -f "$WORK/slow"
  echo x >> "$WORK/slow-looks"
  sleep \$secs
fi
for a in "\$@"; do ids=\$a; done
echo "\$ids" | tr ',' '\n' | while read id; do echo "\$id|COMPLETED|None|N/A"; done
SH
cat > "$WORK/bin/scancel" <<SH
#!/bin/sh
echo "\$*" >> "$WORK/scancel-calls"
SH
printf '#!/bin/sh\necho "sacct: error: Slurm accounting storage is disabled" >&2\nexit 1\n' > "$WORK/bin/sacct"
chmod +x "$WORK/bin/sbatch" "$WORK/bin/squeue" "$WORK/bin/scancel" "$WORK/bin/sacct"
for t in env sh rm sleep tr wc; do ln -s "$(command -v $t)" "$WORK/bin/$t"; done
cat > "$WORK/wf.cfg" <<CFG
workflow = { name = "slowlook"; timeout = "40s"; };
defaults = { readiness = { period = "300ms"; probe_timeout = "1500ms"; timeout = "30s"; }; };
jobs = (
  { name = "a"; type = "slurm.batch"; params = { wrap = "true"; }; },
  { name = "b"; type = "slurm.batch"; params = { wrap = "true"; }; },
  { name = "c"; type = "slurm.batch"; params = { wrap = "true"; }; },
  { name = "d"; type = "slurm.batch"; params = { wrap = "true"; }; }
);
CFG
fail() { echo "FAIL: $*"; cat "$WORK/err" "$WORK/r.json" 2>/dev/null; exit 1; }
run() {
  rm -f "$WORK/slow-looks" "$WORK/sbatch-calls" "$WORK/scancel-calls"
  echo "$1" > "$WORK/slow"
  PATH="$WORK/bin" "$DP" run -v --no-state "$WORK/wf.cfg" --json "$WORK/r.json" >/dev/null 2>"$WORK/err"
  rc=$?
  [ -e "$WORK/slow-looks" ] || fail "no look was slow: the test did not test anything"
  [ "$rc" = 0 ] || fail "exited $rc, expected 0: the slow look failed the jobs"
  [ -e "$WORK/scancel-calls" ] && fail "scancel was called: $(cat "$WORK/scancel-calls")"
  calls=$(wc -l < "$WORK/sbatch-calls")
  [ "$calls" = "$2" ] || fail "sbatch called $calls times, expected $2"
}

# The look made by a check outlasts that check's probe: cut short, one
# failed look for every check that waited for it.
run 5 4
grep -q "did not answer within the time left to this call (a readiness probe's probe_timeout" "$WORK/err" ||
  fail "no warning said the look was cut short by the probe's time"
echo "ok: a look slower than probe_timeout is one failed look; the jobs looked again and completed"

