#!/usr/bin/env bash
# Formats the C sources with clang-format (.clang-format), or checks them.
#   scripts/format.sh           rewrite every file that differs
#   scripts/format.sh --check   list the files that differ and fail (CI)
# The frozen v1.0 plugin header in tests/abi is a copy kept byte for byte:
# never formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is missing (scripts/deps.sh installs it)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' | grep -v '^tests/abi/v1.0/')
else
  mapfile -t files < <(find host sdk plugins tests bench examples -name '*.[ch]' -o -name '*.cpp' | grep -v '^tests/abi/v1.0/' | sort)
fi
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    echo "format: ${#bad[@]} file(s) differ from .clang-format: ${bad[*]}" >&2
    echo "format: fix with scripts/format.sh (and commit)" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files as .clang-format says"
else
  clang-format -i "${files[@]}"
fi
