#!/usr/bin/env bash
# scripts/include-graph.sh on small made-up source trees: it passes a tree
# without cycle, and fails, naming the modules, on an include cycle between
# two modules and on a header that declares another module's function.
#   include_graph_selftest.sh PATH/TO/include-graph.sh
set -euo pipefail
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "include_graph_selftest: $*" >&2; exit 1; }

# Clean: a.c -> b.h, b.c -> c.h, cli/x.c -> a.h (a folder is one module).
mkdir -p "$tmp/ok/cli"
printf '#include "a.h"\n#include "b.h"\nint dp__a(void) { return 0; }\n' >"$tmp/ok/a.c"
printf 'int dp__a(void);\n' >"$tmp/ok/a.h"
printf '#include "b.h"\n#include "c.h"\n' >"$tmp/ok/b.c"
printf '#include "c.h"\n' >"$tmp/ok/b.h"
: >"$tmp/ok/c.h"
printf '#include "cli.h"\n#include "a.h"\n' >"$tmp/ok/cli/x.c"
: >"$tmp/ok/cli/cli.h"
out=$(bash "$script" "$tmp/ok") || fail "a tree without cycle was refused: $out"
grep -qx 'a: b' <<<"$out" || fail "the graph lacks 'a: b': $out"
grep -qx 'cli: a' <<<"$out" || fail "the graph lacks 'cli: a': $out"

# An include cycle: a includes b's header, b includes a's.
cp -r "$tmp/ok" "$tmp/cycle"
printf '#include "a.h"\n' >>"$tmp/cycle/b.c"
if err=$(bash "$script" "$tmp/cycle" 2>&1 >/dev/null); then
  fail "a cycle a -> b -> a was not found"
fi
grep -q 'cycle' <<<"$err" && grep -qx '  a' <<<"$err" && grep -qx '  b' <<<"$err" ||
  fail "the message does not name the cycle's modules: $err"

# A header that declares another module's function (the calls it hides
# would close a circle): c.h declares dp__a, which a.c defines.
cp -r "$tmp/ok" "$tmp/stray"
printf 'int dp__a(void);\n' >>"$tmp/stray/c.h"
if err=$(bash "$script" "$tmp/stray" 2>&1 >/dev/null); then
  fail "c.h declaring a.c's dp__a was not found"
fi
grep -q 'c.h declares dp__a, which a.c defines' <<<"$err" || fail "unexpected message: $err"
echo "include_graph_selftest: ok"
