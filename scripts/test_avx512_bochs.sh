#!/usr/bin/env bash
# test_avx512_bochs.sh - the real AVX-512 (and AMX) build of attn's kernels,
# run in an emulated CPU on a machine without them. `make test-avx512-bochs`.
#
# The CPU: BOCHS_CPU=sapphire_rapids (the default: AVX-512 F/BW/VL/DQ,
# AVX512-BF16 and AVX512-FP16, on a Bochs 3.0 that scripts/build_bochs3.sh
# builds once from Debian's source, about two minutes) or tigerlake (Debian
# 12's Bochs 2.7: AVX-512 F/BW/VL/DQ only). The Sapphire Rapids model has
# AMX too: scripts/bochs3-attn.patch adds XFD, without which Linux keeps
# AMX off, and fixes Bochs's saving of the AMX state, so the amx path runs
# its real tile instructions there (tests and digests).
#
#   1. builds the library's tests and attn_kernel_digest statically
#      (build-bochs/; the AVX-512 kernels compiled with the AVX-512 flags);
#   2. builds the AVX2-pair emulation of the same kernels (build-emu512/,
#      make test-avx512-emu's build) and prints its digests natively;
#   3. boots Linux in Bochs (scripts/emu_avx512.sh) and runs there: the
#      digests of the real avx512 and avx2 kernels (and amx under
#      sapphire_rapids), and the core's kernel tests on the avx512 path
#      (and amx under sapphire_rapids; ATTN_TEST_KERNELS), CONFIGS
#      configurations of the grid, 30 by default; not the decode grid,
#      and the block-mask grid only on the amx path under sapphire_rapids:
#      their long sequences take hours in Bochs);
#   4. compares the digests: the zmm code must give the bits of its pair
#      emulation on every problem, and the avx2 kernels in Bochs the bits of
#      the avx2 kernels on this CPU, and (sapphire_rapids) the amx kernels
#      the bits of the emulated tiles (make test-avx512-emu's; the patch
#      gives Bochs's TDPBF16PS the order amx.h defines). Under tigerlake F16 problems are
#      compared but not required to match: Bochs 2.7's F16C conversion
#      rounds subnormal ties away from even (its half_to_float test fails on
#      the AVX2 build, which passes on real CPUs). Bochs 3.0 rounds them as
#      real CPUs do, and there every F16 digest must match too.
#
# Exit status 0 when the tests pass and the digests agree. Takes about eleven
# minutes under sapphire_rapids (avx512 and amx, and the block-mask grid on
# amx; Bochs 3.0 boots Linux in a few seconds, then runs about 100 times
# slower than the host), plus two the first time to build Bochs 3.0; ten
# to twelve under tigerlake (avx512 only).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
jobs=${JOBS:-2}
configs=${CONFIGS:-30}
cpu=${BOCHS_CPU:-sapphire_rapids}
f16_exempt=0 # Bochs 2.7's F16C rounding (above)
[[ $cpu == sapphire_rapids ]] || f16_exempt=1
out=build-bochs/avx512-bochs
mkdir -p "$out"

echo "== building the static AVX-512 build (build-bochs) and the pair emulation (build-emu512)"
cmake -S . -B build-bochs -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXE_LINKER_FLAGS=-static \
    -DPNG_LIBRARY=/usr/lib/x86_64-linux-gnu/libpng16.a -DZLIB_LIBRARY=/usr/lib/x86_64-linux-gnu/libz.a \
    -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >/dev/null
cmake --build build-bochs -j"$jobs" --target attn_tests attn_kernel_digest >/dev/null
cmake -S . -B build-emu512 -DCMAKE_BUILD_TYPE=Release -DATTN_EMULATE_AVX512=ON -DATTN_EMULATE_AMX=ON >/dev/null
cmake --build build-emu512 -j"$jobs" --target attn_kernel_digest >/dev/null
./build-emu512/tests/attn_kernel_digest avx512 >"$out/pairs.txt"
./build-emu512/tests/attn_kernel_digest amx >"$out/tiles.txt"
./build-bochs/tests/attn_kernel_digest avx2 >"$out/avx2-native.txt"

T=$here/build-bochs/tests
kernels=avx512 digests="avx512 avx2" amx_tests=""
if [[ $cpu == sapphire_rapids ]]; then
    kernels=avx512,amx digests="avx512 amx avx2"
    amx_tests="kernels_gemm_bf16_amx_vs_double block_mask_hidden_never_read_global"
fi
cat >"$out/guest.sh" <<EOF
#!/bin/sh
echo "guest cpu: \$(grep -o -w -E 'avx512f|avx512bw|avx512vl|avx512dq|avx512_bf16|avx512_fp16|amx_tile|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
for k in $digests; do $T/attn_kernel_digest \$k || exit 1; done
ATTN_TEST_KERNELS=$kernels $T/attn_tests --configs $configs avx512_exp_equals_avx2 kernel_table_choice kernel_forcing \\
  kernels_gemm_avx512_vs_double kernels_gemm_bf16_avx512_vs_double kernels_rows_avx512_vs_double contract_masked_rows contract_masked_never_read \\
  contract_nan_propagation contract_huge_logits contract_sizes contract_strided_views contract_determinism \\
  grid_vs_ref64 varlen_vs_padded $amx_tests 2>&1 \\
  | grep -v 'skipped (not in ATTN_TEST_KERNELS)'
EOF
# The AMX forward's own block-mask logic (which rows of a tile take part)
# on the real tiles: the block-mask grid on the amx path alone.
[[ $cpu == sapphire_rapids ]] && cat >>"$out/guest.sh" <<EOF
ATTN_TEST_KERNELS=amx $T/attn_tests block_mask_grid_vs_ref64 contract_huge_window 2>&1 \\
  | grep -v 'skipped (not in ATTN_TEST_KERNELS)'
EOF
chmod +x "$out/guest.sh"

echo "== running in Bochs ($cpu)"
status=0
scripts/emu_avx512.sh --cpu "$cpu" --timeout 3000 --file "$T/attn_tests" --file "$T/attn_kernel_digest" \
    "$here/$out/guest.sh" | tee "$out/guest.log" || status=$?

# the guest's digest listings, each from its "kernel NAME" line on
for k in $digests; do
    awk -v k="kernel $k" '$0 == k {on = 1; next} /^kernel / {on = 0} on && /^(f32|bf16|f16) /' \
        "$out/guest.log" >"$out/guest-$k.txt"
done

compare() { # compare NAME A B: every line equal (F16 lines reported only under Bochs 2.7)
    local name=$1 a=$2 b=$3 bad=0
    while IFS= read -r line; do
        key=${line% *}
        other=$(grep -F -- "$key " "$b" | head -1 || true)
        if [[ "$line" == "$other" ]]; then
            echo "  same  $line"
        elif [[ $line == f16* ]] && ((f16_exempt)); then
            echo "  f16   $line (Bochs 2.7's F16C rounding; not compared)"
        else
            echo "  DIFF  $line vs ${other##* }"
            bad=1
        fi
    done < <(grep -E '^(f32|bf16|f16) ' "$a")
    [[ $(grep -cE '^(f32|bf16|f16) ' "$a") -gt 0 ]] || { echo "  no digests from $name"; bad=1; }
    return $bad
}
echo "== avx512 in Bochs vs its AVX2-pair emulation on this CPU"
compare avx512 "$out/guest-avx512.txt" "$out/pairs.txt" || status=1
if [[ $digests == *amx* ]]; then
    echo "== amx in Bochs (its TDPBF16PS in the order of amx.h: scripts/bochs3-attn.patch) vs the emulated tiles"
    compare amx "$out/guest-amx.txt" "$out/tiles.txt" || status=1
fi
echo "== avx2 in Bochs vs avx2 on this CPU"
compare avx2 "$out/guest-avx2.txt" "$out/avx2-native.txt" || status=1
# every run of the tests in the guest reported, and none with a failure
runs=1
[[ $cpu == sapphire_rapids ]] && runs=2
[[ $(grep -c '^attn_tests: .* 0 failed' "$out/guest.log") == "$runs" ]] || status=1
[[ $(grep -c '^attn_tests: ' "$out/guest.log") == "$runs" ]] || status=1
echo "test_avx512_bochs: $([[ $status == 0 ]] && echo passed || echo FAILED) (log: $out/guest.log)"
exit "$status"
