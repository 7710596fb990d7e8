# Thin wrapper over CMake for the README's commands.
#   make run        the main job: train the date translator, translate, draw maps
#   make test       install what is needed, then every test (CI runs this)
#   make test-avx512-bochs  the real AVX-512 and AMX kernels in an emulated CPU (Bochs)
#   make test-long  the long random grids (many more configurations) and every float32
#                   pattern through the half-precision conversions
#   make mutants    the mutation check: injected bugs each caught by a test (long)
#   make bench      the benchmarks vs PyTorch: bench/results*.json, results.png
#   make bench-lm   SmolLM2 on attn vs llama.cpp and transformers: bench/results_lm.json
#   make fuzz       libFuzzer on every reader of untrusted bytes (docs/testing.md)
JOBS ?= 2
CONFIGS ?= 2000
# The toolkit's grids (tests/nn/test_grid_*.c, tests/models/transformer/test_grid_model.c,
# python/tests/test_grid_*.py).
NN_GRIDS = grid_nn_linear grid_nn_embedding grid_nn_layernorm grid_nn_rmsnorm grid_nn_act \
  grid_nn_rope grid_nn_sinusoidal grid_nn_dropout grid_nn_cross_entropy grid_nn_adamw \
  grid_nn_clip grid_nn_lr grid_nn_mha grid_nn_gru_layer grid_nn_gru_cell grid_models_transformer
LONG_GRID_CONFIGS ?= 3000

.PHONY: bench bench-lm bench-quick all build run test test-c test-asan test-fma test-avx512-emu test-avx512-bochs test-clang test-cxx test-install test-python test-long mutants clean fuzz fuzz-build fuzz-seeds fuzz-targets

all: build

build:
	@scripts/setup.sh
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j$(JOBS)

# The main job: trains the encoder-decoder on the built-in dates task until
# the held-out exact match reaches 99.5% (checked every 200 steps), then
# translates a few dates and writes their cross-attention maps to run/maps.
RUN_DATES ?= "Sunday, March 17th 2024" "the twenty-first of June, nineteen ninety-nine" \
  "3/4/05" "12.11.1987" "2024-02-29" "1 JAN 1900" "Thu, 31 Dec 2099"
run: build
	./build/attn train --out run/dates.safetensors --target 0.995 --eval-every 200 --eval-n 1000
	./build/attn eval --model run/dates.safetensors --n 2000
	./build/attn translate --model run/dates.safetensors --beam 4 --maps run/maps $(RUN_DATES)

test: build
	@scripts/setup.sh --python
	@for s in test-c test-asan test-fma test-avx512-emu test-clang test-cxx test-install test-python; do \
	  t0=$$(date +%s); $(MAKE) --no-print-directory $$s || exit 1; \
	  echo "make test: $$s passed in $$(( $$(date +%s) - t0 )) s"; \
	done
	@echo "make test: all suites passed"

test-c: build
	cd build && ATTN_TEST_CONFIGS=$(CONFIGS) ATTN_TEST_JOBS=$(JOBS) ctest --output-on-failure -V

# AddressSanitizer + UndefinedBehaviorSanitizer (with float-divide-by-zero),
# at -O1 (what the sanitizers' documentation suggests; about 3x faster than
# -O0 here).
test-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DATTN_SANITIZE=ON >/dev/null
	cmake --build build-asan -j$(JOBS) --target attn_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./build-asan/tests/attn_tests --jobs $(JOBS) --configs 150 --skip block_mask_tile_counts

# The same tests of the attention core with FMA contraction allowed everywhere.
test-fma:
	cmake -S . -B build-fma -DCMAKE_BUILD_TYPE=Release -DATTN_FMA_CONTRACT=ON >/dev/null
	cmake --build build-fma -j$(JOBS) --target attn_tests
	./build-fma/tests/attn_tests --jobs $(JOBS) --configs 600 core ops

# The AVX-512 attention kernels on any AVX2 CPU: built with AVX2 only, each
# 16-lane vector as two ymm registers (src/kernels/x86/vec.h), the same code
# and the same bits as on AVX-512, vdpbf16ps computed in AVX2 as the SDM
# defines it (the AVX512-BF16 kernels), and the AMX kernels with their tiles
# in C (src/kernels/x86/amx.h); the core's tests on those three paths only.
# On a CPU with AVX-512, AVX512-BF16 or AMX (where test-c runs the real
# kernels), scripts/compare_digests.sh then compares the real kernels'
# digests with these builds' (AVX-512, AVX512-BF16: must be equal; AMX:
# reported).
test-avx512-emu: build
	cmake -S . -B build-emu512 -DCMAKE_BUILD_TYPE=Release -DATTN_EMULATE_AVX512=ON -DATTN_EMULATE_AMX=ON >/dev/null
	cmake --build build-emu512 -j$(JOBS) --target attn_tests attn_kernel_digest
	ATTN_TEST_KERNELS=avx512,avx512bf16,amx ./build-emu512/tests/attn_tests --jobs $(JOBS) --configs 600 core ops
	scripts/compare_digests.sh build build-emu512

# The real AVX-512 and AMX build (static) in an emulated CPU (Bochs,
# Sapphire Rapids model on a Bochs 3.0 built once from Debian's source with
# scripts/bochs3-attn.patch; BOCHS_CPU=tigerlake for Debian 12's Bochs 2.7,
# AVX-512 only), for machines without them: digests against the pair build
# and the emulated tiles, and the core's tests on the avx512 and amx paths
# (scripts/test_avx512_bochs.sh; installs what it needs; about eleven
# minutes, two more the first time to build Bochs 3.0; not in make test).
test-avx512-bochs:
	JOBS=$(JOBS) scripts/test_avx512_bochs.sh

# The second compiler: clang, -Werror, and the tests it builds.
test-clang:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-clang -j$(JOBS)
	./build-clang/tests/attn_tests --jobs $(JOBS) --configs 300

# The public header compiles as C++.
test-cxx:
	printf '#include <attn/attn.h>\nint main() { attn_sdpa_params p = attn_sdpa_params_default(); return p.causal; }\n' \
	  | c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ -fsyntax-only -
	for h in include/*.h include/attn/*.h; do \
	  printf '#include <%s>\nint main() { return 0; }\n' "$${h#include/}" \
	    | c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -DOMPI_SKIP_MPICXX $$(pkg-config --cflags ompi-c 2>/dev/null) \
	      -x c++ -fsyntax-only - || exit 1; \
	done

# `cmake --install` into a temporary prefix, then programs built against the
# installed copy only, with pkg-config and with find_package (tests/install).
test-install: build
	tests/install/run.sh build

# The tests import the attn package installed into .venv (setup.sh --python
# installs it again when its sources changed).
test-python: build
	@scripts/setup.sh --python
	.venv/bin/python -m pytest -q -n $(JOBS) --dist loadfile python/tests

# The long grids: the core's (40000 configurations) and the toolkit's, in C
# (4000 per grid of weight 1) and against PyTorch ($(LONG_GRID_CONFIGS) per grid of
# weight 1, 15 times make test's).
test-long: build
	./build/tests/attn_tests --jobs $(JOBS) --configs 40000 grid_vs_ref64 grid_big_vs_ref64 half_from_float $(NN_GRIDS)
	ATTN_GRID_CONFIGS=$(LONG_GRID_CONFIGS) .venv/bin/python -m pytest -q python/tests/test_grid_*.py

# The mutation check (tests/mutants/run.py): every bug of tests/mutants/mutants.txt,
# one at a time in a scratch copy (build-mutants/tree), must fail a test. The
# attention core's random grids (two thirds of the C runner's time) are left
# out: no mutant is in the core (MUTANT_SKIP= runs them too).
MUTANT_SKIP ?= grid_vs_ref64 grid_big_vs_ref64 score_grid_vs_ref64
mutants: build
	@scripts/setup.sh --python
	nice -n 19 .venv/bin/python tests/mutants/run.py $(if $(MUTANT_SKIP),--skip $(MUTANT_SKIP))

# The benchmark table (bench/bench.py), attn side by side with PyTorch SDPA
# and naive PyTorch (docs/design.md, Benchmarks).
# Run it on an otherwise idle machine.
bench: build
	@scripts/setup.sh --bench
	.venv/bin/python bench/bench.py --out bench/results.json
	.venv/bin/python bench/score_bench.py --threads 2 --out bench/results_score.json
	.venv/bin/python bench/longctx_bench.py --threads 2 --out bench/results_longctx.json

# SmolLM2-135M on attn against llama.cpp and transformers (bench/lm_bench.py,
# docs/llm.md); compiles llama.cpp on first use. On an otherwise idle machine.
bench-lm: build
	@scripts/setup.sh --bench-lm
	.venv/bin/python bench/lm_bench.py --threads 2

bench-quick: build
	@scripts/setup.sh --bench
	.venv/bin/python bench/bench.py --quick --out bench/results-quick.json

# libFuzzer + ASan + UBSan on every reader of untrusted bytes (fuzz/,
# docs/testing.md "Fuzzing"): each target is built straight from the
# sources of the tiers it needs into build-fuzz/, then run on a scratch copy
# of its seeds fuzz/corpus/<target>/, one target at a time, for FUZZ_SECONDS
# (default 60) each, or as FUZZ_FLAGS says (the campaign: -runs=N).
FUZZ_TARGETS ?= json safetensors gguf vocab wordpiece bpe lines bert_config checkpoint \
  seq2seq_checkpoint bert_weights resume_meta
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?= -max_total_time=$(FUZZ_SECONDS)
FUZZ_NICE ?= nice -n 19
# Flags every run of a target gets (make fuzz, scripts/fuzz_campaign.sh).
# Without -max_len libFuzzer allows max(4096, the largest seed) bytes; an
# input costs about its length, so a target whose longest path needs less
# is bounded, with room to spare:
#  wordpiece: 1024. Its longest paths: a word over the 100-character limit
#    ([UNK]; 101 characters, at most 404 bytes), a run of combining marks
#    longer than the 32 the encoder holds inline (33 marks, 66+ bytes), and
#    truncation (more than the 64 ids of its longest encoding, 64+ bytes).
#  checkpoint: 16384. The seeds (fuzz/seeds_checkpoint.c) are at most
#    12.9 KB; the earlier 45 KB seed (the dates model with its optimizer
#    state) reached no edge that they miss, and every rule of the reader is
#    per tensor or per field, not per byte.
# The others keep the default: their inputs' structure (headers, nesting,
# vocabularies) needs the room. (bpe's one path beyond 4096 bytes, a token
# over ATTN_BPE_MAX_TOKEN_BYTES, is tests/text/test_bpe.c's.)
FUZZ_OPTS_wordpiece = -max_len=1024
FUZZ_OPTS_checkpoint = -max_len=16384
FUZZ_COMMON = -timeout=10 -rss_limit_mb=4096

# The sources of each tier (the libraries of CMakeLists.txt, without the ISA
# kernels: without ATTN_HAVE_<ISA> the kernel table registers none); each
# list includes the tiers below it. libc, libm and pthreads only.
FUZZ_CORE = $(wildcard src/core/*.c src/ops/*.c src/kernels/*.c src/kernels/ref/*.c \
  src/kernels/portable/*.c)
FUZZ_FORMATS = $(FUZZ_CORE) $(wildcard src/formats/*.c)
FUZZ_TEXT = $(FUZZ_FORMATS) $(wildcard src/text/*.c)
FUZZ_NN = $(FUZZ_TEXT) $(wildcard src/nn/*.c src/models/*.c src/models/*/*.c)
FUZZ_TASK = $(FUZZ_NN) apps/attn/task/train.c apps/attn/task/dates.c apps/attn/task/charvocab.c
FUZZ_CLI = $(FUZZ_CORE) apps/attn/lines.c

# Each target: the sources of the highest tier it needs.
FUZZ_SRCS_json = $(FUZZ_FORMATS)
FUZZ_SRCS_safetensors = $(FUZZ_FORMATS)
FUZZ_SRCS_gguf = $(FUZZ_TEXT)
FUZZ_SRCS_vocab = $(FUZZ_TEXT)
FUZZ_SRCS_wordpiece = $(FUZZ_TEXT)
FUZZ_SRCS_bpe = $(FUZZ_TEXT)
FUZZ_SRCS_lines = $(FUZZ_CLI)
FUZZ_SRCS_bert_config = $(FUZZ_NN)
FUZZ_SRCS_checkpoint = $(FUZZ_NN)
FUZZ_SRCS_seq2seq_checkpoint = $(FUZZ_NN)
FUZZ_SRCS_bert_weights = $(FUZZ_NN)
FUZZ_SRCS_resume_meta = $(FUZZ_TASK)

FUZZ_CC = clang -std=c11 -g -O1 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror \
  -fsanitize=fuzzer,address,undefined,float-divide-by-zero -fno-sanitize-recover=all \
  -D_POSIX_C_SOURCE=200809L -DATTN_BUILD -Iinclude -Isrc -Iapps/attn

.SECONDEXPANSION:
build-fuzz/fuzz_%: fuzz/fuzz_%.c $$(FUZZ_SRCS_$$*) $$(wildcard src/*/*.h src/*/*/*.h include/attn/*.h apps/attn/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $< $(FUZZ_SRCS_$*) -lpthread -lm -o $@

fuzz-build: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

fuzz:
	@scripts/setup.sh
	$(MAKE) --no-print-directory fuzz-build
	for t in $(FUZZ_TARGETS); do \
	  rm -rf build-fuzz/corpus-$$t && mkdir -p build-fuzz/corpus-$$t && \
	  cp fuzz/corpus/$$t/* build-fuzz/corpus-$$t/ && \
	  $(FUZZ_NICE) ./build-fuzz/fuzz_$$t $$($(MAKE) -s --no-print-directory fuzz-opts-$$t) $(FUZZ_FLAGS) \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus-$$t || exit 1; \
	done

# The per-target flags of a target (FUZZ_COMMON and FUZZ_OPTS_<target>), and
# the list of targets (for scripts/fuzz_campaign.sh).
fuzz-opts-%:
	@echo $(FUZZ_COMMON) $(FUZZ_OPTS_$*)

fuzz-targets:
	@echo $(FUZZ_TARGETS)

# The checkpoint target's seeds, written by the library's own checkpoint
# writer (fuzz/seeds_checkpoint.c); run again when the format changes.
fuzz-seeds:
	@mkdir -p build-fuzz
	clang -std=c11 -O1 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -DATTN_BUILD -Iinclude -Isrc \
	  fuzz/seeds_checkpoint.c $(FUZZ_SRCS_checkpoint) -lpthread -lm -o build-fuzz/seeds_checkpoint
	mkdir -p fuzz/corpus/checkpoint && ./build-fuzz/seeds_checkpoint fuzz/corpus/checkpoint

clean:
	rm -rf build build-asan build-fma build-clang build-fuzz build-mutants run
