"""attn: exact attention for CPUs, from Python.

The package wraps attn's C libraries, which pip builds and installs beside it.

  attn.sdpa, attn.sdpa_backward, attn.sdpa_weights
                  scaled dot-product attention on NumPy arrays ([B, S, H, D],
                  any strides, no copies)
  attn.torch      scaled_dot_product_attention for PyTorch (a torch.library
                  operator, attn::sdpa, with autograd and torch.compile)
  attn.score      learned scoring: Bahdanau (additive), Luong, scaled dot
  attn.nn         the toolkit's layers, loss, optimiser and schedules
  attn.models     MiniLM sentence embeddings, the date translator
  attn.text       the WordPiece tokenizer
  attn.viz        attention maps as PNG heatmaps
  python -m attn.info   the version, CPU features, kernel and library path

Errors raise subclasses of attn.AttnError, one per status (attn.errors);
docs/python.md is the manual. attn.__version__ is the C library's version.
"""
from __future__ import annotations

import importlib
from typing import Any

from ._lib import library_path
from ._lib.core import lib as _core
from ._lib.core import trim_memory
from ._sdpa import (Grads, dropout_keep, dropout_mask, philox4x32_10, sdpa, sdpa_backward,
                    sdpa_weights)
from ._views import from_bf16, to_bf16
from .enums import Align, DType, Kernel
from .errors import (AttnError, AttnIOError, AttnOverflowError, BadDimError, BadDtypeError,
                     BadFileError, BadHeadsError, BadMaskError, BadParamError, BadStrideError,
                     NoMemoryError, NullArgError, OverlapError, ShapeMismatchError, Status,
                     ThreadError, UnsupportedError)

__version__: str = _core.attn_version().decode()

__all__ = [
    "__version__", "sdpa", "sdpa_backward", "sdpa_weights", "Grads", "dropout_keep",
    "dropout_mask", "philox4x32_10", "to_bf16", "from_bf16", "library_path", "trim_memory", "Align", "DType", "Kernel", "Status",
    "AttnError", "NullArgError", "BadDimError", "ShapeMismatchError", "BadDtypeError",
    "BadStrideError", "AttnOverflowError", "BadParamError", "BadHeadsError", "BadMaskError",
    "OverlapError", "NoMemoryError", "ThreadError", "UnsupportedError", "AttnIOError",
    "BadFileError",
]

# Submodules load on first use: attn.torch imports PyTorch, attn.nn and
# attn.models need libattn_nn, attn.viz libattn_viz, attn.explain
# libattn_explain, attn.gguf libattn_formats.
_SUBMODULES = ("torch", "nn", "score", "models", "text", "viz", "explain", "gguf", "info",
               "errors", "enums")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'attn' has no attribute %r" % name)


def __dir__() -> list:
    return sorted(set(globals()) | set(_SUBMODULES))
