#!/usr/bin/env bash
# run.sh BUILD_DIR - the install test (make test-install). Installs attn from
# BUILD_DIR into a temporary prefix, moves the prefix elsewhere (an installed
# tree must not remember where it was put), then uses only that copy:
#   1. the files: every library (static and shared), the headers (the same
#      bytes as include/), a .pc file per library, the CMake package, bin/attn;
#   2. pkg-config: sdpa.c and libs.c built with `pkg-config --cflags --libs`,
#      against the shared libraries and against the static ones
#      (`pkg-config --static`), run, their output checked;
#   3. CMake: the project in this folder, find_package(attn) from the prefix,
#      the same programs against attn::attn* and attn::attn*_static, run; an
#      unknown component and another minor version must be refused;
# and, both ways, examples/example.c as the README builds it.
# The programs see no path into the source or build tree: headers, libraries
# and the package come from the prefix alone.
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
include_src=$(cd "$here/../../include" && pwd)
examples=$(cd "$here/../../examples" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/attn-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset LD_LIBRARY_PATH CPATH C_INCLUDE_PATH LIBRARY_PATH CMAKE_PREFIX_PATH

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
version=$(cache CMAKE_PROJECT_VERSION)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
[ -n "$version" ] && [ -n "$libdir" ] || fail "no project version or libdir in $build/CMakeCache.txt"
libs="attn attn_formats attn_text attn_nn attn_viz attn_explain"
warn=(-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror)

cmake --install "$build" --prefix "$work/staged" >"$work/install.log" || fail "cmake --install (see output above)"
mv "$work/staged" "$work/prefix"
prefix=$work/prefix

# ---- 1. the files ---------------------------------------------------------------
for lib in $libs; do
  for f in "$libdir/lib$lib.a" "$libdir/lib$lib.so" "$libdir/lib$lib.so.${version%%.*}" \
           "$libdir/lib$lib.so.$version" "$libdir/pkgconfig/$lib.pc" "$libdir/cmake/attn/${lib}Targets.cmake"; do
    [ -e "$prefix/$f" ] || fail "$f is not installed"
  done
done
for f in "$libdir/cmake/attn/attnConfig.cmake" "$libdir/cmake/attn/attnConfigVersion.cmake"; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
n_headers=0
for h in "$include_src"/*.h "$include_src"/attn/*.h; do
  rel=${h#"$include_src"/}
  cmp -s "$h" "$prefix/include/$rel" || fail "include/$rel is not installed as it is in the source"
  n_headers=$((n_headers + 1))
done
"$prefix/bin/attn" --help | head -1 | grep -q '^usage: attn' || fail "bin/attn --help does not print its usage"
n_libs=$(echo $libs | wc -w)
echo "test-install: files: $n_libs libraries (.a, .so), $n_headers headers, $n_libs .pc files, the CMake package, bin/attn"

# Runs a built program and checks its output starts with $2.
run_check() {
  local exe=$1 want=$2 out
  shift 2
  out=$("$exe" "$@") || fail "$exe exited with $?"
  case $out in "$want"*) ;; *) fail "$exe printed '$out', expected '$want...'" ;; esac
  echo "test-install:   $(basename "$exe"): ${out%%$'\n'*}"
}
# Checks that a program needs libattn.so from the prefix (shared) or no
# libattn at all (static).
check_linkage() {
  local exe=$1 kind=$2 resolved
  if [ "$kind" = shared ]; then
    resolved=$(ldd "$exe" | sed -n 's/^[[:space:]]*libattn\.so\.[0-9]* => \([^ ]*\).*/\1/p')
    [ -n "$resolved" ] && [ "$(cd "$(dirname "$resolved")" && pwd -P)" = "$(cd "$prefix/$libdir" && pwd -P)" ] ||
      fail "$exe loads libattn from '$resolved', not from $prefix/$libdir"
  elif readelf -d "$exe" | grep -q 'NEEDED.*libattn'; then
    fail "$exe should not need a shared libattn"
  fi
}

# ---- 2. pkg-config ----------------------------------------------------------------
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
for lib in $libs; do
  [ "$(pkg-config --modversion "$lib")" = "$version" ] || fail "pkg-config --modversion $lib is not $version"
done
pc_libdir=$(pkg-config --variable=libdir attn)
[ "$(cd "$pc_libdir" && pwd)" = "$prefix/$libdir" ] || fail "attn.pc's libdir $pc_libdir is not $prefix/$libdir"

# pc_build KIND OUT SRC PACKAGES...: shared links -lNAME with an rpath into
# the prefix; static links each attn library's .a and, as shared libraries,
# what `pkg-config --static` adds for them (the Libs.private).
pc_build() {
  local kind=$1 out=$2 src=$3 f
  shift 3
  local link=()
  if [ "$kind" = shared ]; then
    read -r -a link <<<"$(pkg-config --libs "$@")"
    link+=("-Wl,-rpath,$pc_libdir")
  else
    for f in $(pkg-config --static --libs "$@"); do
      case $f in
        -lattn*) link+=("$pc_libdir/lib${f#-l}.a") ;;
        -L*) ;;
        *) link+=("$f") ;;
      esac
    done
  fi
  local cflags=()
  read -r -a cflags <<<"$(pkg-config --cflags "$@")"
  cc "${warn[@]}" -DATTN_EXPECT_VERSION="\"$version\"" "$here/$src" "${cflags[@]}" \
    "${link[@]}" -lm -o "$out" || fail "cc $src with pkg-config ($kind) failed"
}
echo "test-install: pkg-config"
for kind in shared static; do
  pc_build $kind "$work/sdpa_pc_$kind" sdpa.c attn
  check_linkage "$work/sdpa_pc_$kind" $kind
  run_check "$work/sdpa_pc_$kind" "sdpa ok: attn $version"
  pc_build $kind "$work/libs_pc_$kind" libs.c attn_nn attn_viz attn_explain
  check_linkage "$work/libs_pc_$kind" $kind
  run_check "$work/libs_pc_$kind" "libs ok:" "$work"
done
cc -std=c11 "$examples/example.c" $(pkg-config --cflags --libs attn) \
  -Wl,-rpath,"$(pkg-config --variable=libdir attn)" -o "$work/example" || fail "the README's cc command failed"
check_linkage "$work/example" shared
run_check "$work/example" "causal self-attention, 5 tokens"

# ---- 3. CMake find_package -------------------------------------------------------
echo "test-install: CMake find_package"
cmake_configure() { # cmake_configure SOURCE BUILD [-DVAR=VALUE...]
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF "${@:3}"
}
cmake_configure "$here" "$work/cmake" -DATTN_VERSION="$version" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; fail "configuring the find_package project failed"; }
grep -q "attn $version: $prefix/$libdir/cmake/attn\$" "$work/cmake.log" ||
  { cat "$work/cmake.log"; fail "find_package(attn) did not take the package from $prefix"; }
cmake --build "$work/cmake" -j2 >"$work/cmake-build.log" 2>&1 ||
  { cat "$work/cmake-build.log"; fail "building the find_package project failed"; }
for kind in shared static; do
  check_linkage "$work/cmake/sdpa_$kind" $kind
  run_check "$work/cmake/sdpa_$kind" "sdpa ok: attn $version"
  check_linkage "$work/cmake/libs_$kind" $kind
  run_check "$work/cmake/libs_$kind" "libs ok:" "$work"
done
cmake_configure "$examples/find_package" "$work/example-cmake" >"$work/example.log" 2>&1 &&
  cmake --build "$work/example-cmake" >>"$work/example.log" 2>&1 ||
  { cat "$work/example.log"; fail "examples/find_package did not build"; }
check_linkage "$work/example-cmake/example" shared
run_check "$work/example-cmake/example" "causal self-attention, 5 tokens"
other_minor="${version%%.*}.$(( $(echo "$version" | cut -d. -f2) + 1 )).0"
if cmake_configure "$here" "$work/cmake-bad" -DATTN_VERSION="$version" -DATTN_COMPONENTS=attn_nope \
     >"$work/bad.log" 2>&1 || ! grep -q "has no component 'attn_nope'" "$work/bad.log"; then
  cat "$work/bad.log"; fail "find_package(attn COMPONENTS attn_nope) was not refused by name"
fi
rm -rf "$work/cmake-bad"
if cmake_configure "$here" "$work/cmake-bad" -DATTN_VERSION="$other_minor" >"$work/bad.log" 2>&1 ||
     ! grep -q "$other_minor" "$work/bad.log"; then
  cat "$work/bad.log"; fail "find_package(attn $other_minor) was not refused"
fi
echo "test-install: CMake refused component attn_nope and version $other_minor"
echo "test-install: all checks passed"
