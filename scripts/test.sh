#!/usr/bin/env bash
# Builds and runs the whole test suite three times: plain, under
# AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
# Fails if any of them fails. Installs missing Debian packages first.
#   scripts/test.sh              all three
#   scripts/test.sh dev|asan|tsan  one of them
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
presets=("${@:-dev asan tsan}")
# shellcheck disable=SC2206
presets=(${presets[*]})
failed=()
for p in "${presets[@]}"; do
  echo "=== $p: configure and build ==="
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p" -j "$jobs"
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
