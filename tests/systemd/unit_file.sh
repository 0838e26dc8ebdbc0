#!/bin/sh
# unit_file.sh SOURCE_DIR DAGGERPOOL - conf/daggerpool-watch.service is a
# unit systemd accepts as it is: `systemd-analyze verify` (offline, no
# running systemd needed) on a copy whose ExecStart names the built command,
# with nothing printed (an unknown key or a bad value is a warning there).
set -u
SRC=$1
DP=$2
WORK=$(mktemp -d /tmp/dp_unit.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze missing (scripts/deps.sh installs systemd)"; exit 1; }
unit="$WORK/daggerpool-watch.service"
sed "s#/usr/local/bin/daggerpool#$DP#" "$SRC/conf/daggerpool-watch.service" > "$unit"
grep -q "^ExecStart=$DP watch " "$unit" || { echo "FAIL: ExecStart does not start 'daggerpool watch'"; exit 1; }
grep -q '^Type=notify$' "$unit" || { echo "FAIL: the unit is not Type=notify"; exit 1; }
out=$(systemd-analyze verify --man=no "$unit" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify (exit $rc):"
  echo "$out"
  exit 1
fi
echo "ok: the unit file verifies"
