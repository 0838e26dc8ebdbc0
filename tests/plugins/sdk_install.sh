#!/bin/sh
# A third party's view of the SDK: install daggerpool to a temporary prefix,
# build examples/plugin out of tree against it with pkg-config (Makefile) and
# with find_package (CMake), then load each result and run its job. Then an
# embedder's view: build examples/embed_seed_dag.c against the installed
# library with pkg-config (daggerpool.pc) and run it.
#
#   sdk_install.sh BUILD_DIR EXAMPLE_DIR WORK_DIR RUNNER CC [SANITIZE]
set -eu
build=$1 example=$2 work=$3 runner=$4 cc=$5 sanitize=${6:-}

fail() { echo "sdk_install: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }
[ -f "$prefix/include/daggerpool/plugin.h" ] || fail "plugin.h not installed"
pc=$(find "$prefix" -name daggerpool-sdk.pc | head -n 1)
[ -n "$pc" ] || fail "daggerpool-sdk.pc not installed"
config=$(find "$prefix" -name daggerpoolConfig.cmake | head -n 1)
[ -n "$config" ] || fail "daggerpoolConfig.cmake not installed"
for p in core shell net fs; do
    find "$prefix" -path "*/daggerpool/plugins/$p.so" | grep -q . ||
        fail "plugin $p.so not installed under lib/daggerpool/plugins"
done

# The plugin build must not see this tree: copy the example elsewhere.
# Sanitizer flags of this build are not a third party's: use a clean env.
unset CFLAGS LDFLAGS CPPFLAGS || true

cp -R "$example" "$work/make-src"
PKG_CONFIG_PATH=$(dirname "$pc") make -C "$work/make-src" CC="$cc" >"$work/make.log" 2>&1 ||
    { cat "$work/make.log" >&2; fail "make (pkg-config) failed"; }
plugindir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=plugindir daggerpool-sdk)
[ -d "$plugindir" ] || fail "pkg-config plugindir '$plugindir' does not exist"

cp -R "$example" "$work/cmake-src"
cmake -S "$work/cmake-src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; fail "cmake (find_package) build failed"; }

for so in "$work/make-src/hello.so" "$work/cmake-build/hello.so"; do
    [ -f "$so" ] || fail "$so was not built"
    "$runner" hello "$so" hello.greet name=installer >"$work/run.log" 2>&1 ||
        { cat "$work/run.log" >&2; fail "running $so failed"; }
    grep -q "hello, installer" "$work/run.log" || { cat "$work/run.log" >&2; fail "$so did not greet"; }
    grep -q "status success, plugin hello 1.0.0" "$work/run.log" ||
        { cat "$work/run.log" >&2; fail "$so did not succeed"; }
    n=$(nm -D --defined-only "$so" | wc -l)
    [ "$n" -eq 1 ] || fail "$so exports $n symbols, not just dp_plugin_entry_v1"
    echo "ok: $so"
done

# An embedder links the installed library; a sanitizer build's library
# needs the same runtime in the program.
pcdir=$(dirname "$(find "$prefix" -name daggerpool.pc | head -n 1)")
[ -f "$pcdir/daggerpool.pc" ] || fail "daggerpool.pc not installed"
san=
case $sanitize in
  address) san="-fsanitize=address,undefined" ;;
  thread) san="-fsanitize=thread" ;;
esac
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir daggerpool)
# shellcheck disable=SC2046
"$cc" $san -o "$work/embed" "$(dirname "$example")/embed_seed_dag.c" \
    $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs daggerpool) -Wl,-rpath,"$libdir" \
    >"$work/embed.log" 2>&1 || { cat "$work/embed.log" >&2; fail "embedder build (pkg-config daggerpool) failed"; }
"$work/embed" >"$work/embed-run.log" 2>&1 || { cat "$work/embed-run.log" >&2; fail "the embedder's program failed"; }
grep -q "success" "$work/embed-run.log" || { cat "$work/embed-run.log" >&2; fail "the embedder's run did not succeed"; }
echo "ok: $work/embed (pkg-config daggerpool)"
echo "sdk install test: 3 passed, 0 failed"
