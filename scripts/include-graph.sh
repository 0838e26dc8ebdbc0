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

# foo.c, foo.h -> foo; cli/run.c -> cli.
module() {
  case $1 in
    */*) echo "${1%%/*}" ;;
    *) echo "${1%.*}" ;;
  esac
}

files=$(find . -name '*.[ch]' | sed 's#^\./##' | LC_ALL=C sort)

edges=$(
  for f in $files; do
    from=$(module "$f")
    dir=$(dirname "$f")
    sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$f" | while read -r inc; do
      # As the compiler looks: beside the including file, then in SRC_DIR.
      if [ -f "$dir/$inc" ]; then
        p=$(realpath -m --relative-to=. "$dir/$inc")
      elif [ -f "$inc" ]; then
        p=$(realpath -m --relative-to=. "$inc")
      else
        continue
      fi
      to=$(module "$p")
      [ "$to" = "$from" ] || echo "$from $to"
    done
  done | LC_ALL=C sort -u
)

# The graph: each module with what it includes.
for f in $files; do module "$f"; done | LC_ALL=C sort -u | while read -r m; do
  deps=$(awk -v m="$m" '$1 == m { printf " %s", $2 }' <<<"$edges")
  echo "$m:${deps:- -}"
done

# Functions declared in a header (a line that starts a prototype: not
# static, not a macro) and defined (a line at column 0 that is not a
# declaration) in a .c file of another module.
defs=$(
  for c in $(grep -E '\.c$' <<<"$files"); do
    { grep -vE '^[[:space:]/*]|;[[:space:]]*$' "$c" || true; } |
      sed -nE 's/^[A-Za-z][^(;=]*[^A-Za-z0-9_](dp_[A-Za-z0-9_]+)\(.*/\1/p' |
      sed "s#\$# $c#"
  done
)
strays=$(
  for h in $(grep -E '\.h$' <<<"$files"); do
    hm=$(module "$h")
    { grep -vE '^[[:space:]/*]|^(static|#|typedef|struct|enum|union|extern)\b' "$h" || true; } |
      sed -nE 's/^[^(;=]*[^A-Za-z0-9_](dp_[A-Za-z0-9_]+)\(.*/\1/p' | LC_ALL=C sort -u |
      while read -r name; do
        awk -v n="$name" '$1 == n { print $2 }' <<<"$defs" | while read -r c; do
          cm=$(module "$c")
          [ "$cm" = "$hm" ] || echo "  $h declares $name, which $c defines: declare it in $cm's own header"
        done
      done
  done
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
