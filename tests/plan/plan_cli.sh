#!/bin/sh
# plan_cli.sh DAGGERPOOL - targets, `plan` and `run --dry-run` through the
# command (issue 15), on a 13-job workflow whose every job leaves a mark
# when it runs (and one whose readiness check leaves a mark when probed):
#   1. plan: the waves, no mark left (no job, no check ran);
#   2. plan --json: its keys, counts, waves and per-job entries;
#   3. plan with targets: what they need, the rest excluded and why; a
#      target given twice counts once;
#   4. run --dry-run (text, --json PATH, --json -): the plan, no mark;
#      --dry-run with --trace refused;
#   5. run FILE JOB...: only the targets and what they need run; the JSON
#      holds only them, the summary says "N of M jobs selected";
#   6. bad targets (unknown, with and without a near name; empty; several;
#      a name with a newline; an option-looking name after --): exit 2,
#      the file named, nothing ran; for run, plan and watch;
#   7. a file with problems and a target: every problem, exit 2, nothing ran;
#   8. a failed dependency of a target: exit 1, frontiers among the selected;
#   9. names with spaces and UTF-8 as targets; graph unchanged;
#  10. watch FILE JOB --until-ready runs only the selection;
#  11. a 300-job chain: 300 waves; a target in its middle.
set -u
DP=$1
WORK=$(mktemp -d /tmp/dp_plan.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
show() { for f in "$@"; do echo "--- $f"; cat "$f"; done; }
M=$WORK/marks
mkdir "$M"
marks() { ls "$M" | sort | tr '\n' ' ' | sed 's/ $//'; }
clear_marks() { rm -f "$M"/*; }

# a -> b, c -> d -> e ; f -> g ; (g, e) -> h ; i -> j ; (j, c) -> k -> l ;
# m (a readiness check that marks when probed)
job() { # name deps
  printf '  { name = "%s"; type = "shell.command"; depends_on = [ %s ]; params = { command = "touch %s/%s"; }; },\n' \
    "$1" "$2" "$M" "$1"
}
{
  echo 'workflow: { name = "w13"; max_concurrent_jobs = 3; };'
  echo 'jobs = ('
  job a ''
  job b '"a"'
  job c '"a"'
  job d '"b", "c"'
  job e '"d"'
  job f ''
  job g '"f"'
  job h '"g", "e"'
  job i ''
  job j '"i"'
  job k '"j", "c"'
  job l '"k"'
  printf '  { name = "m"; type = "shell.command"; depends_on = [ "l" ]; params = { command = "touch %s/m"; check = "touch %s/m.check"; }; }\n' "$M" "$M"
  echo ');'
} >"$WORK/w.cfg"
W=$WORK/w.cfg

# ---- 1. plan ----
"$DP" plan "$W" >"$WORK/p.out" 2>"$WORK/p.err"
rc=$?
cat >"$WORK/p.want" <<'EOF'
workflow w13: 13 of 13 jobs would run, in 5 waves

wave 1: a, f, i
wave 2: b, c, g, j
wave 3: d, k
wave 4: e, l
wave 5: h, m
EOF
if [ $rc -eq 0 ] && [ "$(marks)" = "" ] && [ ! -s "$WORK/p.err" ] && cmp -s "$WORK/p.out" "$WORK/p.want"; then
  ok "plan: waves, nothing ran (no job, no readiness check)"
else
  fail "plan (exit $rc, marks '$(marks)')"; show "$WORK/p.out" "$WORK/p.err"
fi

# ---- 2. plan --json ----
"$DP" plan "$W" --json >"$WORK/p.json" 2>"$WORK/p.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(marks)" = "" ] &&
   [ "$(jq -c 'keys_unsorted' "$WORK/p.json")" = '["workflow","targets","total","run","reused","excluded","waves","jobs"]' ] &&
   [ "$(jq -c '[.workflow,.targets,.total,.run,.reused,.excluded]' "$WORK/p.json")" = '["w13",[],13,13,0,0]' ] &&
   [ "$(jq -c '.waves' "$WORK/p.json")" = '[["a","f","i"],["b","c","g","j"],["d","k"],["e","l"],["h","m"]]' ] &&
   [ "$(jq -c '.jobs.k' "$WORK/p.json")" = '{"action":"run","wave":3,"target":false,"reason":null}' ] &&
   [ "$(jq '.jobs | length' "$WORK/p.json")" = 13 ]; then
  ok "plan --json: keys, counts, waves, jobs"
else
  fail "plan --json (exit $rc)"; show "$WORK/p.json" "$WORK/p.err"
fi
# The text's waves and the JSON's agree.
jq -r '.waves | to_entries[] | "wave \(.key + 1): \(.value | join(", "))"' "$WORK/p.json" >"$WORK/waves.json.txt"
grep '^wave ' "$WORK/p.out" >"$WORK/waves.txt"
cmp -s "$WORK/waves.txt" "$WORK/waves.json.txt" && ok "plan: text and JSON waves agree" ||
  { fail "plan: text and JSON waves differ"; show "$WORK/waves.txt" "$WORK/waves.json.txt"; }

# ---- 3. plan with targets ----
"$DP" plan "$W" e k e >"$WORK/t.out" 2>"$WORK/t.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(marks)" = "" ] &&
   head -2 "$WORK/t.out" | cmp -s - - <<'EOF'
workflow w13: 8 of 13 jobs would run, in 4 waves; 5 not needed by the targets
targets: e, k (and what they depend on)
EOF
then
  if grep -qx "not needed by the targets: f, g, h, l, m" "$WORK/t.out" && grep -qx "wave 1: a, i" "$WORK/t.out" &&
     grep -qx "wave 4: e" "$WORK/t.out"; then
    ok "plan e k e: the targets once, what they need, the rest excluded"
  else
    fail "plan e k e: lists"; show "$WORK/t.out"
  fi
else
  fail "plan e k e (exit $rc)"; show "$WORK/t.out" "$WORK/t.err"
fi
"$DP" plan --json "$W" k k >"$WORK/t.json" 2>"$WORK/t.err"
if [ "$(jq -c '[.targets,.run,.excluded,.jobs.k.target,.jobs.a.target,.jobs.h.action,.jobs.h.reason,.jobs.h.wave]' "$WORK/t.json")" = \
     '[["k"],5,8,true,false,"excluded","not needed by the targets",null]' ]; then
  ok "plan --json k k: one target, excluded with the reason"
else
  fail "plan --json k k"; show "$WORK/t.json" "$WORK/t.err"
fi

# ---- 4. run --dry-run ----
"$DP" run --dry-run "$W" e >"$WORK/d.out" 2>"$WORK/d.err"
rc=$?
"$DP" plan "$W" e >"$WORK/d.want" 2>/dev/null
if [ $rc -eq 0 ] && [ "$(marks)" = "" ] && cmp -s "$WORK/d.out" "$WORK/d.want"; then
  ok "run --dry-run: the plan's text, nothing ran"
else
  fail "run --dry-run (exit $rc, marks '$(marks)')"; show "$WORK/d.out" "$WORK/d.err"
fi
"$DP" run --dry-run "$W" e --json "$WORK/d.json" >/dev/null 2>"$WORK/d.err"
rc=$?
"$DP" plan "$W" e --json >"$WORK/d.json.want" 2>/dev/null
if [ $rc -eq 0 ] && [ "$(marks)" = "" ] && cmp -s "$WORK/d.json" "$WORK/d.json.want"; then
  ok "run --dry-run --json PATH: the plan's JSON"
else
  fail "run --dry-run --json PATH (exit $rc)"; show "$WORK/d.json" "$WORK/d.err"
fi
"$DP" run --dry-run "$W" --json - >"$WORK/d2.json" 2>"$WORK/d2.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(jq .run "$WORK/d2.json")" = 13 ] && grep -q '^wave 1: a, f, i$' "$WORK/d2.err" &&
   [ "$(marks)" = "" ]; then
  ok "run --dry-run --json -: JSON on stdout, the text on stderr"
else
  fail "run --dry-run --json - (exit $rc)"; show "$WORK/d2.json" "$WORK/d2.err"
fi
"$DP" run --dry-run "$W" --trace "$WORK/tr.json" >/dev/null 2>"$WORK/d3.err"
rc=$?
if [ $rc -eq 2 ] && grep -q -- "--trace has nothing to trace with --dry-run" "$WORK/d3.err" && [ ! -e "$WORK/tr.json" ]; then
  ok "run --dry-run --trace: refused"
else
  fail "run --dry-run --trace (exit $rc)"; show "$WORK/d3.err"
fi

# ---- 5. run with targets ----
"$DP" run "$W" e k e --json "$WORK/r.json" -q >"$WORK/r.out" 2>"$WORK/r.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(marks)" = "a b c d e i j k" ] &&
   [ "$(jq -c '.jobs | keys' "$WORK/r.json")" = '["a","b","c","d","e","i","j","k"]' ] &&
   [ "$(jq -r .outcome "$WORK/r.json")" = success ] &&
   [ "$(head -1 "$WORK/r.out")" = "8 of 13 jobs selected: the targets e, k and what they depend on" ] &&
   grep -q "^workflow w13: success in .* (8 jobs: 8 success)$" "$WORK/r.out" && ! grep -q " reused" "$WORK/r.out" &&
   ! jq -e '.jobs[] | has("reused")' "$WORK/r.json" >/dev/null; then
  ok "run e k e: only the selection ran; JSON and summary hold only it"
else
  fail "run e k e (exit $rc, marks '$(marks)')"; show "$WORK/r.out" "$WORK/r.err" "$WORK/r.json"
fi
clear_marks
"$DP" run "$W" h -q >"$WORK/r2.out" 2>"$WORK/r2.err"
rc=$?
[ $rc -eq 0 ] && [ "$(marks)" = "a b c d e f g h" ] &&
  [ "$(head -1 "$WORK/r2.out")" = "8 of 13 jobs selected: the target h and what they depend on" ] &&
  ok "run h: h and what it needs" || { fail "run h (exit $rc, marks '$(marks)')"; show "$WORK/r2.out" "$WORK/r2.err"; }
clear_marks
# Every job as a target: the whole workflow, m's check probed once.
"$DP" run "$W" a b c d e f g h i j k l m -q >"$WORK/r3.out" 2>"$WORK/r3.err"
rc=$?
[ $rc -eq 0 ] && [ "$(marks)" = "a b c d e f g h i j k l m m.check" ] &&
  [ "$(head -1 "$WORK/r3.out" | cut -c1-26)" = "13 of 13 jobs selected: th" ] &&
  ok "run with every job as a target: all ran" || { fail "run all targets (exit $rc, marks '$(marks)')"; show "$WORK/r3.out" "$WORK/r3.err"; }
clear_marks

# ---- 6. bad targets ----
for cmd in run plan watch; do
  timeout 60 "$DP" $cmd "$W" a ee >"$WORK/b.out" 2>"$WORK/b.err"
  rc=$?
  if [ $rc -eq 2 ] && [ "$(marks)" = "" ] && [ ! -s "$WORK/b.out" ] &&
     grep -qxF "daggerpool $cmd: $W: no job 'ee' to run as a target; did you mean 'e'?" "$WORK/b.err"; then
    ok "$cmd a ee: exit 2, the file named, did you mean, nothing ran"
  else
    fail "$cmd a ee (exit $rc, marks '$(marks)')"; show "$WORK/b.out" "$WORK/b.err"
  fi
done
# A near name is suggested; a far one points at plan.
"$DP" run "$W" kk zzzzzzzz "" >"$WORK/b.out" 2>"$WORK/b.err"
rc=$?
if [ $rc -eq 2 ] && [ "$(marks)" = "" ] &&
   grep -qF "daggerpool run: $W: no job 'kk' to run as a target; did you mean 'k'?" "$WORK/b.err" &&
   grep -qF "daggerpool run: $W: no job 'zzzzzzzz' to run as a target; name jobs of the file ('daggerpool plan $W' lists them)" "$WORK/b.err" &&
   grep -qF "daggerpool run: $W: an empty job name given as a target; name a job of the file" "$WORK/b.err" &&
   [ "$(wc -l <"$WORK/b.err")" -eq 3 ] && [ ! -s "$WORK/b.out" ]; then
  ok "run kk zzzzzzzz '': every bad target reported, did you mean, nothing ran"
else
  fail "run with three bad targets (exit $rc)"; show "$WORK/b.out" "$WORK/b.err"
fi
# A name with a newline and an escape: one line, escaped.
"$DP" plan "$W" "$(printf 'e\nforged line \033[31m')" >"$WORK/b.out" 2>"$WORK/b.err"
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$WORK/b.err")" -eq 1 ] && grep -qF "no job 'e\\nforged line \\x1B[31m'" "$WORK/b.err"; then
  ok "plan with a newline in a target: escaped on one line"
else
  fail "plan with a hostile target (exit $rc)"; show "$WORK/b.err"
fi
# An option-looking name after --: a target, unknown.
"$DP" run "$W" -- -e >"$WORK/b.out" 2>"$WORK/b.err"
rc=$?
[ $rc -eq 2 ] && grep -qF "no job '-e' to run as a target" "$WORK/b.err" && [ "$(marks)" = "" ] &&
  ok "run -- -e: a target named -e, unknown" || { fail "run -- -e (exit $rc)"; show "$WORK/b.err"; }

# ---- 7. a file with problems, and a target ----
sed -e 's/depends_on = \[ "f" \]/depends_on = [ "ff" ]/' -e 's/name = "i"; type = "shell.command"; depends_on = \[  \]; params = {/name = "i"; type = "shell.command"; depends_on = [  ]; params = { bogus = 1;/' \
  "$W" >"$WORK/bad.cfg"
for cmd in run plan; do
  "$DP" $cmd "$WORK/bad.cfg" a >"$WORK/bad.out" 2>"$WORK/bad.err"
  rc=$?
  if [ $rc -eq 2 ] && [ "$(marks)" = "" ] && grep -q "depends on 'ff'" "$WORK/bad.err" && grep -q "bogus" "$WORK/bad.err"; then
    ok "$cmd bad.cfg a: every problem of the file (not only the target's), exit 2, nothing ran"
  else
    fail "$cmd bad.cfg a (exit $rc)"; show "$WORK/bad.err"
  fi
done

# ---- 8. a failed dependency of a target ----
sed 's|touch '"$M"'/c"|touch '"$M"'/c; exit 3"|' "$W" >"$WORK/fail.cfg"
"$DP" run "$WORK/fail.cfg" k --keep-going --json "$WORK/f.json" -q >"$WORK/f.out" 2>"$WORK/f.err"
rc=$?
if [ $rc -eq 1 ] && [ "$(jq -c '.jobs | keys' "$WORK/f.json")" = '["a","c","i","j","k"]' ] &&
   [ "$(jq -c '[.frontiers[].job]' "$WORK/f.json")" = '["c"]' ] &&
   [ "$(jq -c '.frontiers[0].subtree' "$WORK/f.json")" = '["c","k"]' ] &&
   [ "$(jq -r .jobs.c.status "$WORK/f.json")" = failed ]; then
  ok "run k --keep-going with c failing: exit 1, frontiers among the selected"
else
  fail "run k with c failing (exit $rc)"; show "$WORK/f.json" "$WORK/f.err"
fi
clear_marks

# ---- 9. names with spaces and UTF-8; graph ----
cat >"$WORK/names.cfg" <<EOF
workflow: { name = "names"; };
jobs = (
  { name = "déploy site"; type = "shell.command"; depends_on = [ "build all" ]; params = { command = "touch $M/deploy"; }; },
  { name = "build all"; type = "shell.command"; params = { command = "touch $M/build"; }; },
  { name = "other"; type = "shell.command"; params = { command = "touch $M/other"; }; },
  { name = "n1"; type = "core.noop"; }, { name = "n2"; type = "core.noop"; depends_on = [ "n1" ]; },
  { name = "n3"; type = "core.noop"; depends_on = [ "n2" ]; }, { name = "n4"; type = "core.noop"; depends_on = [ "n3" ]; },
  { name = "n5"; type = "core.noop"; }, { name = "n6"; type = "core.noop"; }, { name = "n7"; type = "core.noop"; }
);
EOF
"$DP" run "$WORK/names.cfg" "déploy site" --json - -q >"$WORK/n.json" 2>"$WORK/n.err"
rc=$?
[ $rc -eq 0 ] && [ "$(marks)" = "build deploy" ] && [ "$(jq -c '.jobs | keys' "$WORK/n.json")" = '["build all","déploy site"]' ] &&
  grep -q "^2 of 10 jobs selected: the target déploy site and what they depend on$" "$WORK/n.err" &&
  ok "run 'déploy site': names with spaces and UTF-8" || { fail "run 'déploy site' (exit $rc)"; show "$WORK/n.json" "$WORK/n.err"; }
clear_marks
"$DP" graph "$W" >"$WORK/g.dot" 2>"$WORK/g.err"
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c -- '->' "$WORK/g.dot")" -eq 13 ] && ok "graph: unchanged (13 edges)" ||
  { fail "graph (exit $rc)"; show "$WORK/g.dot" "$WORK/g.err"; }

# ---- 10. watch with a target ----
timeout 60 "$DP" watch "$W" e --until-ready -q >"$WORK/w.out" 2>"$WORK/w.err"
rc=$?
[ $rc -eq 0 ] && [ "$(marks)" = "a b c d e" ] && grep -q "(5 jobs: 5 success)" "$WORK/w.out" &&
  ok "watch e --until-ready: only e and what it needs" || { fail "watch e (exit $rc, marks '$(marks)')"; show "$WORK/w.out" "$WORK/w.err"; }
clear_marks

# ---- 11. a 300-job chain ----
{
  echo 'workflow: { name = "chain"; };'
  echo 'jobs = ('
  i=1
  while [ $i -le 300 ]; do
    if [ $i -eq 1 ]; then dep=''; else dep="\"j$((i - 1))\""; fi
    sep=','; [ $i -eq 300 ] && sep=''
    printf '  { name = "j%d"; type = "core.noop"; depends_on = [ %s ]; }%s\n' $i "$dep" "$sep"
    i=$((i + 1))
  done
  echo ');'
} >"$WORK/chain.cfg"
"$DP" plan "$WORK/chain.cfg" --json >"$WORK/c.json" 2>"$WORK/c.err"
rc=$?
"$DP" plan "$WORK/chain.cfg" j150 >"$WORK/c.out" 2>>"$WORK/c.err"
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(jq '.waves | length' "$WORK/c.json")" = 300 ] &&
   [ "$(jq -r '.waves[299][0]' "$WORK/c.json")" = j300 ] &&
   head -1 "$WORK/c.out" | grep -qx "workflow chain: 150 of 300 jobs would run, in 150 waves; 150 not needed by the targets"; then
  ok "a 300-job chain: 300 waves; j150 needs 150 jobs"
else
  fail "chain (exit $rc $rc2)"; head -3 "$WORK/c.out"; cat "$WORK/c.err"
fi

# Pools, priorities and trigger rules: the plan shows what `graph` shows
# (issue 16), in the text and, only where set, in the JSON.
cat >"$WORK/sched.cfg" <<'CFG'
pools = { db = 2; gpu = 1; };
jobs = (
  { name = "a"; type = "core.noop"; pool = "db"; },
  { name = "b"; type = "core.noop"; pool = "db"; pool_slots = 2; priority = 5; depends_on = ["a"]; },
  { name = "c"; type = "core.noop"; depends_on = ["b"]; continue_on_failure = true; },
  { name = "d"; type = "core.noop"; depends_on = ["c"]; run_if = "all_done"; },
  { name = "e"; type = "core.noop"; depends_on = ["a"]; }
);
CFG
"$DP" plan "$WORK/sched.cfg" >"$WORK/s.out" 2>"$WORK/s.err"
rc=$?
"$DP" plan "$WORK/sched.cfg" --json >"$WORK/s.json" 2>>"$WORK/s.err"
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && grep -qx "pools: db = 2, gpu = 1" "$WORK/s.out" &&
   grep -qx "  b: pool db (2 slots), priority 5" "$WORK/s.out" &&
   grep -qx "  c: continue_on_failure" "$WORK/s.out" && grep -qx "  d: run_if all_done" "$WORK/s.out" &&
   ! grep -q "^  e:" "$WORK/s.out" &&
   [ "$(jq -c '.pools' "$WORK/s.json")" = '{"db":2,"gpu":1}' ] &&
   [ "$(jq -c '.jobs.b | [.pool, .pool_slots, .priority]' "$WORK/s.json")" = '["db",2,5]' ] &&
   [ "$(jq -r '.jobs.d.run_if' "$WORK/s.json")" = all_done ] &&
   [ "$(jq -r '.jobs.c.continue_on_failure' "$WORK/s.json")" = true ] &&
   [ "$(jq -c '.jobs.e | keys' "$WORK/s.json")" = '["action","reason","target","wave"]' ] &&
   [ "$(jq 'has("pools")' "$WORK/c.json")" = false ]; then
  ok "pools, priorities and rules in the plan (text and JSON, only where set)"
else
  fail "pools and rules in the plan (exit $rc $rc2)"; show "$WORK/s.out" "$WORK/s.err"
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
