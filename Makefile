# Thin wrapper over CMake for the README's commands.
#   make run        the main job: train the date translator, translate, draw maps
#   make test       install what is needed, then every test (CI runs this)
#   make test-long  the long random grid (many more configurations)
#   make bench      the benchmarks vs PyTorch: bench/results*.json, results.png
JOBS ?= 2
CONFIGS ?= 3000

.PHONY: bench bench-quick all build run test test-c test-asan test-fma test-clang test-cxx test-install test-python test-long clean fuzz

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
	$(MAKE) --no-print-directory test-c test-asan test-fma test-clang test-cxx test-install test-python
	@echo "make test: all suites passed"

test-c: build
	cd build && ATTN_TEST_CONFIGS=$(CONFIGS) ctest --output-on-failure -V

# AddressSanitizer + UndefinedBehaviorSanitizer (with float-divide-by-zero).
test-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTN_SANITIZE=ON >/dev/null
	cmake --build build-asan -j$(JOBS) --target attn_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./build-asan/tests/attn_tests --configs 400

# The same tests of the attention core with FMA contraction allowed everywhere.
test-fma:
	cmake -S . -B build-fma -DCMAKE_BUILD_TYPE=Release -DATTN_FMA_CONTRACT=ON >/dev/null
	cmake --build build-fma -j$(JOBS) --target attn_tests
	./build-fma/tests/attn_tests --configs 1000 core ops

# The second compiler: clang, -Werror, and the tests it builds.
test-clang:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-clang -j$(JOBS)
	./build-clang/tests/attn_tests --configs 300

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
	.venv/bin/python -m pytest -q python/tests

test-long: build
	./build/tests/attn_tests --configs 40000 grid_vs_ref64 grid_big_vs_ref64

# The benchmark table (bench/bench.py), attn side by side with PyTorch SDPA
# and naive PyTorch (docs/design.md, Benchmarks).
# Run it on an otherwise idle machine.
bench: build
	@scripts/setup.sh --bench
	.venv/bin/python bench/bench.py --out bench/results.json
	.venv/bin/python bench/score_bench.py --threads 2 --out bench/results_score.json

bench-quick: build
	@scripts/setup.sh --bench
	.venv/bin/python bench/bench.py --quick --out bench/results-quick.json

# libFuzzer + ASan + UBSan on the file readers (fuzz/): each target built
# straight from its sources into build-fuzz/, then run for FUZZ_SECONDS
# (default 60) on a scratch copy of its seeds fuzz/corpus/<target>/.
# libFuzzer + ASan + UBSan on every file reader: JSON, safetensors, model
# checkpoints, WordPiece vocabularies, BERT configs, GGUF files and the BPE
# tokenizer, FUZZ_SECONDS (default 60) each.
FUZZ_TARGETS ?= json safetensors checkpoint vocab bert_config gguf bpe
FUZZ_SRCS = $(wildcard src/core/*.c src/ops/*.c src/kernels/*.c src/kernels/ref/*.c \
  src/kernels/portable/*.c src/formats/*.c src/text/*.c src/nn/*.c src/models/*.c \
  src/models/*/*.c)
fuzz:
	@scripts/setup.sh
	mkdir -p build-fuzz
	for t in $(FUZZ_TARGETS); do \
	  clang -std=c11 -g -O1 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror \
	    -fsanitize=fuzzer,address,undefined,float-divide-by-zero -fno-sanitize-recover=all \
	    -D_POSIX_C_SOURCE=200809L -DATTN_BUILD -Iinclude -Isrc fuzz/fuzz_$$t.c $(FUZZ_SRCS) \
	    -lpthread -lm -o build-fuzz/fuzz_$$t || exit 1; \
	done
	for t in $(FUZZ_TARGETS); do \
	  rm -rf build-fuzz/corpus-$$t && mkdir -p build-fuzz/corpus-$$t && \
	  cp fuzz/corpus/$$t/* build-fuzz/corpus-$$t/ && \
	  ./build-fuzz/fuzz_$$t -max_total_time=$(or $(FUZZ_SECONDS),60) -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus-$$t || exit 1; \
	done

clean:
	rm -rf build build-asan build-fma build-clang build-fuzz run
