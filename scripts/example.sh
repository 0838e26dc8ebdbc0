#!/usr/bin/env bash
# Builds daggerpool (Release) and runs the example workflow of the seed
# README: A -> (B, C) -> D -> E. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
build/release/bin/embed_seed_dag "$@"
