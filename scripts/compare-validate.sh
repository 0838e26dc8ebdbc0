#!/bin/sh
# compare-validate.sh OLD NEW [COUNT] [SEED]
#
# Runs `validate` and `graph` of two builds of the daggerpool command (OLD,
# NEW: their bin/daggerpool) on the same workflow files and compares stdout,
# stderr and the exit code, byte for byte (each build's own directory, as it
# appears in plugin paths, replaced by <build>). The files: conf/*.cfg, the
# tests' .cfg files, and COUNT (default 2000) mutations of them made by
# scripts/mutate-workflows.py with SEED (default 14: the same files every
# time); then the hostile workflow files of tests/hostile/files.sh, whose
# every `validate` runs on both builds. Says how many were compared and
# shows each difference; exit 0 when there was none.
#
#   scripts/compare-validate.sh ../base/build/release/bin/daggerpool build/release/bin/daggerpool
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD NEW [COUNT] [SEED]" >&2; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2") COUNT=${3:-2000} SEED=${4:-14}
root=$(cd "$(dirname "$0")/.." && pwd)
OLDB=$(dirname "$(dirname "$OLD")") NEWB=$(dirname "$(dirname "$NEW")")
TOP=$(mktemp -d "${TMPDIR:-/tmp}/dp-compare.XXXXXX")
trap 'rm -rf "$TOP"' EXIT
export LC_ALL=C

# compare DIR WHAT CMD ARGS...: runs CMD ARGS in DIR with both builds.
compared=0 differ=0
compare() {
  dir=$1 what=$2
  shift 2
  for b in old new; do
    [ $b = old ] && dp=$OLD || dp=$NEW
    (cd "$dir" && timeout 60 "$dp" "$@" >"$TOP/$b.out" 2>"$TOP/$b.err" </dev/null; echo $? >"$TOP/$b.rc")
    for f in out err; do
      sed -e "s|$OLDB|<build>|g" -e "s|$NEWB|<build>|g" "$TOP/$b.$f" >"$TOP/$b.$f.n"
    done
  done
  compared=$((compared + 1))
  if ! cmp -s "$TOP/old.rc" "$TOP/new.rc" || ! cmp -s "$TOP/old.out.n" "$TOP/new.out.n" ||
     ! cmp -s "$TOP/old.err.n" "$TOP/new.err.n"; then
    differ=$((differ + 1))
    echo "DIFFERENT: $what: $*"
    echo "  exit $(cat "$TOP/old.rc") -> $(cat "$TOP/new.rc")"
    diff "$TOP/old.out.n" "$TOP/new.out.n" | head -10 | sed 's/^/  out /'
    diff "$TOP/old.err.n" "$TOP/new.err.n" | head -10 | sed 's/^/  err /'
  fi
}

W=$TOP/w
seeds=$(cd "$root" && ls conf/*.cfg tests/*/*.cfg tests/fuzz/corpus/workflow/* tests/fuzz/regressions/workflow/*)
(cd "$root" && python3 scripts/mutate-workflows.py "$W" "$COUNT" "$SEED" $seeds) || exit 1
for f in $(cd "$W" && ls); do
  compare "$W" file validate "$f"
  compare "$W" file graph "$f"
done
echo "workflow files: $compared runs compared (validate and graph), $differ different"

# tests/hostile/files.sh through a command that runs each validate on both
# builds (the comparison above, logged) and answers with NEW's.
files_before=$compared differ_before=$differ
cat >"$TOP/dp" <<EOF
#!/bin/sh
if [ "\$1" = validate ]; then
  for b in old new; do
    [ \$b = old ] && dp="$OLD" || dp="$NEW"
    timeout 60 "\$dp" "\$@" >"$TOP/h.\$b.out" 2>"$TOP/h.\$b.err" </dev/null; echo \$? >"$TOP/h.\$b.rc"
    for f in out err; do
      sed -e "s|$OLDB|<build>|g" -e "s|$NEWB|<build>|g" "$TOP/h.\$b.\$f" >"$TOP/h.\$b.\$f.n"
    done
  done
  if cmp -s "$TOP/h.old.rc" "$TOP/h.new.rc" && cmp -s "$TOP/h.old.out.n" "$TOP/h.new.out.n" &&
     cmp -s "$TOP/h.old.err.n" "$TOP/h.new.err.n"; then
    echo same >>"$TOP/h.log"
  else
    echo "DIFFERENT: hostile: \$*" >>"$TOP/h.log"
  fi
  cat "$TOP/h.new.out"; cat "$TOP/h.new.err" >&2
  exit \$(cat "$TOP/h.new.rc")
fi
exec "$NEW" "\$@"
EOF
chmod +x "$TOP/dp"
sh "$root/tests/hostile/files.sh" "$TOP/dp" >"$TOP/hostile.out" 2>&1 || { echo "files.sh failed:"; grep FAIL "$TOP/hostile.out"; }
hc=$(grep -c . "$TOP/h.log") hd=$(grep -c DIFFERENT "$TOP/h.log")
grep DIFFERENT "$TOP/h.log"
compared=$((compared + hc)) differ=$((differ + hd))
echo "tests/hostile/files.sh: $hc validate runs compared, $hd different"

# The 100 000-job workflow of bench/large_workflow.sh, when gen_workflow is there.
gen=$(dirname "$NEW")/gen_workflow
if [ -x "$gen" ]; then
  "$gen" -n 100000 >"$TOP/large.cfg" && compare "$TOP" large validate large.cfg
fi
echo "total: $compared runs compared, $differ different"
[ "$differ" -eq 0 ]
