#!/bin/sh
# outputs.sh DAGGERPOOL - hostile inputs to what the command writes and the
# files it reads beside the workflow (issue 13): each bad input is made in
# its own `mktemp -d` (FIFOs with mkfifo, device nodes with mknod there,
# directories chmod 777 or chown nobody there; nothing outside is touched),
# the command is run under `timeout` (a hang is a failure, not a stuck
# suite), and the exit code, the message and what is left on disk are
# checked. Cases:
#   fifo      a FIFO as `graph --result` or `watch --json-lines`: refused, exit 2
#   same      --json and --trace one file (./r.json, a hard link), or the workflow: refused before the run
#   nonreg    --json/--trace naming a device, a directory, "", a FIFO, a symlink: refused, nothing replaced
#   full      the summary (or --json -) to a full disk: exit 1 with the error
#   result    `graph --result` of another workflow: refused; of an older version: a warning naming the jobs
#   plugins   a plugin under a 777 parent, through a symlink into a 777 directory, under a directory of
#             another uid: refused, naming the directory (a root-owned sticky one is fine)
#   escape    names with a newline, ESC and invalid UTF-8 in validate, graph, plugins, usage errors
#   trace     a million-retry job's trace is streamed: memory does not grow with the attempts
#   logjson   --log-format json: every stderr line is one JSON object (progress included)
#   signals   two SIGINTs / SIGTERMs, one SIGXFSZ: no temporary file left behind
# Every case failed before the fix (see the commit that added this file).
set -u
DP=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fails=0
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/dp-hostile-outputs.XXXXXX") || exit 1
trap 'rm -rf "$ROOT"' EXIT
PLUGINS=$(cd "$(dirname "$DP")/../lib/daggerpool/plugins" && pwd)
# Under a sanitizer, its reports go to files checked at the end (an exit
# code alone could hide one where exit 1 is expected).
mkdir "$ROOT/san"
for v in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
  eval "export $v=\"\${$v:+\$$v:}log_path=$ROOT/san/report\""
done
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# newdir NAME: the case's own directory
newdir() { mkdir "$ROOT/$1" && echo "$ROOT/$1"; }
# dp ARGS...: the command, bounded (a hang fails the case instead of the suite)
dp() { timeout -k 2 20 "$DP" "$@"; }
# show FILE...: the evidence of a failure
show() { for f in "$@"; do echo "--- $f"; cat "$f" 2>/dev/null | head -20; done; }
# tmp_left DIR: any temporary output file left in DIR
tmp_left() { ls "$1" | grep -q '\.tmp\.'; }
# wf FILE MARKER: a workflow whose only job creates MARKER (to tell whether anything ran)
wf() {
  cat > "$1" <<CFG
workflow: { name = "w"; };
jobs = ( { name = "a"; type = "shell.command"; params = { command = "touch '$2'"; }; } );
CFG
}

# ---- fifo: files read (or appended to) that are not the workflow ----
d=$(newdir fifo)
wf "$d/w.cfg" "$d/ran"
mkfifo "$d/r.json" "$d/runs.jsonl"
dp graph "$d/w.cfg" --result "$d/r.json" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q -- "--result $d/r.json: a FIFO, not a regular file" "$d/err"; then
  ok "fifo: graph --result FIFO refused"
else
  fail "fifo: graph --result FIFO (exit $rc; 124 = hung)"; show "$d/err"
fi
dp watch "$d/w.cfg" --until-ready --json-lines "$d/runs.jsonl" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "runs.jsonl: a FIFO" "$d/err" && [ ! -e "$d/ran" ]; then
  ok "fifo: watch --json-lines FIFO refused before anything ran"
else
  fail "fifo: watch --json-lines FIFO (exit $rc)"; show "$d/err"
fi
mknod "$d/null" c 1 3
dp watch "$d/w.cfg" --until-ready --json-lines "$d/null" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "null: a character device" "$d/err" && [ ! -e "$d/ran" ] && [ -c "$d/null" ]; then
  ok "fifo: watch --json-lines device refused"
else
  fail "fifo: watch --json-lines device (exit $rc)"; show "$d/err"
fi

# ---- same: two outputs one file, or an output the workflow ----
d=$(newdir same)
wf "$d/w.cfg" "$d/ran"
(cd "$d" && dp run w.cfg --json r.json --trace ./r.json -q > out 2> err); rc=$?
if [ $rc -eq 2 ] && grep -q "name the same file" "$d/err" && [ ! -e "$d/r.json" ] && [ ! -e "$d/ran" ] &&
   ! tmp_left "$d"; then
  ok "same: --json r.json --trace ./r.json refused before the run"
else
  fail "same: ./r.json (exit $rc)"; show "$d/err"; ls -la "$d"
fi
: > "$d/a.json"
ln "$d/a.json" "$d/b.json"
dp run "$d/w.cfg" --json "$d/a.json" --trace "$d/b.json" -q > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "name the same file" "$d/err" && [ ! -s "$d/a.json" ] && [ ! -e "$d/ran" ]; then
  ok "same: hard links (one inode) refused"
else
  fail "same: hard links (exit $rc)"; show "$d/err"
fi
cp "$d/w.cfg" "$d/w.orig"
dp run "$d/w.cfg" --trace "$d/w.cfg" -q > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "names the workflow file" "$d/err" && cmp -s "$d/w.cfg" "$d/w.orig" && [ ! -e "$d/ran" ]; then
  ok "same: --trace naming the workflow file refused"
else
  fail "same: --trace = workflow (exit $rc)"; show "$d/err"
fi

# ---- nonreg: outputs that are not regular files are never replaced ----
d=$(newdir nonreg)
wf "$d/w.cfg" "$d/ran"
mknod "$d/null" c 1 3
mkdir "$d/dir"
mkfifo "$d/fifo"
: > "$d/real.json"
ln -s real.json "$d/link"
for spec in "--json:$d/null:character device" "--trace:$d/null:character device" "--json:$d/dir:directory" \
            "--json::empty file name" "--trace:$d/fifo:FIFO" "--json:$d/link:symlink"; do
  flag=${spec%%:*}; rest=${spec#*:}; path=${rest%%:*}; want=${rest#*:}
  dp run "$d/w.cfg" "$flag" "$path" -q > "$d/out" 2> "$d/err"; rc=$?
  if [ $rc -eq 2 ] && grep -q "$want" "$d/err" && [ ! -e "$d/ran" ] && [ -c "$d/null" ] && [ -d "$d/dir" ] &&
     [ -p "$d/fifo" ] && [ -L "$d/link" ] && [ ! -s "$d/real.json" ] && ! tmp_left "$d"; then
    ok "nonreg: $flag '${path#$d/}' ($want) refused before the run, nothing replaced"
  else
    fail "nonreg: $flag '$path' (exit $rc)"; show "$d/err"; ls -la "$d"
  fi
done

# ---- full: a summary nobody could read is not a success ----
d=$(newdir full)
wf "$d/w.cfg" "$d/ran"
mknod "$d/full" c 1 7
dp run "$d/w.cfg" -q > "$d/full" 2> "$d/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "cannot write the summary to standard output: No space left on device" "$d/err"; then
  ok "full: run > full device exits 1 with the error"
else
  fail "full: run > full (exit $rc)"; show "$d/err"
fi
dp run "$d/w.cfg" -q --json - > "$d/full" 2> "$d/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "cannot write the JSON result to standard output" "$d/err"; then
  ok "full: run --json - > full device exits 1"
else
  fail "full: --json - > full (exit $rc)"; show "$d/err"
fi
dp validate "$d/w.cfg" > "$d/full" 2> "$d/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "cannot write to standard output" "$d/err"; then
  ok "full: validate > full device exits 1"
else
  fail "full: validate > full (exit $rc)"; show "$d/err"
fi

# ---- result: graph --result of another workflow, or of an older version ----
d=$(newdir result)
cat > "$d/old.cfg" <<'CFG'
workflow: { name = "deploy"; };
jobs = ( { name = "a"; type = "core.noop"; }, { name = "gone"; type = "core.noop"; } );
CFG
cat > "$d/new.cfg" <<'CFG'
workflow: { name = "deploy"; };
jobs = ( { name = "a"; type = "core.noop"; }, { name = "added"; type = "core.noop"; depends_on = [ "a" ]; } );
CFG
cat > "$d/other.cfg" <<'CFG'
workflow: { name = "other"; };
jobs = ( { name = "x"; type = "core.noop"; } );
CFG
dp run "$d/old.cfg" --json "$d/old.json" -q > /dev/null 2>&1
dp graph "$d/other.cfg" --result "$d/old.json" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "none of its 2 job(s) is a job of workflow 'other' (it is a result of workflow 'deploy')" "$d/err"; then
  ok "result: another workflow's result refused"
else
  fail "result: another workflow (exit $rc)"; show "$d/err"
fi
dp graph "$d/new.cfg" --result "$d/old.json" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "warning: .*1 job(s) of the result are not in the workflow: gone" "$d/err" &&
   grep -q "1 job(s) of the workflow are not in the result, drawn without a status: added" "$d/err" &&
   grep -q '"a" \[label="a\\ncore.noop\\nsuccess"' "$d/out"; then
  ok "result: an older version's result colours what matches and names the jobs that do not"
else
  fail "result: older version (exit $rc)"; show "$d/err" "$d/out"
fi

# ---- plugins: every directory on the way to a plugin file ----
d=$(newdir plugins)
cat > "$d/w.cfg" <<'CFG'
workflow: { name = "p"; };
jobs = ( { name = "a"; type = "core.noop"; } );
CFG
mkdir -p "$d/ww/sub" "$d/evil" "$d/safe" "$d/sticky/sub"
cp "$PLUGINS/core.so" "$d/ww/sub/core.so"
chmod 777 "$d/ww"
cp "$PLUGINS/core.so" "$d/evil/core.so"
chmod 777 "$d/evil"
ln -s ../evil/core.so "$d/safe/core.so"
cp "$PLUGINS/core.so" "$d/sticky/sub/core.so"
chmod 1777 "$d/sticky"
dp validate --plugin-path "$d/ww/sub" "$d/w.cfg" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "the directory is writable by others (mode 0777): $d/ww, on the way" "$d/err" &&
   grep -q -- "--allow-insecure-plugins" "$d/err"; then
  ok "plugins: a 777 parent of the plugin directory refused, naming it"
else
  fail "plugins: 777 parent (exit $rc)"; show "$d/err"
fi
dp validate --plugin-path "$d/safe" "$d/w.cfg" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "writable by others (mode 0777): $d/evil, on the way" "$d/err"; then
  ok "plugins: a symlink into a 777 directory refused, naming it"
else
  fail "plugins: symlink into 777 (exit $rc)"; show "$d/err"
fi
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$d/theirs/sub"
  cp "$PLUGINS/core.so" "$d/theirs/sub/core.so"
  chown nobody "$d/theirs"
  dp validate --plugin-path "$d/theirs/sub" "$d/w.cfg" > "$d/out" 2> "$d/err"; rc=$?
  if [ $rc -eq 2 ] && grep -q "the directory is owned by uid $(id -u nobody), neither root nor you (uid 0): $d/theirs" "$d/err"; then
    ok "plugins: a parent owned by another uid refused, naming it"
  else
    fail "plugins: parent of another uid (exit $rc)"; show "$d/err"
  fi
else
  echo "skip: plugins: another uid's directory (needs root to chown)"
fi
# Controls: a root-owned sticky directory (as /tmp) is fine; the escape hatch works.
dp validate --plugin-path "$d/sticky/sub" "$d/w.cfg" > "$d/out" 2> "$d/err"; rc=$?
[ "$(stat -c %u "$d/sticky")" -ne 0 ] || { [ $rc -eq 0 ] && ok "plugins: under a root-owned sticky directory: loaded" || { fail "plugins: sticky (exit $rc)"; show "$d/err"; }; }
dp validate --allow-insecure-plugins --plugin-path "$d/ww/sub" "$d/w.cfg" > "$d/out" 2> "$d/err"; rc=$?
[ $rc -eq 0 ] && ok "plugins: --allow-insecure-plugins loads it" || { fail "plugins: allow-insecure (exit $rc)"; show "$d/err"; }

# ---- escape: control characters and invalid UTF-8 in every message and output ----
d=$(newdir escape)
ESC=$(printf '\033')
# clean FILE: no control byte but newline, no ESC, valid UTF-8
clean() { ! tr -d '\n' < "$1" | grep -q '[[:cntrl:]]' && ! grep -q "$ESC" "$1" && iconv -f UTF-8 -t UTF-8 "$1" > /dev/null 2>&1; }
cat > "$d/typo.cfg" <<'CFG'
workflow: { name = "w"; };
jobs = ( { name = "a\ntypo.cfg:1: forged\x1b[31m\xff"; type = "core.noop"; retires = 1; } );
CFG
dp validate "$d/typo.cfg" > "$d/out" 2> "$d/err"; rc=$?
# Two problems (the name is not UTF-8; the typo), one line each.
if [ $rc -eq 2 ] && [ "$(wc -l < "$d/err")" -eq 2 ] && clean "$d/err" && ! grep -q "^typo.cfg:1: forged" "$d/err" &&
   [ "$(grep -c 'a\\ntypo.cfg:1: forged\\x1B\[31m\\xFF' "$d/err")" -eq 2 ]; then
  ok "escape: validate prints one escaped line per problem (no forged FILE:LINE, no ESC)"
else
  fail "escape: validate (exit $rc)"; show "$d/err"
fi
# A name that loads (invalid UTF-8 in names is refused, tests/hostile/files.sh).
sed 's/ retires = 1;//; s/\\xff//' "$d/typo.cfg" > "$d/name.cfg"
for fmt in dot mermaid; do
  dp graph "$d/name.cfg" --format $fmt > "$d/out.$fmt" 2> "$d/err"; rc=$?
  if [ $rc -eq 0 ] && clean "$d/out.$fmt" && ! grep -q "^typo.cfg:1: forged" "$d/out.$fmt" &&
     grep -q 'forged\\\{0,1\}\\x1B\[31m' "$d/out.$fmt"; then
    ok "escape: graph --format $fmt escapes the name"
  else
    fail "escape: graph $fmt (exit $rc)"; show "$d/out.$fmt" "$d/err"
  fi
done
mkdir "$d/pl"
printf 'not ELF\n' > "$d/pl/$(printf 'evil\n\033[31m\377')x.so"
dp plugins --plugin-path "$d/pl" > "$d/out" 2> "$d/err"; rc=$?
if clean "$d/out" && clean "$d/err" && grep -q 'evil\\n\\x1B\[31m\\xFFx' "$d/out"; then
  ok "escape: plugins lists an odd file name escaped"
else
  fail "escape: plugins (exit $rc)"; show "$d/out" "$d/err"
fi
dp run "--bogus${ESC}[2J" > "$d/out" 2> "$d/err"; rc=$?
if [ $rc -eq 2 ] && clean "$d/err" && grep -q 'unknown option --bogus\\x1B\[2J' "$d/err"; then
  ok "escape: a usage error escapes the argument"
else
  fail "escape: usage error (exit $rc)"; show "$d/err"
fi

# ---- trace: memory does not grow with the attempts ----
d=$(newdir trace)
N=30000
cat > "$d/many.cfg" <<CFG
workflow: { name = "many"; };
jobs = ( { name = "a"; type = "core.sleep"; params = { duration = 0; error = "boom"; };
           retries = $N; backoff = { initial = 0; factor = 1.0; }; } );
CFG
/usr/bin/time -f %M -o "$d/rss.plain" timeout -k 2 60 "$DP" run "$d/many.cfg" -q > /dev/null 2>&1
/usr/bin/time -f %M -o "$d/rss.trace" timeout -k 2 60 "$DP" run "$d/many.cfg" -q --trace "$d/t.json" > /dev/null 2> "$d/err"; rc=$?
plain=$(tail -n 1 "$d/rss.plain"); traced=$(tail -n 1 "$d/rss.trace")
spans=$(jq '[.traceEvents[] | select(.ph == "X")] | length' "$d/t.json" 2>/dev/null)
# Held whole, each attempt took ~2 KiB (60 MiB here, 2 GiB for a million);
# streamed, the trace costs its 1 MiB buffer and one slot per job.
if [ $rc -eq 1 ] && [ "$spans" = $((N + 1)) ] && [ $((traced - plain)) -lt 16384 ]; then
  ok "trace: $((N + 1)) attempts traced in $((traced - plain)) KiB more than without --trace"
else
  fail "trace: exit $rc, spans $spans, max RSS $traced KiB with --trace, $plain KiB without"; show "$d/err"
fi

# ---- logjson: --log-format json is one JSON object per line ----
d=$(newdir logjson)
cat > "$d/mix.cfg" <<'CFG'
workflow: { name = "mix"; fail_fast = false; };
jobs = (
  { name = "ok"; type = "core.noop"; },
  { name = "flaky"; type = "core.sleep"; params = { duration = 0; error = "boom"; }; retries = 1; backoff = { initial = 0; }; },
  { name = "after"; type = "core.noop"; depends_on = [ "flaky" ]; }
);
CFG
dp run "$d/mix.cfg" --log-format json -v --json "$d/r.json" > /dev/null 2> "$d/err"; rc=$?
bad=$(jq -nR '[inputs | (try fromjson catch "BAD") | select(type != "object")] | length' "$d/err")
events=$(jq -c 'select(.event) | .event' "$d/err" 2>/dev/null | sort | uniq | tr '\n' ' ')
if [ $rc -eq 1 ] && [ "$bad" = 0 ] && [ "$events" = '"attempt_failed" "failed" "skipped" "started" "success" ' ] &&
   [ "$(jq -c 'select(.event == "started" and .job == "flaky" and .attempt == 2) | keys' "$d/err")" = \
     '["attempt","event","job","level","message","plugin","time"]' ]; then
  ok "logjson: $(wc -l < "$d/err") lines, all JSON objects; progress events: $events"
else
  fail "logjson: exit $rc, $bad lines not JSON objects, events $events"; show "$d/err"
fi

# ---- signals: temporary files go with the process ----
d=$(newdir signals)
# The job ignores SIGTERM and SIGINT for a while (its shell's pid is its
# process group: the test ends it itself).
cat > "$d/stuck.cfg" <<CFG
workflow: { name = "stuck"; };
jobs = ( { name = "a"; type = "shell.command";
           params = { command = "echo \$\$ > '$d/pid'; trap '' TERM INT; sleep 10"; kill_grace = "30s"; }; } );
CFG
for how in "INT INT" "TERM TERM" "XFSZ"; do
  rm -f "$d/pid" "$d/r.json" "$d/t.json"
  (ulimit -c 0; exec "$DP" run "$d/stuck.cfg" --json "$d/r.json" --trace "$d/t.json" --log-format json -q) \
    > /dev/null 2> "$d/err" &
  pid=$!
  i=0; while [ ! -s "$d/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  tmps=$(ls "$d" | grep -c '\.tmp\.')
  for sig in $how; do kill -s "$sig" $pid; sleep 0.3; done
  i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  kill -KILL $pid 2>/dev/null; wait $pid; rc=$?
  [ -s "$d/pid" ] && kill -s KILL -- "-$(cat "$d/pid")" 2>/dev/null
  bad=$(jq -nR '[inputs | (try fromjson catch "BAD") | select(type != "object")] | length' "$d/err")
  case $how in INT*) want=130 ;; TERM*) want=143 ;; XFSZ) want=153 ;; esac
  if [ "$tmps" -eq 2 ] && [ $rc -eq $want ] && ! tmp_left "$d" && [ "$bad" = 0 ]; then
    ok "signals: SIG$how: exit $rc, both temporary files removed, stderr all JSON"
  else
    fail "signals: SIG$how: exit $rc (want $want), temporary files before $tmps, $bad non-JSON lines"
    ls -la "$d"; show "$d/err"
  fi
done

if [ -n "$(ls "$ROOT/san")" ]; then
  fail "sanitizer reports"; cat "$ROOT"/san/*
fi
echo "$fails failure(s)"
[ $fails -eq 0 ]
