#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang and runs them, bounded
# and reproducible.
#
#   tests/fuzz/fuzz.sh build [--build-dir DIR] [--cc CLANG]
#   tests/fuzz/fuzz.sh run TARGET [--build-dir DIR] [--seed N] [--runs N] [--time S] [--fresh]
#   tests/fuzz/fuzz.sh all [run options]          build, then run every target
#   tests/fuzz/fuzz.sh replay TARGET FILE... [--build-dir DIR]   run inputs once
#
# TARGET is duration, params, isowire or workflow. The build is a separate
# CMake configure of tests/fuzz (its CMakeLists.txt compiles the library again
# with -fsanitize=fuzzer-no-link,address,undefined), default dir build/fuzz.
# A run starts from the seed corpus (tests/fuzz/corpus/TARGET, plus conf/ for
# the workflow loader) and the kept crash inputs (tests/fuzz/regressions/),
# grows a working corpus in DIR/corpus/TARGET (emptied first with --fresh),
# and stops after --runs executions or --time seconds, whichever comes first.
#   --seed N   libFuzzer's random seed (default 1: the same mutations every
#              time; 0 = a new one, printed)
#   --runs N   executions (default per target, ~10 s on a 2-core machine:
#              duration 500000, params 100000, isowire 300000, workflow 3000;
#              0 = no bound)
#   --time S   seconds (default 600; a cap: a run cut by it did fewer runs)
#   --fresh    start from an empty working corpus
# With the same build, seed, runs and a fresh working corpus a run does the
# same executions again: each run prints the one command that replays it.
# A crash leaves its input in DIR/artifacts/ and fails the run: fix the bug,
# then copy the input to tests/fuzz/regressions/TARGET/ so the normal test
# suite replays it on every build. The sanitizer environment (symbolizer,
# the libconfig leak suppression) is sanitizer-env.sh's.
# Exit: 0 ok, 1 a crash or a build failure, 2 bad usage, 77 skipped (no
# clang/libFuzzer, or the target not built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/fuzz/sanitizer-env.sh
. "$here/sanitizer-env.sh"

usage() { sed -n '2,33p' "$0" >&2; exit 2; }
cmd=${1:-}
shift || true
target=
files=()
case $cmd in
  run | replay)
    [ $# -gt 0 ] || usage
    target=$1
    shift
    [ -f "$here/fuzz_$target.c" ] || { echo "fuzz.sh: no target '$target' (no tests/fuzz/fuzz_$target.c)" >&2; exit 2; }
    ;;
  build | all) ;;
  *) usage ;;
esac
dir=$root/build/fuzz
cc=${CC_FUZZ:-clang}
seed=1
runs=
time=600
fresh=0
while (($#)); do
  case $1 in
    --build-dir) dir=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --time) time=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) [ "$cmd" = replay ] || { echo "fuzz.sh: unexpected argument $1" >&2; exit 2; }
       files+=("$1"); shift ;;
  esac
done
for n in "$seed" "$time" ${runs:+"$runs"}; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "fuzz.sh: '$n' is not a non-negative integer" >&2; exit 2; }
done
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

build() {
  if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found; skipping (install clang to fuzz)" >&2
    exit 77
  fi
  # libFuzzer ships with clang's runtime; some installs lack it.
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
    > "$dir/probe.c"
  if ! "$cc" -fsanitize=fuzzer "$dir/probe.c" -o "$dir/probe" 2>/dev/null; then
    echo "fuzz.sh: $cc cannot link -fsanitize=fuzzer (libFuzzer missing); skipping" >&2
    exit 77
  fi
  # The fuzz build must not inherit the project's sanitizer or compiler cache.
  env -u CFLAGS -u LDFLAGS cmake -S "$here" -B "$dir" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log" >&2; exit 1; }
  cmake --build "$dir" -j "${FUZZ_JOBS:-2}"
}

# The options every execution of a target gets (runs and replays alike), in topts.
target_options() {
  case $1 in
    workflow) topts=(-max_len=16384 "-dict=$here/workflow.dict") ;;
    params | isowire) topts=(-max_len=4096) ;;
    duration) topts=(-max_len=128) ;;
    *) topts=() ;;
  esac
}
default_runs() {
  case $1 in
    duration) echo 500000 ;;
    params) echo 100000 ;;
    isowire) echo 300000 ;;
    *) echo 3000 ;;
  esac
}

binary() {
  local bin=$dir/fuzz_$1
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: $bin not built (run: tests/fuzz/fuzz.sh build --build-dir $dir)" >&2
    exit 77
  fi
  echo "$bin"
}

sanitizer_env() {
  fuzz_sanitizer_env "$cc" || exit 2
  echo "fuzz.sh: symbolizer: $FUZZ_SYMBOLIZER; leak suppressions: $(basename "$FUZZ_SUPP")"
}

# Address space layout randomisation off: some targets' paths depend on
# addresses (pointer values reach comparisons), and the same seed must give
# the same executions. In norand (an array): the prefix that does it.
no_aslr() {
  norand=(setarch "$(uname -m)" -R)
  if ! "${norand[@]}" true 2>/dev/null; then
    echo "fuzz.sh: note: cannot turn address randomisation off here (setarch -R failed);" \
      "a replay may take other paths" >&2
    norand=()
  fi
}

# The command that does this run again, from the top of the checkout.
replay_command() {   # replay_command SEED RUNS
  local c="tests/fuzz/fuzz.sh run $target --seed $1 --runs $2 --time $time --fresh"
  # Relative to the checkout when inside it: the line works in any clone.
  [ "$dir" = "$root/build/fuzz" ] || c+=" --build-dir ${dir#"$root"/}"
  echo "$c"
}

run() {
  local t=$1 bin work seeds=() topts norand log rc
  bin=$(binary "$t")
  target=$t
  [ -n "$runs" ] || runs=$(default_runs "$t")
  work=$dir/corpus/$t
  [ $fresh = 1 ] && rm -rf "$work"
  mkdir -p "$work" "$dir/artifacts"
  local empty=0
  [ -z "$(ls -A "$work")" ] && empty=1
  [ -d "$here/corpus/$t" ] && seeds+=("$here/corpus/$t")
  [ -d "$here/regressions/$t" ] && seeds+=("$here/regressions/$t")
  if [ "$t" = workflow ]; then
    rm -rf "$dir/seeds/workflow"
    mkdir -p "$dir/seeds/workflow"
    if compgen -G "$root/conf/*.cfg" >/dev/null; then
      cp "$root"/conf/*.cfg "$dir/seeds/workflow/"
    fi
    seeds+=("$dir/seeds/workflow")
  fi
  target_options "$t"
  log=$dir/fuzz_$t.log
  local runs_arg=$runs
  [ "$runs" = 0 ] && runs_arg=-1
  sanitizer_env
  no_aslr
  echo "fuzz.sh: $t: seed $seed, $([ "$runs" = 0 ] && echo 'no bound on runs' || echo "at most $runs runs"), at most ${time}s, corpus $work$([ $empty = 1 ] && echo ' (empty at start)')"
  set +e
  "${norand[@]}" "$bin" -seed="$seed" -runs="$runs_arg" -max_total_time="$time" -reload=0 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "${topts[@]}" \
    "$work" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  # The last progress line carries executions, coverage and corpus size.
  grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  # What libFuzzer used (a --seed 0 run draws one), and how far it got.
  local used_seed done_runs replay
  used_seed=$(sed -n 's/^INFO: Seed: \([0-9]*\)$/\1/p' "$log" | head -n 1)
  done_runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)$/\1/p' "$log" | tail -n 1)
  if [ $empty = 0 ]; then
    replay="none: the working corpus $work was not empty at the start (--fresh makes a run replayable)"
  elif [ $rc -ne 0 ] && [ "$runs" != 0 ]; then
    replay=$(replay_command "${used_seed:-$seed}" "$runs")   # it stops at the crash
  else
    replay=$(replay_command "${used_seed:-$seed}" "${done_runs:-$runs}")
  fi
  if [ $rc -eq 0 ] && [ "$runs" != 0 ] && [ -n "$done_runs" ] && [ "$done_runs" -lt "$runs" ]; then
    echo "fuzz.sh: $t: cut by the ${time}s cap after $done_runs of $runs runs"
  fi
  echo "fuzz.sh: $t: replay: $replay"
  if [ $rc -ne 0 ]; then
    echo "fuzz.sh: $t FAILED (exit $rc); log $log" >&2
    tail -n 60 "$log" >&2
    local a opt=
    [ "$dir" = "$root/build/fuzz" ] || opt=" --build-dir ${dir#"$root"/}"
    sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | while IFS= read -r a; do
      echo "fuzz.sh: $t: the input: $a; run it alone: tests/fuzz/fuzz.sh replay $t $a$opt" >&2
    done
    echo "fuzz.sh: $t: replay: $replay" >&2
    exit 1
  fi
}

replay() {
  local bin topts norand
  bin=$(binary "$target")
  [ ${#files[@]} -gt 0 ] || { echo "fuzz.sh: replay $target needs input files" >&2; exit 2; }
  target_options "$target"
  sanitizer_env
  no_aslr
  exec "${norand[@]}" "$bin" -error_exitcode=1 -timeout=10 -rss_limit_mb=2048 "${topts[@]}" "${files[@]}"
}

case $cmd in
  build) build ;;
  run) run "$target" ;;
  replay) replay ;;
  all)
    build
    given_runs=$runs
    for src in "$here"/fuzz_*.c; do
      t=$(basename "$src" .c)
      runs=$given_runs
      run "${t#fuzz_}"
    done
    ;;
esac
