#!/usr/bin/env bash
# leak-test.sh BUILD_DIR CC - the libFuzzer runs' leak suppression works with
# every kind of symbolizer a machine may have, and hides nothing else.
#
# For each of: the symbolizer fuzz.sh finds by itself, llvm-symbolizer,
# addr2line, and none at all (sanitizer-env.sh; DP_FUZZ_SYMBOLIZER forces
# each), under exactly the environment of the fuzz runs:
#   - fuzz_workflow replays the file `""` (libconfig 1.5's leak): passes;
#   - leak_probe libconfig (the same leak, alone): passes;
#   - leak_probe ours (a block of ours, lost): reported;
#   - leak_probe nodestroy (a config never destroyed): reported whenever a
#     symbolizer names the frames (without one, only the module can be
#     matched: lsan-nosymbolizer.supp says so).
# Exit 77 (skipped) when the fuzz build is missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?leak-test.sh BUILD_DIR CC}
cc=${2:?leak-test.sh BUILD_DIR CC}
# shellcheck source=tests/fuzz/sanitizer-env.sh
. "$here/sanitizer-env.sh"
for b in fuzz_workflow leak_probe; do
  [ -x "$dir/$b" ] || { echo "SKIP: $dir/$b not built (fuzz.build)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '""' >"$tmp/empty-string.cfg"
saved_asan=${ASAN_OPTIONS:-} saved_lsan=${LSAN_OPTIONS:-} saved_sym=${ASAN_SYMBOLIZER_PATH-unset}

failures=0
fail() { echo "FAIL ($mode): $*" >&2; failures=$((failures + 1)); }
# check EXPECT NAME CMD...: EXPECT is pass or leak.
check() {
  local expect=$1 name=$2 rc
  shift 2
  "$@" >"$tmp/out" 2>&1
  rc=$?
  if [ "$expect" = pass ] && [ $rc != 0 ]; then
    fail "$name: exit $rc, expected a pass (the leak suppressed):"; tail -n 25 "$tmp/out" >&2
  elif [ "$expect" = leak ] && ! grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$tmp/out"; then
    fail "$name: exit $rc and no leak reported, expected one:"; tail -n 25 "$tmp/out" >&2
  else
    echo "ok ($mode): $name: $( [ "$expect" = pass ] && echo passed || echo 'leak reported')"
  fi
}

modes=(auto)
llvm=$("$cc" -print-prog-name=llvm-symbolizer 2>/dev/null)
[ -x "$llvm" ] || llvm=$(command -v llvm-symbolizer || true)
[ -n "$llvm" ] && modes+=("$llvm")
a2l=$(command -v addr2line || true)
[ -n "$a2l" ] && modes+=("$a2l")
modes+=(none)
for mode in "${modes[@]}"; do
  # Each mode from the caller's environment, as fuzz.sh would start.
  export ASAN_OPTIONS=$saved_asan LSAN_OPTIONS=$saved_lsan
  if [ "$saved_sym" = unset ]; then unset ASAN_SYMBOLIZER_PATH; else export ASAN_SYMBOLIZER_PATH=$saved_sym; fi
  if [ "$mode" = auto ]; then unset DP_FUZZ_SYMBOLIZER; else export DP_FUZZ_SYMBOLIZER=$mode; fi
  fuzz_sanitizer_env "$cc" || { fail "sanitizer-env.sh refused"; continue; }
  echo "--- $mode: symbolizer $FUZZ_SYMBOLIZER, $(basename "$FUZZ_SUPP")"
  check pass "fuzz_workflow on '\"\"'" "$dir/fuzz_workflow" "$tmp/empty-string.cfg"
  check pass "leak_probe libconfig" "$dir/leak_probe" libconfig
  check leak "leak_probe ours" "$dir/leak_probe" ours
  if [ "$FUZZ_SYMBOLIZER" != none ]; then
    check leak "leak_probe nodestroy" "$dir/leak_probe" nodestroy
  fi
done
# Without the suppression the leak is there: the passes above are its doing.
unset DP_FUZZ_SYMBOLIZER
fuzz_sanitizer_env "$cc"
mode="no suppression"
export LSAN_OPTIONS=$saved_lsan
check leak "leak_probe libconfig" "$dir/leak_probe" libconfig
[ $failures = 0 ] || { echo "$failures check(s) failed" >&2; exit 1; }
echo PASS
