#!/usr/bin/env bash
# Runs one build's daggerpool command on every conf/ workflow and on the
# benchmark workflow (bench/gen_workflow, core.noop), and writes what it
# printed with the timings masked, so that two builds compare with diff -r:
#   scripts/compare-outputs.sh BUILD OUTDIR [N]
#   scripts/compare-outputs.sh build/dev /tmp/after && diff -r /tmp/before /tmp/after
# BUILD: a build tree with bin/daggerpool and its plugins (any preset, or
# build/bench); N: jobs in the benchmark workflow (default 100000; needs
# bin/gen_workflow, else that workflow is left out).
#
# Per workflow: `run` (summary on stdout, log on stderr, exit code),
# `--json` (start_ms, duration_ms and the run's duration_ms masked),
# `--trace` (one line per event; ts, dur and the worker track masked, lines
# sorted: which worker ran a job and in what order concurrent jobs were
# written vary from run to run), `validate`, `graph` as DOT and Mermaid, and
# `graph --result` of the run's JSON. Timings in the summary and the log
# ("203ms", "0.201s", "in 1.2s") are masked; column padding is squeezed.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/compare-outputs.sh BUILD OUTDIR [N]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=$2
n=${3:-100000}
dp=$build/bin/daggerpool
[ -x "$dp" ] || { echo "compare-outputs: $dp not built" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Durations as the command prints them (1h2m3s, 1.5s, 203ms, 0.201s) -> D.
mask_text() {
  sed -E "s#$tmp#TMP#g" | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/T/g;
          s/[0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns)([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))*\b/D/g;
          s/\b[0-9]+ ms\b/D/g; s/ +/ /g'
}

# With several workers the order of concurrent lines, and the progress
# counter of each ("[3/5]"), vary from run to run: sorted, counter masked.
unorder() {
  if [ "$1" = 1 ]; then cat; else sed -E 's#^\[[0-9]+/#[C/#' | LC_ALL=C sort; fi
}

mask_json() {
  python3 - "$1" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
d["duration_ms"] = "D"
for j in d.get("jobs", {}).values():
    for k in ("start_ms", "duration_ms"):
        if k in j:
            j[k] = "D"
print(json.dumps(d, indent=2, sort_keys=False))
EOF
}

mask_trace() {
  python3 - "$1" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
lines = []
for e in d["traceEvents"]:
    for k in ("ts", "dur", "tid"):
        if k in e:
            e[k] = "D"
    lines.append(json.dumps(e, sort_keys=True))
print("keys: " + " ".join(sorted(k for k in d if k != "traceEvents")))
for l in sorted(lines):
    print(l)
EOF
}

one() { # NAME ORDERED(1|0) CFG [run options...]
  local name=$1 ordered=$2 cfg=$3; shift 3
  local o=$out/$name
  mkdir -p "$o"
  set +e
  "$dp" run "$cfg" --json "$tmp/r.json" --trace "$tmp/t.json" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  echo "exit $?" >"$o/run.exit"
  "$dp" validate "$cfg" >"$tmp/v.out" 2>&1
  echo "exit $?" >>"$tmp/v.out"
  "$dp" graph "$cfg" >"$o/graph.dot" 2>&1
  "$dp" graph "$cfg" --format mermaid >"$o/graph.mmd" 2>&1
  set -e
  mask_text <"$tmp/stdout" >"$o/run.stdout"
  mask_text <"$tmp/stderr" | unorder "$ordered" >"$o/run.stderr"
  mask_text <"$tmp/v.out" >"$o/validate.out"
  if [ -s "$tmp/r.json" ]; then
    mask_json "$tmp/r.json" >"$o/run.json"
    "$dp" graph "$cfg" --result "$tmp/r.json" >"$o/graph-result.dot" 2>&1 || true
  fi
  [ -s "$tmp/t.json" ] && mask_trace "$tmp/t.json" >"$o/run.trace"
  rm -f "$tmp/r.json" "$tmp/t.json"
}

for cfg in "$root"/conf/*.cfg; do
  one "$(basename "$cfg" .cfg)" 0 "$cfg"
done
# The same workflows on one worker: the order of the log lines is then fixed.
for cfg in "$root"/conf/*.cfg; do
  one "$(basename "$cfg" .cfg)-j1" 1 "$cfg" -j 1
done
if [ -x "$build/bin/gen_workflow" ]; then
  "$build/bin/gen_workflow" -n "$n" >"$tmp/large.cfg"
  one large 0 "$tmp/large.cfg"
else
  echo "compare-outputs: no $build/bin/gen_workflow: the benchmark workflow is left out" >&2
fi
echo "compare-outputs: $out"
