#!/bin/sh
# pools_priorities.sh DAGGERPOOL WORK - pools and priorities through the
# command:
#   1. validate refuses an unknown pool (with the nearest name), more
#      pool_slots than the pool has, pool_slots without a pool, a pool of 0
#      slots and a priority that is no integer: each at its FILE:LINE, exit 2;
#   2. a pool of 2 slots bounds its 12 jobs at -j 6 while 4 others run
#      beside them; the JSON result has pool, pool_slots, pool_wait_ms
#      (some > 0) and priority where set, and no such key elsewhere;
#   3. -j 1: jobs start by priority, then longest path (a, whose successor
#      f has priority 1, before d of the same priority 0), a job of a
#      higher priority gets the pool's slot first (e before d);
#   4. -j 2, no pool and no priority: the head of a long chain starts
#      first although 8 short jobs come before it by name (critical path
#      first; first come first served started them first);
#   5. `graph` (DOT, Mermaid) shows the pools and priorities; the trace
#      has the pool waits on a track of the pool;
#   6. a workflow without pools or priorities: no new key in its JSON.
set -u
DP=$1 WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
cd "$WORK" || exit 1

# 1. validate
cat >bad.cfg <<'CFG'
pools = { db = 2; gpu = 0; };
jobs = (
  { name = "a"; type = "core.noop"; pool = "dbb"; },
  { name = "b"; type = "core.noop"; pool = "db"; pool_slots = 3; },
  { name = "c"; type = "core.noop"; pool_slots = 1; },
  { name = "d"; type = "core.noop"; priority = "high"; },
  { name = "e"; type = "core.noop"; pool = "nope"; }
);
CFG
"$DP" validate bad.cfg >out 2>err
rc=$?
[ $rc -eq 2 ] && ok "validate refuses: exit 2" || fail "validate exit $rc, expected 2"
for want in \
  'bad.cfg:1: pools.gpu (its slots) must be between 1 and 1000000, found 0' \
  "bad.cfg:3: 'pool' of job 'a' names pool \"dbb\", which is not declared; did you mean \"db\"?" \
  "bad.cfg:4: 'pool_slots' of job 'b' is 3, but pool \"db\" has 2 slots: the job could never start; lower pool_slots to at most 2" \
  "bad.cfg:5: job 'c' has pool_slots but no pool; add pool = \"NAME\";" \
  "bad.cfg:6: 'priority' of job 'd' must be an integer from -1000000 to 1000000, found a string" \
  "bad.cfg:7: 'pool' of job 'e' names pool \"nope\", which is not declared; declare it at the top level"; do
  grep -qF "$want" err && ok "says: $want" || { fail "missing: $want"; cat err; }
done

# 2. a pool's bound. Each job appends "+NAME" when it starts and "-NAME"
# when it ends (one short write each: appends do not interleave).
{
  echo 'workflow = { name = "pools"; max_concurrent_jobs = 6; };'
  echo 'pools = { db = 2; };'
  echo 'jobs = ('
  i=0
  while [ $i -lt 12 ]; do
    echo "  { name = \"db$i\"; type = \"shell.command\"; pool = \"db\"; priority = $((i % 3)); params = { command = \"echo +db >>log; sleep 0.1; echo -db >>log\"; }; },"
    i=$((i + 1))
  done
  i=0
  while [ $i -lt 4 ]; do
    echo "  { name = \"free$i\"; type = \"shell.command\"; params = { command = \"echo +free >>log; sleep 0.3; echo -free >>log\"; }; },"
    i=$((i + 1))
  done
  echo '  { name = "last"; type = "core.noop"; depends_on = ["db11"]; }'
  echo ');'
} >pools.cfg
rm -f log
"$DP" run -q pools.cfg --json pools.json >/dev/null 2>err
rc=$?
[ $rc -eq 0 ] && ok "pools run: exit 0" || { fail "pools run exit $rc"; cat err; }
most=$(awk '$1=="+db"{n++; if(n>m)m=n} $1=="-db"{n--} END{print m+0}' log)
all=$(awk '/^\+/{n++; if(n>m)m=n} /^-/{n--} END{print m+0}' log)
[ "$most" -eq 2 ] && ok "at most 2 db jobs at once" || fail "db jobs at once: $most (expected 2)"
[ "$all" -gt 2 ] && ok "the other jobs ran beside them ($all at once)" || fail "at most $all jobs at once"
waited=$(jq '[.jobs[] | select(.pool == "db") | .pool_wait_ms] | map(select(. > 0)) | length' pools.json)
[ "$waited" -ge 8 ] && ok "$waited db jobs waited for the pool" || fail "db jobs that waited: $waited"
jq -e '.jobs.db4 | .pool == "db" and .pool_slots == 1 and (.pool_wait_ms | type) == "number" and .priority == 1' \
  pools.json >/dev/null && ok "db4 has pool, pool_slots, pool_wait_ms, priority" || fail "db4: $(jq -c .jobs.db4 pools.json)"
jq -e '.jobs.db3 | has("priority") | not' pools.json >/dev/null && ok "priority 0 is not written" || fail "db3 has priority"
jq -e '.jobs.free0 | (has("pool") or has("pool_wait_ms") or has("priority")) | not' pools.json >/dev/null &&
  ok "free0 has no pool keys" || fail "free0: $(jq -c .jobs.free0 pools.json)"

# 3. -j 1: priorities, and the pool's slot to the highest first.
cat >prio.cfg <<'CFG'
workflow = { max_concurrent_jobs = 1; };
pools = { one = 1; };
jobs = (
  { name = "a"; type = "shell.command"; params = { command = "echo a >>order"; }; },
  { name = "b"; type = "shell.command"; priority = 5; params = { command = "echo b >>order"; }; },
  { name = "c"; type = "shell.command"; priority = -2; params = { command = "echo c >>order"; }; },
  { name = "d"; type = "shell.command"; pool = "one"; params = { command = "echo d >>order"; }; },
  { name = "e"; type = "shell.command"; pool = "one"; priority = 9; params = { command = "echo e >>order"; }; },
  { name = "f"; type = "shell.command"; priority = 1; depends_on = ["a"]; params = { command = "echo f >>order"; }; }
);
CFG
rm -f order
"$DP" run -q prio.cfg >/dev/null 2>err || { fail "prio run failed"; cat err; }
got=$(tr '\n' ' ' <order)
[ "$got" = "e b a f d c " ] && ok "priority order: $got" || fail "priority order: $got (expected e b a f d c)"

# 4. -j 2: the chain's head first.
{
  echo 'workflow = { max_concurrent_jobs = 2; };'
  echo 'jobs = ('
  i=0
  while [ $i -lt 8 ]; do
    echo "  { name = \"a_short$i\"; type = \"shell.command\"; params = { command = \"echo a_short$i >>starts; sleep 0.05\"; }; },"
    i=$((i + 1))
  done
  i=0
  while [ $i -lt 6 ]; do
    dep=""
    [ $i -gt 0 ] && dep="depends_on = [\"chain$((i - 1))\"];"
    echo "  { name = \"chain$i\"; type = \"shell.command\"; $dep params = { command = \"echo chain$i >>starts; sleep 0.05\"; }; },"
    i=$((i + 1))
  done
  echo '  { name = "z"; type = "core.noop"; }'
  echo ');'
} >chain.cfg
rm -f starts
"$DP" run -q chain.cfg >/dev/null 2>err || { fail "chain run failed"; cat err; }
head -2 starts | grep -qx chain0 && ok "the chain's head started first ($(head -2 starts | tr '\n' ' '))" ||
  fail "first two starts: $(head -2 starts | tr '\n' ' ') (expected chain0 among them)"

# 5. graph and trace
"$DP" graph pools.cfg >g.dot 2>err || fail "graph failed"
grep -qF 'label="pools: db=2";' g.dot && ok "DOT names the pools" || { fail "DOT lacks the pools"; head -8 g.dot; }
grep -qF '"db4" [label="db4\nshell.command\npool db\npriority 1"];' g.dot && ok "DOT: db4's pool and priority" ||
  { fail "DOT node db4"; grep db4 g.dot; }
"$DP" graph --format mermaid pools.cfg 2>err | grep -qF 'db4<br/>shell.command<br/>pool db<br/>priority 1' &&
  ok "Mermaid: db4's pool and priority" || fail "Mermaid node db4"
"$DP" run -q pools.cfg --trace trace.json >/dev/null 2>err || fail "run --trace failed"
n=$(jq '[.traceEvents[] | select(.cat == "pool_wait")] | length' trace.json)
[ "$n" -ge 8 ] && ok "trace: $n pool waits" || fail "trace pool waits: $n"
jq -e '[.traceEvents[] | select(.ph == "M" and .args.name == "pool db")] | length == 1' trace.json >/dev/null &&
  ok "trace: a track named pool db" || fail "trace: no track for pool db"

# 6. no pools, no priorities: no new key
cat >plain.cfg <<'CFG'
jobs = (
  { name = "a"; type = "core.noop"; },
  { name = "b"; type = "core.noop"; depends_on = ["a"]; }
);
CFG
"$DP" run -q plain.cfg --json plain.json >/dev/null 2>&1
jq -e '[.jobs[] | keys[]] | unique == ["attempts","duration_ms","error","plugin","plugin_version","start_ms","status"]' \
  plain.json >/dev/null && ok "plain JSON keys unchanged" || fail "plain JSON keys: $(jq -c '[.jobs[] | keys[]] | unique' plain.json)"
"$DP" graph plain.cfg | grep -q 'pool' && fail "plain graph mentions pools" || ok "plain graph has no pools"

[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
[ $fails -eq 0 ]
