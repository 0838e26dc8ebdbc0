#!/usr/bin/env bash
# Installs the Debian packages daggerpool needs, only those missing.
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh PKG...     also these
# Needs root (apt-get) when something is missing; does nothing otherwise.
set -euo pipefail

pkgs=(cmake make gcc g++ clang pkg-config libconfig-dev libcmocka-dev libjansson-dev
      binutils valgrind procps python3 jq libclang-rt-14-dev llvm-14 clang-format time libtbb-dev
      libyajl-dev libsystemd-dev systemd libsqlite3-dev sqlite3 libzstd-dev libmicrohttpd-dev libgraphviz-dev prometheus
      chromium python3-prometheus-client fonts-dejavu-core curl "$@")
# jq: the hot-swap command tests; libclang-rt-14-dev: libFuzzer; llvm-14: llvm-symbolizer
# (/usr/lib/llvm-14/bin), which names the frames of the fuzz runs' sanitizer reports
# (tests/fuzz/sanitizer-env.sh); clang-format: scripts/format.sh (the CI check);
# libtbb-dev, time, libyajl-dev: bench/ (the oneTBB peer; yajl in json_writers);
# libsystemd-dev: sd_notify in `watch`; systemd: systemd-analyze, which checks the unit file;
# libsqlite3-dev: the command's state (docs/state.md), libzstd-dev: its compressed results;
# sqlite3 (its shell): the state tests
# and bench/state_history.sh look into and fill state files with it;
# libmicrohttpd-dev, libgraphviz-dev (libgvc): watch --listen's HTTP server and the status page's
# graph; prometheus, python3-prometheus-client, chromium (headless), fonts-dejavu-core, curl: the
# tests of those endpoints (tests/service), which start them on loopback themselves.

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt or dpkg (a fresh machine's unattended-upgrades, a
  # second build) rather than fail at once on its lock.
  lock=(-o DPkg::Lock::Timeout=600)
  apt-get "${lock[@]}" update -qq
  apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
