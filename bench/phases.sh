#!/usr/bin/env bash
# Where one daggerpool command spends its time, phase by phase, without any
# timing code in the product: uprobes (perf probe) on the entry and return of
# the functions that start and end each phase, recorded by the kernel's
# tracing (a tracefs instance of its own) and read afterwards. Not perf
# record: on this VM a workload run under perf record takes twice as long
# (0.5 s -> 1.1 s for validate), even with no event but a dummy one.
# Needs perf (for perf probe) and root.
#   bench/phases.sh [BIN] -- validate FILE
#   bench/phases.sh build/bench/bin/daggerpool -- run FILE --json out.json
# Prints: libconfig's parse, reading the jobs out of its tree, config_destroy,
# the rest of the load (params, cycle check), the build (plugin batch, graph
# validate), the run, the summary, the JSON, writing it into place, freeing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bench/bin/daggerpool
if [ $# -gt 0 ] && [ "$1" != -- ]; then bin=$1; shift; fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: bench/phases.sh [BIN] -- validate|run FILE [options]" >&2; exit 2; }
command -v perf >/dev/null || { echo "phases: perf not found" >&2; exit 1; }
lc=$(ldconfig -p | awk '/libconfig\.so\.9 /{print $NF; exit}')
tmp=$(mktemp -d)
drop_probes() { perf probe -q -d 'dpphase:*' 2>/dev/null || true; perf probe -q -d 'dpphaselc:*' 2>/dev/null || true; }
trap 'drop_probes; rm -rf "$tmp"' EXIT
drop_probes
for f in cli_run cli_validate dp_workflow_load dp_workflow_build dp__plugins_batch_new dp__plugins_batch_free \
         dp_graph_validate dp_graph_run dp__render_summary dp__render_json dp_result_free; do
  perf probe -q -x "$bin" -a "dpphase:p_$f=$f" && perf probe -q -x "$bin" -a "dpphase:p_${f}_r=$f%return"
done
for f in config_read_file config_destroy; do
  perf probe -q -x "$lc" -a "dpphaselc:p_$f=$f" && perf probe -q -x "$lc" -a "dpphaselc:p_${f}_r=$f%return"
done
tr=/sys/kernel/tracing
[ -d $tr/instances ] || tr=/sys/kernel/debug/tracing
inst=$tr/instances/dpphase.$$
mkdir "$inst"
trap 'rmdir "$inst" 2>/dev/null; drop_probes; rm -rf "$tmp"' EXIT
echo mono > "$inst/trace_clock"
# One untraced run first (PHASES_WARMUP=0: none): what ran just before
# matters here. A run right after processes that freed 4 KiB pages (perf
# probe itself) gets huge pages the hypervisor has not backed yet, and
# zeroing them costs ~0.4 s more; runs back to back, as in
# large_workflow.sh's medians, reuse the last run's.
[ "${PHASES_WARMUP:-1}" = 0 ] || "$bin" "$@" >/dev/null 2>&1 || true
echo 1 > "$inst/events/dpphase/enable"
echo 1 > "$inst/events/dpphaselc/enable"
"$bin" "$@" >/dev/null 2>"$tmp/err" &
pid=$!
wait $pid || true
echo 0 > "$inst/events/dpphase/enable"
echo 0 > "$inst/events/dpphaselc/enable"
# "daggerpool-PID [CPU] FLAGS TIME: EVENT: (ADDR)": the main thread's only.
awk -v pid="$pid" '!/^#/ { n = split($1, a, "-"); if (a[n] != pid) next; t = ""; e = ""
    for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = $i; e = $(i + 1); break }
    if (t != "") print t, e }' "$inst/trace" | awk '
  { t = $1 + 0; e = $2; sub(/:$/, "", e); sub(/^([a-z]+:)?p_/, "", e); sub(/__return$/, "", e); sub(/_r$/, "_ret", e)
    if (!t0) t0 = t; t = (t - t0) * 1000
    # first occurrence after the previous mark (libconfig calls config_destroy inside its own init)
    if (e == "config_read_file") rf = t
    else if (e == "config_read_file_ret") rr = t
    else if (e == "config_destroy" && rr && !ds) ds = t
    else if (e == "config_destroy_ret" && ds && !dr) dr = t
    else if (e == "dp_workflow_load_ret") le = t
    else if (e == "dp_workflow_build") bs = t
    else if (e == "dp_workflow_build_ret") be = t
    else if (e == "dp__plugins_batch_new") bn = t
    else if (e == "dp__plugins_batch_free") bf = t
    else if (e == "dp_graph_run") rs = t
    else if (e == "dp_graph_run_ret") re = t
    else if (e == "dp__render_summary") ss = t
    else if (e == "dp__render_summary_ret") se = t
    else if (e == "dp__render_json") js = t
    else if (e == "dp__render_json_ret") je = t
    else if (e == "dp_result_free") fr = t
    else if (e == "cli_run_ret" || e == "cli_validate_ret") end = t
  }
  function row(name, ms) { printf "  %-34s %8.1f ms\n", name, ms }
  END {
    row("start to the parse", rf)
    row("libconfig config_read_file", rr - rf)
    row("jobs read out of the tree", ds - rr)
    row("libconfig config_destroy", dr - ds)
    row("empty params, cycle check", le - dr)
    row("dp_workflow_build", be - bs)
    row("  of which the plugin batch", bf - bn)
    if (rs) {
      row("dp_graph_run", re - rs)
      row("summary", se - ss)
      if (js) { row("JSON", je - js); row("JSON file into place", fr - je) }
      row("frees until exit", end - fr)
    } else row("frees until exit", end - be)
    row("total (main, without exit)", end)
  }'
