#!/usr/bin/env bash
# Prints the include graph of host/src, module by module, and fails (exit 1)
# when it has a cycle, printing the modules on it:
#   scripts/include-graph.sh [SRC_DIR]        (default host/src)
# A module is a .c file and its private header (pool.c + pool.h: "pool"; the
# files of a subfolder, such as cli/, are one module), so two modules that
# include each other's headers are a cycle even though no header includes
# itself. For the graph to say who calls whom, a header must declare only
# functions of its own module: the script also fails when a header declares
# a function that another module's .c defines (pool.h once declared job.c's
# and result.c's functions, and pool.c, job.c and result.c called each
# other in a circle through it). Only quoted includes that name a file
# under SRC_DIR count (the public headers under host/include and
# sdk/include include nothing of host/src).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:-$root/host/src}" && pwd)
cd "$src"

# The awk function that names a file's module: foo.c, foo.h -> foo;
# cli/run.c -> cli. Everything below runs a fixed number of processes, not
# some per include or per function (the per-include version took ~50 s).
module_awk='function module(p) { if (index(p, "/")) return substr(p, 1, index(p, "/") - 1); sub(/\.[^.]*$/, "", p); return p }'

files=$(find . -name '*.[ch]' | sed 's#^\./##' | LC_ALL=C sort)

# "FROM TO" per module FROM whose files include a header of module TO. An
# include is looked up as the compiler does: beside the including file,
# then in SRC_DIR; one that names no file of SRC_DIR does not count.
# shellcheck disable=SC2086
edges=$(
  awk -v list="$files" "$module_awk"'
    function norm(p,   n, a, i, k, st, out) {
      n = split(p, a, "/"); k = 0
      for (i = 1; i <= n; i++) {
        if (a[i] == "" || a[i] == ".") continue
        if (a[i] == "..") { if (k > 0 && st[k] != "..") k--; else st[++k] = ".."; continue }
        st[++k] = a[i]
      }
      out = ""
      for (i = 1; i <= k; i++) out = out (i > 1 ? "/" : "") st[i]
      return out
    }
    BEGIN { n = split(list, l, "\n"); for (i = 1; i <= n; i++) have[l[i]] = 1 }
    FNR == 1 { from = module(FILENAME); dir = FILENAME; if (!sub(/\/[^\/]*$/, "", dir)) dir = "." }
    /^[[:space:]]*#[[:space:]]*include[[:space:]]+"/ {
      inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
      p = norm(dir "/" inc)
      if (!(p in have)) { p = norm(inc); if (!(p in have)) next }
      to = module(p)
      if (to != from) print from, to
    }' $files | LC_ALL=C sort -u
)

# The graph: each module with what it includes.
printf '%s\n' "$files" | awk "$module_awk"'
  NR == FNR { if ($0 != "") deps[module($0)] = deps[module($0)]; next }
  { deps[$1] = deps[$1] " " $2 }
  END { for (m in deps) print m ":" (deps[m] == "" ? " -" : deps[m]) }' - <(printf '%s\n' "$edges") |
  LC_ALL=C sort -t: -k1,1

# Functions declared in a header (a line that starts a prototype: not
# static, not a macro) and defined (a line at column 0 that is not a
# declaration) in a .c file of another module: the .c files are read first.
# shellcheck disable=SC2046  # file names without spaces (find above)
strays=$(
  awk "$module_awk"'
    # The name of the dp_ function a line declares or defines ("" if none):
    # the identifier just before the first "(", in text with no ";" or "=".
    function fname(line, first,   p, pre) {
      p = index(line, "(")
      if (!p) return ""
      pre = substr(line, 1, p - 1)
      if (pre !~ (first "[^;=]*[^A-Za-z0-9_]dp_[A-Za-z0-9_]+$")) return ""
      sub(/.*[^A-Za-z0-9_]/, "", pre)
      return pre
    }
    FILENAME ~ /\.c$/ {
      if ($0 ~ /^[[:space:]\/*]/ || $0 ~ /;[[:space:]]*$/) next
      if ((n = fname($0, "^[A-Za-z]")) != "") def[n] = def[n] " " FILENAME
      next
    }
    {
      if ($0 ~ /^[[:space:]\/*#]/ || $0 ~ /^(static|typedef|struct|enum|union|extern)([^A-Za-z0-9_]|$)/) next
      if ((n = fname($0, "^")) != "" && !((FILENAME, n) in seen)) { seen[FILENAME, n] = 1; decl[++nd] = FILENAME " " n }
    }
    END {
      for (d = 1; d <= nd; d++) {
        split(decl[d], hn, " ")
        n = split(def[hn[2]], cs, " ")
        for (i = 1; i <= n; i++)
          if (module(cs[i]) != module(hn[1]))
            print "  " hn[1] " declares " hn[2] ", which " cs[i] " defines: declare it in " module(cs[i]) "\047s own header"
      }
    }' $(grep -E '\.c$' <<<"$files") $(grep -E '\.h$' <<<"$files")
)

# tsort names the modules of a loop on stderr ("tsort: input contains a
# loop:" then one line each); an acyclic graph sorts silently.
if ! err=$( (tsort <<<"${edges:-x x}" >/dev/null) 2>&1) || [ -n "$err" ]; then
  echo "include-graph: cycle among the modules of $src:" >&2
  sed -nE 's/^tsort: ([^:]+)$/  \1/p' <<<"$err" | grep -v '^  -$' >&2 || true
  echo "include-graph: break it: the lower module must not include the higher one's header" \
       "(move the shared type down, or pass a callback)" >&2
  exit 1
fi
if [ -n "$strays" ]; then
  echo "include-graph: headers that declare other modules' functions (the graph above hides these calls):" >&2
  echo "$strays" >&2
  exit 1
fi
echo "include-graph: no cycle"
