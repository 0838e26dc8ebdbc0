#!/bin/sh
# files.sh DAGGERPOOL - hostile workflow files through the command (issue 13):
# directories, FIFOs, device nodes and /proc/self/mem as the workflow file or
# an @include target, include cycles and depth, absurd nesting, NUL bytes,
# names that are not UTF-8, integers beyond 64 bits, a 10 000-job cycle, a
# plugin symlink loop, bad slurm.batch params, several problems in one file,
# and `watch` saving a bad workflow over a good one.
#
# Every input is made here, each in its own directory (mktemp -d): FIFOs with
# mkfifo, device nodes with mknod (when permitted) inside that directory;
# nothing outside it is written. /proc/self/mem is only read (harmless). Each
# case asserts the exit code and a FILE:LINE message; a command that hangs is
# killed by `timeout` and fails its case. Everything started here is killed
# by its recorded pid before the script ends.
set -u
DP=$1
TOP=$(mktemp -d "${TMPDIR:-/tmp}/dp-hostile-files.XXXXXX")
WATCH_PID=
cleanup() {
  [ -n "$WATCH_PID" ] && kill -KILL "$WATCH_PID" 2>/dev/null
  rm -rf "$TOP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# A new directory for one case; the script's cwd moves there, so that
# messages name files as the command was given them.
newcase() { D=$(mktemp -d "$TOP/case.XXXXXX") && cd "$D" || exit 1; }

# expect NAME CODE TEXT CMD... : CMD (the command's arguments) exits CODE and
# its stderr contains TEXT (a fixed string).
expect() {
  name=$1 code=$2 text=$3
  shift 3
  timeout 20 "$DP" "$@" >out.txt 2>err.txt </dev/null
  rc=$?
  if [ "$rc" -ne "$code" ]; then
    fail "$name: exit $rc, expected $code ($*)"; sed 's/^/    /' err.txt | head -5
  elif [ -n "$text" ] && ! grep -qF -- "$text" err.txt; then
    fail "$name: no \"$text\" in the messages"; sed 's/^/    /' err.txt | head -5
  else
    ok "$name"
  fi
}

# The same refusal from validate, run and watch (nothing runs: exit 2).
refused() {
  r_name=$1 r_text=$2 r_file=$3
  expect "validate: $r_name" 2 "$r_text" validate "$r_file"
  expect "run: $r_name" 2 "$r_text" run "$r_file"
  expect "watch: $r_name" 2 "$r_text" watch "$r_file" --interval 100ms
}

GOOD='jobs = ( { name = "a"; type = "core.noop"; } );'

# ---- files that are not regular files -----------------------------------
newcase
mkdir adir
printf 'workflow = { name = "w"; };\n@include "adir"\n%s\n' "$GOOD" > w.cfg
refused "@include of a directory" 'w.cfg:2: @include "adir": cannot read adir: it is a directory, not a regular file' w.cfg
expect "validate of a directory" 2 "adir: cannot read the workflow file: it is a directory" validate adir

newcase
expect "validate /proc/self/mem" 2 "/proc/self/mem: cannot read the workflow file: Input/output error" \
  validate /proc/self/mem
printf '%s\n@include "/proc/self/mem"\n' "$GOOD" > w.cfg
refused "@include of /proc/self/mem" "w.cfg:2: @include \"/proc/self/mem\": cannot read /proc/self/mem: Input/output error" w.cfg

newcase
mkfifo fifo.cfg
refused "a FIFO as the workflow file" "fifo.cfg: cannot read the workflow file: it is a FIFO (named pipe)" fifo.cfg
printf '%s\n\n@include "fifo.cfg"\n' "$GOOD" > w.cfg
refused "@include of a FIFO" 'w.cfg:3: @include "fifo.cfg": cannot read fifo.cfg: it is a FIFO (named pipe)' w.cfg

newcase
if mknod null.cfg c 1 3 2>/dev/null; then
  refused "a character device as the workflow file" "null.cfg: cannot read the workflow file: it is a character device" null.cfg
  printf '@include "null.cfg"\n%s\n' "$GOOD" > w.cfg
  refused "@include of a character device" 'w.cfg:1: @include "null.cfg": cannot read null.cfg: it is a character device' w.cfg
else
  echo "skip: device nodes (mknod not permitted here)"
fi

# ---- @include paths ------------------------------------------------------
newcase
printf '%s\n' "$GOOD" > jobs.inc
printf 'workflow = { name = "abs"; };\n@include "%s/jobs.inc"\n' "$D" > w.cfg
expect "an absolute @include works" 0 "" validate w.cfg
printf 'workflow = { name = "abs"; };\n@include "%s/nonexistent.inc"\n' "$D" > w2.cfg
expect "a failing @include names the path tried" 2 \
  "w2.cfg:2: @include \"$D/nonexistent.inc\": cannot read $D/nonexistent.inc: No such file or directory" validate w2.cfg
mkdir -p sub/deeper
printf 'jobs = (\n  { name = "a"; type = "core.noop"; tyop = 1; }\n);\n' > sub/deeper/jobs.inc
printf '\n@include "deeper/jobs.inc"\n' > sub/mid.inc
printf 'workflow = { name = "rel"; };\n@include "sub/mid.inc"\n' > w3.cfg
expect "an @include is relative to the including file (and its lines are its own)" 2 \
  "sub/deeper/jobs.inc:2: unknown key 'tyop' in job 'a'" validate w3.cfg

newcase
printf '@include "b.cfg"\n' > a.cfg
printf '%s\n@include "a.cfg"\n' "$GOOD" > b.cfg
expect "an include cycle" 2 'b.cfg:2: @include "a.cfg": a.cfg is the workflow file, which is being read' validate a.cfg
i=0
while [ $i -lt 12 ]; do printf '@include "i%d.inc"\n' $((i + 1)) > i$i.inc; i=$((i + 1)); done
printf '%s\n' "$GOOD" > i12.inc
expect "includes nested too deep" 2 'i10.inc:1: @include "i11.inc": includes are nested more than 10 deep' validate i0.inc

# ---- what libconfig itself cannot say well -------------------------------
newcase
awk 'BEGIN { printf "jobs = ( { name = \"a\"; type = \"core.noop\";\n  params = { x = "
             for (i = 0; i < 6000; i++) printf "{ y = "
             printf "1;"; for (i = 0; i < 6000; i++) printf " };"
             printf " }; } );\n" }' > deep.cfg
refused "groups nested 6000 deep" "deep.cfg:2: groups, lists and arrays are nested more than 100 deep here; daggerpool reads at most 100 levels" deep.cfg

newcase
printf 'jobs = (\n  { name = "a"; type = "core.noop"; params = { s = "x\000y"; }; }\n);\n' > nul.cfg
refused "a NUL byte" "nul.cfg:2: a NUL byte" nul.cfg

newcase
cat > big.cfg <<'CFG'
jobs = (
  { name = "a"; type = "core.noop"; retries = 18446744073709551617L; },
  { name = "b"; type = "core.noop"; timeout = 18446744073709551615; },
  { name = "c"; type = "core.noop"; timeout = 99999999999999999999999L; }
);
CFG
expect "retries beyond 64 bits, as written" 2 "big.cfg:2: 'retries' of job 'a' must be between 0 and 1000000, found 18446744073709551617L" validate big.cfg
expect "a timeout of 2^64-1, as written" 2 "big.cfg:3: 'timeout' of job 'b' must be at most 9223372036854775807 milliseconds, found 18446744073709551615;" validate big.cfg
expect "a timeout beyond 64 bits, refused" 2 "big.cfg:4: 'timeout' of job 'c' must be at most 9223372036854775807 milliseconds, found 99999999999999999999999L;" validate big.cfg

newcase
printf 'jobs = (\n  { name = "a\377"; type = "core.noop"; },\n  { name = "a\376"; type = "core.noop"; }\n);\n' > names.cfg
refused "a job name that is not UTF-8" 'names.cfg:2: a job'"'"'s name is "a\xFF", which is not valid UTF-8' names.cfg
expect "another job name that is not UTF-8" 2 'names.cfg:3: a job'"'"'s name is "a\xFE", which is not valid UTF-8' validate names.cfg

newcase
awk 'BEGIN { n = 10000; print "jobs = ("
             for (i = 0; i < n; i++)
               printf "  { name = \"j%05d\"; type = \"core.noop\"; depends_on = [ \"j%05d\" ]; }%s\n", i, (i + 1) % n, i < n - 1 ? "," : ""
             print ");" }' > cycle.cfg
expect "a 10 000-job cycle, shortened on purpose" 2 \
  "cycle.cfg:2: dependency cycle: j00000 -> j00001 -> j00002 -> j00003 -> j00004 -> j00005 -> j00006 -> j00007 -> ... 9985 more ... -> j09993 -> j09994 -> j09995 -> j09996 -> j09997 -> j09998 -> j09999 -> j00000 (each job depends on the next); a workflow must be acyclic" \
  validate cycle.cfg

# ---- every problem of a file at once -------------------------------------
newcase
cat > three.cfg <<'CFG'
jobs = (
  { name = "a"; type = "core.noop"; retires = 1; },
  { name = "b"; type = "core.sleep"; params = { duration = "abc"; }; },
  { name = "c"; type = "nosuch.plugin"; }
);
CFG
for cmd in validate run watch; do
  expect "$cmd: a's key" 2 "three.cfg:2: unknown key 'retires' in job 'a'; did you mean 'retries'?" $cmd three.cfg
  grep -qF "three.cfg:3: job 'b' (type 'core.sleep'): param 'duration'" err.txt &&
    grep -qF "three.cfg:4: job 'c' (type 'nosuch.plugin'): nosuch.so: plugin 'nosuch' not found" err.txt &&
    ok "$cmd: b's params and c's plugin in the same report" ||
    { fail "$cmd: not every problem listed at once"; sed 's/^/    /' err.txt; }
done

# ---- plugins ---------------------------------------------------------------
newcase
mkdir -m 700 pl
ln -s loop.so pl/loop.so
printf 'jobs = ( { name = "a"; type = "loop.t"; } );\n' > w.cfg
expect "a plugin symlink loop says so" 2 "w.cfg:1: job 'a' (type 'loop.t'): pl/loop.so: Too many levels of symbolic links" \
  validate --plugin-path pl w.cfg

newcase
if "$DP" plugins 2>/dev/null | grep -q '^slurm'; then
  cat > slurm.cfg <<'CFG'
jobs = (
  { name = "a"; type = "slurm.batch"; params = { wrap = "true"; nodes = "a-b"; }; },
  { name = "b"; type = "slurm.batch"; params = { wrap = "true"; memory = "-5G"; }; },
  { name = "c"; type = "slurm.batch"; params = { wrap = "true"; nodes = "2-4"; memory = "4G"; }; }
);
CFG
  expect "slurm.batch nodes = \"a-b\"" 2 "slurm.cfg:2: job 'a' (type 'slurm.batch'): param 'nodes': expected a node count" validate slurm.cfg
  expect "slurm.batch memory = \"-5G\"" 2 "slurm.cfg:3: job 'b' (type 'slurm.batch'): param 'memory': expected a memory size" validate slurm.cfg
  grep -q "slurm.cfg:4" err.txt && fail "slurm.batch: nodes = \"2-4\", memory = \"4G\" refused" || ok "slurm.batch: good nodes and memory pass"
else
  echo "skip: slurm plugin not built"
fi

# ---- watch: a bad save keeps the old workflow running -----------------------
newcase
cat > w.cfg <<'CFG'
workflow = { name = "w"; };
jobs = ( { name = "old"; type = "core.noop"; } );
CFG
mkdir adir
mkfifo fifo.inc
"$DP" watch w.cfg --interval 100ms --json-lines runs.jsonl >/dev/null 2>watch.err </dev/null &
WATCH_PID=$!
# waits up to $2 seconds for file $1 to contain $3 (while watch lives)
wait_for() {
  i=0
  while ! grep -qF -- "$3" "$1" 2>/dev/null; do
    kill -0 "$WATCH_PID" 2>/dev/null || return 1
    i=$((i + 1)); [ $i -gt $(($2 * 20)) ] && return 1
    sleep 0.05
  done
}
runs() { wc -l < runs.jsonl; }
wait_for runs.jsonl 10 '"old"' || fail "watch: no first run"
for bad in adir fifo.inc /proc/self/mem; do
  printf 'workflow = { name = "w"; };\n@include "%s"\njobs = ( { name = "new"; type = "core.noop"; } );\n' "$bad" > w.new
  mv w.new w.cfg
  wait_for watch.err 10 "w.cfg:2: @include \"$bad\": cannot read" ||
    { fail "watch: saving an @include of $bad was not refused"; continue; }
  n=$(runs)
  i=0; while [ "$(runs)" -le $((n + 1)) ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  if kill -0 "$WATCH_PID" 2>/dev/null && [ "$(runs)" -gt $((n + 1)) ] &&
     tail -n 1 runs.jsonl | grep -qF '"old"' && ! tail -n 1 runs.jsonl | grep -qF '"new"'; then
    ok "watch: an @include of $bad refused; the daemon runs on with the old workflow"
  else
    fail "watch: after an @include of $bad saved (alive: $(kill -0 "$WATCH_PID" 2>/dev/null && echo yes || echo no), runs $n -> $(runs))"
  fi
done
kill -TERM "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID"; rc=$?
WATCH_PID=
[ $rc -eq 130 ] && ok "watch: ends on SIGTERM (130)" || { fail "watch: exit $rc on SIGTERM, expected 130"; tail -5 watch.err; }

cd "$TOP/.." || exit 1
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $fails
