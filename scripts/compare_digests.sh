#!/usr/bin/env bash
# compare_digests.sh NATIVE_BUILD EMULATED_BUILD
#
# The kernels' digests (attn_kernel_digest: one hash per output of a dozen
# fixed problems) from the machine's own AVX-512, AVX512-BF16 and AMX
# instructions against the same kernels built with AVX2 only (16-lane
# vectors as ymm pairs, vdpbf16ps and the tiles in C: make
# test-avx512-emu's build). Run by make test-avx512-emu; on a CPU without
# a path it says so and skips it.
#   avx512, avx512bf16: the CPU's code must give the pair build's bits (the
#           emulated vdpbf16ps is the SDM's definition, which the test
#           avx512bf16_dot_definition holds the CPU to): a difference fails.
#   amx:    equal digests mean the CPU's TDPBF16PS rounds as the emulation
#           (the SDM's definition) does; a difference is reported, not a
#           failure: the tolerance tests (make test's amx path) judge it.
set -uo pipefail
native=${1:?native build directory}
emu=${2:?emulated build directory}
status=0
for k in avx512 avx512bf16 amx; do
    if ! "$native/tests/attn_kernel_digest" "$k" >/tmp/attn-digest-native.$$ 2>/tmp/attn-digest-err.$$; then
        echo "compare_digests: $k skipped: $(cat /tmp/attn-digest-err.$$)"
        continue
    fi
    "$emu/tests/attn_kernel_digest" "$k" >/tmp/attn-digest-emu.$$ || { status=1; continue; }
    if cmp -s /tmp/attn-digest-native.$$ /tmp/attn-digest-emu.$$; then
        echo "compare_digests: $k: the CPU's digests equal the emulated build's ($(wc -l </tmp/attn-digest-native.$$) lines)"
    else
        echo "compare_digests: $k: the CPU's digests differ from the emulated build's:"
        diff /tmp/attn-digest-emu.$$ /tmp/attn-digest-native.$$ | sed 's/^/  /'
        [ "$k" != amx ] && status=1
    fi
done
rm -f /tmp/attn-digest-native.$$ /tmp/attn-digest-emu.$$ /tmp/attn-digest-err.$$
exit $status
