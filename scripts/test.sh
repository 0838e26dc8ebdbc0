#!/usr/bin/env bash
# Builds and runs the whole test suite three times: plain, under
# AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
# Fails if any of them fails. Then checks that everything also builds with
# clang with warnings as errors, and that the sources are formatted as
# .clang-format says. Installs missing Debian packages first.
#   scripts/test.sh              all three, and the clang build and format check
#   scripts/test.sh dev|asan|tsan|clang  one of them (clang: build and format only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
presets=("${@:-dev asan tsan clang}")
# shellcheck disable=SC2206
presets=(${presets[*]})
failed=()
for p in "${presets[@]}"; do
  echo "=== $p: configure and build ==="
  cmake --preset "$p" >/dev/null
  if ! cmake --build --preset "$p" -j "$jobs"; then
    failed+=("$p (build)")
    continue
  fi
  if [ "$p" = clang ]; then     # a compiler and format check: the tests ran above
    echo "=== format: check ==="
    scripts/format.sh --check || failed+=("format")
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
