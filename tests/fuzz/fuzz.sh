#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang and runs them, bounded.
#
#   tests/fuzz/fuzz.sh build [--build-dir DIR] [--cc CLANG]
#   tests/fuzz/fuzz.sh run TARGET [--build-dir DIR] [--time SECONDS] [--runs N]
#   tests/fuzz/fuzz.sh all [--time SECONDS]        build, then run every target
#
# TARGET is duration, params or workflow. The build is a separate CMake
# configure of tests/fuzz (its CMakeLists.txt compiles the library again with
# -fsanitize=fuzzer-no-link,address,undefined), default dir build/fuzz.
# A run starts from the seed corpus (tests/fuzz/corpus/TARGET, plus conf/ for
# the workflow loader) and the kept crash inputs (tests/fuzz/regressions/),
# grows a working corpus in DIR/corpus/TARGET, and stops after --time seconds
# (default 20) or --runs executions (default 5,000,000), whichever is first.
# A crash leaves its input in DIR/artifacts/ and fails the run: fix the bug,
# then copy the input to tests/fuzz/regressions/TARGET/ so the normal test
# suite replays it on every build.
# Exit: 0 ok, 1 a crash or a build failure, 77 skipped (no clang/libFuzzer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

cmd=${1:-}
shift || true
target=
if [ "$cmd" = run ]; then
  target=${1:?fuzz.sh run TARGET}
  shift
fi
dir=$root/build/fuzz
cc=${CC_FUZZ:-clang}
time=20
runs=5000000
while (($#)); do
  case $1 in
    --build-dir) dir=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --time) time=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

build() {
  if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found; skipping (install clang to fuzz)" >&2
    exit 77
  fi
  mkdir -p "$dir"
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

run() {
  local t=$1 bin=$dir/fuzz_$1
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: $bin not built (run: fuzz.sh build --build-dir $dir)" >&2
    exit 77
  fi
  local work=$dir/corpus/$t seeds=()
  mkdir -p "$work" "$dir/artifacts"
  [ -d "$here/corpus/$t" ] && seeds+=("$here/corpus/$t")
  [ -d "$here/regressions/$t" ] && seeds+=("$here/regressions/$t")
  local extra=()
  case $t in
    workflow)
      mkdir -p "$dir/seeds/workflow"
      if compgen -G "$root/conf/*.cfg" >/dev/null; then
        cp "$root"/conf/*.cfg "$dir/seeds/workflow/"
      fi
      seeds+=("$dir/seeds/workflow")
      extra+=(-max_len=16384 -dict="$here/workflow.dict")
      ;;
    params | isowire) extra+=(-max_len=4096) ;;
    duration) extra+=(-max_len=128) ;;
  esac
  local log=$dir/fuzz_$t.log
  echo "fuzz.sh: $t for ${time}s (at most $runs runs), corpus $work"
  set +e
  ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions=$here/lsan.supp:print_suppressions=0 \
    "$bin" -max_total_time="$time" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "${extra[@]}" \
    "$work" "${seeds[@]}" >"$log" 2>&1
  local rc=$?
  set -e
  # The last progress line carries executions, coverage and corpus size.
  grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  if [ $rc -ne 0 ]; then
    echo "fuzz.sh: $t FAILED (exit $rc); log $log" >&2
    tail -n 60 "$log" >&2
    ls -1 "$dir"/artifacts/"$t"-* 2>/dev/null >&2 || true
    exit 1
  fi
}

case $cmd in
  build) build ;;
  run) run "$target" ;;
  all)
    build
    for src in "$here"/fuzz_*.c; do
      t=$(basename "$src" .c)
      run "${t#fuzz_}"
    done
    ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
