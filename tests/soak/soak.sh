#!/usr/bin/env bash
# soak.sh [BUILD_DIR] [dp_soak options...]
#
# Builds dp_soak and the faults plugin in BUILD_DIR (default build/dev, which
# must be configured) and runs the soak: by default 1000 runs of a 1000-job
# workflow with random failures, not-ready jobs and timeouts, every result
# checked, RSS and fd count required flat. Pass e.g. --runs 200 for less.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/dev}
shift || true
cmake --build "$build" --target dp_soak faults daggerpool_job_runner -j "${JOBS:-2}" >/dev/null
exec "$build/bin/dp_soak" --plugin-dir "$build/tests/faults/plugins" --runs 1000 --jobs 1000 "$@"
