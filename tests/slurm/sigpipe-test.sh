#!/bin/sh
# sigpipe-test.sh DAGGERPOOL - the Slurm clients run with SIGPIPE ignored, so
# that a client whose connection a busy controller drops sees EPIPE and
# retries (as Slurm's clients do) instead of dying of the signal: on a fresh
# machine, 1 000 submissions at once had "sbatch was killed by signal 13".
# No cluster needed: a fake sbatch on PATH sends itself SIGPIPE and then
# prints its job id; a fake squeue fails, so the job stays not ready.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_slurm_sigpipe.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin"
printf '#!/bin/sh\nkill -PIPE $$\necho 42\n' > "$WORK/bin/sbatch"
printf '#!/bin/sh\necho "squeue: fake: no controller" >&2\nexit 1\n' > "$WORK/bin/squeue"
chmod +x "$WORK/bin/sbatch" "$WORK/bin/squeue"
for t in env sh; do ln -s "$(command -v $t)" "$WORK/bin/$t"; done
cat > "$WORK/wf.cfg" <<'CFG'
workflow = { name = "sigpipe"; timeout = "3s"; };
jobs = ( { name = "s"; type = "slurm.batch"; params = { wrap = "true"; }; } );
CFG
PATH="$WORK/bin" "$DP" run -q --no-state "$WORK/wf.cfg" --json "$WORK/r.json" >/dev/null 2>"$WORK/err"
status=$(sed -n 's/.*"status": "\([a-z_]*\)".*/\1/p' "$WORK/r.json" | head -1)
if grep -q "signal 13" "$WORK/r.json" "$WORK/err" || [ "$status" != not_ready ]; then
  echo "FAIL: the fake sbatch died of SIGPIPE or the job did not get past it (status '$status'):"
  cat "$WORK/err" "$WORK/r.json"
  exit 1
fi
echo "ok: sbatch ran with SIGPIPE ignored (the job got its id and waits, not ready)"
