#!/usr/bin/env bash
# Builds daggerpool (Release) and runs the seed README's example workflow,
# conf/seed.cfg: A -> (B, C) -> D -> E. Installs missing Debian packages
# first. Extra arguments go to `daggerpool run` (e.g. --json -, --trace t.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
exec build/release/bin/daggerpool run conf/seed.cfg "$@"
