#!/usr/bin/env bash
# memcheck.sh VALGRIND DAGGERPOOL CONF_DIR FAULTS_DIR
#
# Runs the daggerpool command under valgrind memcheck on several workflow
# runs (the examples in conf/, failures with retries and keep-going, not
# ready, job and global timeouts, isolated jobs that crash) and on validate
# and graph, with the JSON result, the trace and JSON logs written. Fails if
# valgrind finds an error or a definite/indirect leak in any of them (its
# exit code 99); the workflows' own exit codes are expected.
set -uo pipefail
vg=$1 dp=$2 conf=$3 faults=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

memcheck() { # EXPECTED_EXIT NAME ARGS...
  local want=$1 name=$2
  shift 2
  "$vg" --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-fds=no --log-file="$tmp/$name.vg" \
    "$dp" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  # With --quiet, memcheck writes only errors and leaks ("==PID== ...");
  # its "--PID-- WARNING: unhandled syscall" notes (pidfd_open on older
  # valgrind; the plugins fall back) are not findings.
  if [ $rc -eq 99 ] || grep -q '^==[0-9]*==' "$tmp/$name.vg"; then
    echo "FAIL $name: valgrind found problems (exit $rc)"
    cat "$tmp/$name.vg"
    failed=1
  elif [ $rc -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"
    tail -n 20 "$tmp/$name.err"
    failed=1
  else
    echo "ok   $name (exit $rc)"
  fi
}

cat >"$tmp/mixed.cfg" <<CFG
workflow: { name = "mixed"; max_concurrent_jobs = 3; timeout = "30s"; fail_fast = false; };
jobs = (
  { name = "a"; type = "core.sleep"; params = { duration = "50ms"; }; },
  { name = "b"; type = "core.sleep"; depends_on = [ "a" ]; params = { error = "boom \"quoted\"\n"; };
    retries = 2; backoff = { initial = "10ms"; jitter = 0.5; }; },
  { name = "c"; type = "core.sleep"; depends_on = [ "a" ]; params = { ready = false; }; },
  { name = "d"; type = "core.sleep"; depends_on = [ "c" ]; },
  { name = "e"; type = "core.sleep"; timeout = "100ms"; params = { duration = "10s"; }; },
  { name = "f"; type = "shell.command"; depends_on = [ "a" ]; params = { argv = [ "/bin/echo", "x;y" ]; }; },
  { name = "g"; type = "shell.command"; params = { command = "exit 75"; }; },
  { name = "h"; type = "fs.exists"; params = { path = "/"; }; }
);
CFG
cat >"$tmp/timeout.cfg" <<CFG
workflow: { name = "timeout"; timeout = "300ms"; };
jobs = ( { name = "long"; type = "core.sleep"; params = { duration = "1m"; }; },
         { name = "after"; type = "core.noop"; depends_on = [ "long" ]; } );
CFG
cat >"$tmp/isolated.cfg" <<CFG
workflow: { name = "isolated"; timeout = "30s"; fail_fast = false; };
defaults = { isolation = "process"; };
jobs = (
  { name = "segv"; type = "faults.segv"; },
  { name = "exit"; type = "faults.exit"; },
  { name = "huge"; type = "faults.huge_error"; params = { bytes = 100000; }; },
  { name = "deaf"; type = "faults.sleep"; timeout = "200ms"; },
  { name = "sleep"; type = "core.sleep"; params = { duration = "20ms"; }; },
  { name = "bad"; type = "faults.bad_status"; isolation = "none"; },
  { name = "leak"; type = "faults.leak"; params = { bytes = 1000; }; }
);
CFG

memcheck 0 seed run "$conf/seed.cfg" --json "$tmp/seed.json" --trace "$tmp/seed.trace"
memcheck 1 keep-going run "$conf/keep-going.cfg" --json "$tmp/kg.json" --log-format json -vv
memcheck 1 mixed run "$tmp/mixed.cfg" --json "$tmp/mixed.json" --trace "$tmp/mixed.trace" -vv
memcheck 4 timeout run "$tmp/timeout.cfg" --json "$tmp/timeout.json"
memcheck 1 isolated run "$tmp/isolated.cfg" --plugin-path "$faults" --json "$tmp/iso.json" -vv
memcheck 0 validate validate "$conf/seed.cfg"
memcheck 2 invalid validate "$tmp/nosuch.cfg"
memcheck 0 graph graph "$conf/seed.cfg"
memcheck 0 graph-result graph "$conf/seed.cfg" --format mermaid --result "$tmp/seed.json"
memcheck 0 plugins plugins
exit $failed
