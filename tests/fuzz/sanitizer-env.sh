# shellcheck shell=bash
# sanitizer-env.sh - sourced by fuzz.sh and leak-test.sh: the sanitizer
# environment of the libFuzzer runs, and only of them (the project's own
# ASan/TSan presets carry no suppression).
#
#   fuzz_sanitizer_env CC
#
# exports ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS (added to what the
# caller set) and, when a symbolizer is found, ASAN_SYMBOLIZER_PATH; sets
# FUZZ_SYMBOLIZER (the symbolizer used, or "none") and FUZZ_SUPP (the
# LeakSanitizer suppression file used).
#
# The one suppression is libconfig 1.5's leak of a discarded string token
# (README.md, "Known: libconfig 1.5 leaks"). With a symbolizer it is matched
# by libconfig's function names (lsan.supp): every other allocation, also
# libconfig's (a missing config_destroy), is still reported. Without one,
# frames have no names and only the module can match (lsan-nosymbolizer.supp:
# leaks from inside libconfig.so.9, the 1.5 library, and nothing else).
#
# The symbolizer, first found of:
#   DP_FUZZ_SYMBOLIZER   a path to llvm-symbolizer or addr2line, or "none"
#                        (leak-test.sh forces each in turn)
#   ASAN_SYMBOLIZER_PATH when set to an executable
#   CC -print-prog-name=llvm-symbolizer   the compiler's own (Debian's llvm-14
#                        package, from scripts/deps.sh, puts it in
#                        /usr/lib/llvm-14/bin, where the sanitizers' search
#                        of PATH does not look)
#   llvm-symbolizer, then addr2line (binutils), on PATH
fuzz_sanitizer_env() {
  local cc=$1 here sym=
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [ -n "${DP_FUZZ_SYMBOLIZER:-}" ]; then
    sym=$DP_FUZZ_SYMBOLIZER
    if [ "$sym" != none ] && [ ! -x "$sym" ]; then
      echo "fuzz: DP_FUZZ_SYMBOLIZER=$sym is not an executable (a path to llvm-symbolizer or addr2line, or none)" >&2
      return 2
    fi
  elif [ -n "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x "$ASAN_SYMBOLIZER_PATH" ]; then
    sym=$ASAN_SYMBOLIZER_PATH
  else
    sym=$("$cc" -print-prog-name=llvm-symbolizer 2>/dev/null || true)
    case $sym in
      /*) [ -x "$sym" ] || sym= ;;
      *) sym= ;;
    esac
    [ -n "$sym" ] || sym=$(command -v llvm-symbolizer || command -v addr2line || echo none)
  fi
  # shellcheck disable=SC2034  # read by the callers
  FUZZ_SYMBOLIZER=$sym
  local asan=${ASAN_OPTIONS:-} lsan=${LSAN_OPTIONS:-}
  if [ "$sym" = none ]; then
    # symbolize=0: the sanitizers must not find one on their own either, so
    # that this case behaves the same on every machine.
    unset ASAN_SYMBOLIZER_PATH
    asan+=:symbolize=0
    FUZZ_SUPP=$here/lsan-nosymbolizer.supp
  else
    export ASAN_SYMBOLIZER_PATH=$sym
    FUZZ_SUPP=$here/lsan.supp
  fi
  export ASAN_OPTIONS=${asan#:}:detect_leaks=1
  export LSAN_OPTIONS=${lsan:+$lsan:}suppressions=$FUZZ_SUPP:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
}
