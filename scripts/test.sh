#!/usr/bin/env bash
# Builds and runs the whole test suite three times: plain (gcc), under
# AddressSanitizer + UndefinedBehaviorSanitizer (built with clang, warnings
# as errors: that build is also the clang check), and under ThreadSanitizer
# (gcc). Fails if any of them fails. Then checks that the sources are
# formatted as .clang-format says. Installs missing Debian packages first.
#   scripts/test.sh              all three, and the format check
#   scripts/test.sh dev|asan|tsan|clang|format  one of them (clang: a build
#                                with clang alone, no tests; format: the
#                                format check alone)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
presets=("${@:-dev asan tsan format}")
# shellcheck disable=SC2206
presets=(${presets[*]})
failed=()
for p in "${presets[@]}"; do
  if [ "$p" = format ]; then
    echo "=== format: check ==="
    scripts/format.sh --check || failed+=("format")
    continue
  fi
  echo "=== $p: configure and build ==="
  cmake --preset "$p" >/dev/null
  if ! cmake --build --preset "$p" -j "$jobs"; then
    failed+=("$p (build)")
    continue
  fi
  if [ "$p" = clang ]; then     # a compiler check: asan runs the tests built with clang
    continue
  fi
  echo "=== $p: test ==="
  if ! ctest --preset "$p" -j "$jobs"; then
    failed+=("$p")
  fi
done
if ((${#failed[@]})); then
  echo "FAILED under: ${failed[*]}" >&2
  exit 1
fi
echo "all test suites passed: ${presets[*]}"
