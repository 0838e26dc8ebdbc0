#!/bin/sh
# man_flags.sh DAGGERPOOL SOURCE_DIR - for every subcommand, the long options
# of its getopt table (host/src/cli/CMD.c, what the code accepts) are exactly
# those its --help lists, those its synopsis in docs/daggerpool.1 lists
# (short forms mapped through the table), and those the man page's OPTIONS
# entries mark "(CMD, ...)". --help itself is left out: every command takes
# it, and the man page says so once.
set -u
DP=$1 SRC=$2
MAN=$SRC/docs/daggerpool.1
WORK=$(mktemp -d /tmp/dp_manflags.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The table's rows: {"name", x_argument, NULL, VAL}; "long SHORT" per line
# (SHORT is - when the option has no one-letter form).
table() {
  sed -n "s/^ *{\"\([a-z][a-z-]*\)\", *[a-z_]*_argument, *NULL, *\(.*\)},.*/\1 \2/p" "$SRC/host/src/cli/$1.c" |
    while read -r name val; do
      case $val in
        \'?\') echo "$name $(echo "$val" | cut -c2)" ;;
        *) echo "$name -" ;;
      esac
    done
}
code_opts() { table "$1" | cut -d' ' -f1 | grep -vx help | sed 's/^/--/' | sort -u; }
# Option lines of --help start with two spaces and a dash.
help_opts() {
  "$DP" "$1" --help | grep -E '^  -' | sed -E 's/^  (-[a-zA-Z], )?(--[a-z][a-z-]*).*/\2/' |
    grep -vx -- --help | sort -u
}
# The synopsis line of CMD: from ".B daggerpool CMD" to the next ".br".
man_synopsis() {
  awk -v cmd="$1" '
    $0 == ".B daggerpool " cmd { on = 1; next }
    on && $0 == ".br" { exit }
    on { print }' "$MAN" | sed 's/\\-/-/g' | grep -oE '(^|[ "])--?[a-zA-Z][a-z-]*' | sed 's/^[ "]//' |
    while read -r opt; do
      case $opt in
        --*) echo "$opt" ;;
        -?) long=$(table "$1" | awk -v s="$(printf "%s\n" "$opt" | cut -c2)" '$2 == s { print $1 }')
            echo "--${long:-UNKNOWN-SHORT-$opt}" ;;
      esac
    done | grep -vx -- --help | sort -u
}
# OPTIONS entries: ".TP", a line naming the option, then ".RB ( CMD ", " CMD )".
man_options() {
  sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$MAN" | sed 's/\\-/-/g' | awk -v cmd="$1" '
    $0 == ".TP" { head = 1; next }
    head == 1 { opts = $0; head = 2; next }
    head == 2 {
      head = 0
      if ($0 !~ /^\.RB \(/) next
      line = $0; gsub(/[",()]/, " ", line)
      n = split(line, w, " ")
      mine = 0
      for (i = 2; i <= n; i++) if (w[i] == cmd) mine = 1
      if (!mine) next
      while (match(opts, /--[a-z][a-z-]*/)) {
        print substr(opts, RSTART, RLENGTH)
        opts = substr(opts, RSTART + RLENGTH)
      }
    }' | grep -vx -- --help | sort -u
}

for cmd in run validate graph plugins watch plan history show mark; do
  code_opts "$cmd" > "$WORK/code"
  [ -s "$WORK/code" ] || { fail "$cmd: no option table found in host/src/cli/$cmd.c"; continue; }
  help_opts "$cmd" > "$WORK/help"
  man_synopsis "$cmd" > "$WORK/syn"
  man_options "$cmd" > "$WORK/opts"
  for where in help syn opts; do
    case $where in
      help) what="daggerpool $cmd --help" ;;
      syn) what="the man page's synopsis of $cmd" ;;
      opts) what="the man page's OPTIONS marked ($cmd)" ;;
    esac
    if ! cmp -s "$WORK/code" "$WORK/$where"; then
      fail "$cmd: the code's options and $what differ (< code, > docs):"
      diff "$WORK/code" "$WORK/$where" | grep '^[<>]'
    fi
  done
  # And each option the code takes is refused as unknown by none of them:
  # the parser itself says it knows it (a missing value or file is fine).
  while read -r opt; do
    "$DP" "$cmd" "$opt" >/dev/null 2>"$WORK/err" </dev/null
    grep -q "unknown option" "$WORK/err" && fail "$cmd $opt: unknown option"
  done < "$WORK/code"
  [ $fails -eq 0 ] && echo "ok: $cmd: $(tr '\n' ' ' < "$WORK/code")"
done

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
