#!/usr/bin/env bash
# compare_outputs.sh OLD_BIN NEW_BIN [WORKFLOW...] - runs each workflow with
# two builds of the daggerpool command (-j 1, so the order is the same) and compares every output (summary,
# JSON result, trace, DOT, Mermaid, JSON log lines) byte for byte, with the
# numbers that are times masked. For changes that must not change output
# (issue 14's reshaping); not part of the suite, since it needs two builds.
#   tests/results/compare_outputs.sh /tmp/old/bin/daggerpool build/dev/bin/daggerpool conf/*.cfg
set -uo pipefail
old=$1 new=$2
shift 2
[ $# -gt 0 ] || set -- conf/seed.cfg conf/realistic.cfg conf/keep-going.cfg
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mask() {
  sed -E 's/"(start_ms|duration_ms|ts|dur|time)": ?("[^"]*"|[0-9]+)/"\1":T/g;
          s/ *\b[0-9]+(\.[0-9]+)?(ms|s|m|h)\b/ DUR/g; s/ in [0-9]+ ms/ in DUR/g;
          s/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/TIME/g' "$1"
}
status=0
for wf in "$@"; do
  for which in old new; do
    bin=${!which}
    d=$tmp/$which
    mkdir -p "$d"
    "$bin" run -j 1 "$wf" --json "$d/r.json" --trace "$d/t.json" --log-format json -v > "$d/summary" 2> "$d/log"
    echo "exit $?" >> "$d/summary"
    "$bin" graph "$wf" --result "$d/r.json" > "$d/dot" 2>&1
    "$bin" graph "$wf" --format mermaid --result "$d/r.json" > "$d/mermaid" 2>&1
    "$bin" validate "$wf" > "$d/validate" 2>&1
  done
  for f in summary r.json t.json log dot mermaid validate; do
    if ! cmp -s <(mask "$tmp/old/$f") <(mask "$tmp/new/$f"); then
      echo "DIFFERENT: $wf $f"
      diff <(mask "$tmp/old/$f") <(mask "$tmp/new/$f") | head -10
      status=1
    fi
  done
  echo "compared: $wf"
done
exit $status
