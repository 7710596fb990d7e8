#!/usr/bin/env bash
# build_bochs3.sh - Bochs 3.0, built here from Debian's source package, for
# the Sapphire Rapids CPU model of scripts/emu_avx512.sh (AVX-512 F/BW/VL/DQ,
# AVX512-BF16, AVX512-FP16, AMX). Debian 12 ships Bochs 2.7, whose newest
# model (Tiger Lake) has none of BF16, FP16 or AMX.
#
# The source is the orig tarball of Debian 13's bochs 3.0+dfsg-1 from
# deb.debian.org (checked against its SHA-256 from Debian's Sources index),
# patched with scripts/bochs3-attn.patch (XFD, so that Linux enables AMX;
# three fixes to saving the AMX state; TDPBF16PS in the order attn's
# emulated tiles use: the patch says why), and configured for what
# emu_avx512.sh needs: x86-64 with AVX, EVEX and AMX, no GUI (the "nogui"
# display), no debugger, no sound. About two minutes on two cores.
# Installed into $XDG_CACHE_HOME/attn-emu/bochs-3.0 (default ~/.cache/...)
# with the patch's checksum beside it; a second run with the same patch
# finds it there and only prints the path.
#
# Prints the path of the bochs binary on stdout; everything else on stderr.
set -euo pipefail

version=3.0+dfsg
sha256=78f6c73d4a6472d5130a87ab9dc306d02c7c71ed8e25b3a8ef642e2a7acd282b
url=http://deb.debian.org/debian/pool/main/b/bochs/bochs_${version}.orig.tar.xz
cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/attn-emu
prefix=$cache/bochs-3.0
jobs=${JOBS:-2}
patch_file=$(cd "$(dirname "$0")" && pwd)/bochs3-attn.patch
# the build is reused while neither the patch nor this script changes
stamp=$(cat "$patch_file" "$0" | sha256sum | cut -d' ' -f1)

log() { echo "build_bochs3: $*" >&2; }
# bochs -help cpu lists its models and exits with status 1
has_model() { [[ -x $prefix/bin/bochs && $'\n'$("$prefix/bin/bochs" -help cpu 2>&1 || true)$'\n' == *$'\n'sapphire_rapids$'\n'* ]]; }

if has_model && [[ $(cat "$prefix/attn-patch.sha256" 2>/dev/null) == "$stamp" ]]; then
    echo "$prefix/bin/bochs"
    exit 0
fi

. "$(dirname "$patch_file")/apt_need.sh"
apt_need g++ make curl xz-utils patch

work=$(mktemp -d "${TMPDIR:-/tmp}/bochs3.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading $url"
curl -fsSL --retry 3 -o "$work/src.tar.xz" "$url"
echo "$sha256  $work/src.tar.xz" | sha256sum -c --quiet - >&2 ||
    { log "checksum mismatch for $url"; exit 1; }
tar -C "$work" -xf "$work/src.tar.xz"
src=$(find "$work" -maxdepth 1 -type d -name 'bochs-*' | head -1)
[[ -n $src ]] || { log "no bochs-* directory in the tarball"; exit 1; }
patch -d "$src" -p1 --quiet <"$patch_file" || { log "$patch_file does not apply"; exit 1; }

mkdir -p "$cache"
rm -f "$prefix/attn-patch.sha256" # a build cut short is never taken for a finished one
log "configuring and building (on failure the log is kept as $cache/bochs-3.0-build.log)"
if ! (cd "$src" &&
      ./configure --prefix="$prefix" --enable-x86-64 --enable-cpu-level=6 --enable-avx --enable-evex \
          --enable-amx --enable-fpu --enable-pci --enable-cdrom --enable-all-optimizations \
          --enable-repeat-speedups --disable-debugger --with-nogui --without-x11 --without-x &&
      make -j"$jobs" && make install) >"$work/build.log" 2>&1; then
    cp "$work/build.log" "$cache/bochs-3.0-build.log"
    tail -n 20 "$work/build.log" >&2
    log "build failed (log: $cache/bochs-3.0-build.log)"
    exit 1
fi
has_model || { log "the built bochs has no sapphire_rapids model"; exit 1; }
echo "$stamp" >"$prefix/attn-patch.sha256"
log "installed $prefix/bin/bochs"
echo "$prefix/bin/bochs"
