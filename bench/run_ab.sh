#!/usr/bin/env bash
# A/B of two builds of the daggerpool command on one workflow file, rounds
# interleaved (A then B), for a noisy shared machine: per run the wall time,
# the process's CPU (GNU time), and the CPU of the two workers (cpu-clock
# samples at 10 kHz: the two busiest threads after the main one; needs perf).
#   bench/run_ab.sh A_BIN B_BIN FILE [ROUNDS] [-- EXTRA ARGS OF run]
# e.g. bench/run_ab.sh /tmp/main/build/release/bin/daggerpool \
#        build/release/bin/daggerpool large.cfg 7
# Prints one line per run, then the medians of each side.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bench/run_ab.sh A_BIN B_BIN FILE [ROUNDS] [-- ARGS]" >&2; exit 2; }
a=$1 b=$2 file=$3 rounds=${4:-5}
shift $(($# >= 4 ? 4 : 3))
[ "${1:-}" = -- ] && shift
command -v perf >/dev/null || { echo "run_ab: perf not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$rounds"); do
  for side in A B; do
    bin=$a; [ "$side" = B ] && bin=$b
    /usr/bin/time -f "%e %U %S" -o "$tmp/t" perf record -q -e cpu-clock -F 10000 -o "$tmp/p" -- \
      "$bin" run "$file" "$@" >/dev/null 2>"$tmp/err" || { echo "run_ab: $side failed:"; tail -3 "$tmp/err"; exit 1; }
    w=$(perf script -i "$tmp/p" -F tid 2>/dev/null | sort | uniq -c | sort -rn | awk 'NR==2||NR==3{s+=$1} END {printf "%.1f", s/10}')
    read -r wall u s < "$tmp/t"
    echo "$side wall_s $wall cpu_s $(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}') workers_ms $w" | tee -a "$tmp/all"
  done
done
for side in A B; do
  med() { awk -v s="$side" -v c="$1" '$1==s {print $c}' "$tmp/all" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
  echo "$side median: wall_s $(med 3) cpu_s $(med 5) workers_ms $(med 7)"
done
