"""attn.models: ready-made models on attn's C libraries.

  MiniLM          all-MiniLM-L6-v2 sentence embeddings (BERT on attn_nn, the
                  WordPiece tokenizer of attn_text), as sentence-transformers
                  computes them
  DateTranslator  the encoder-decoder transformer of `attn train` on the
                  built-in dates task: train, translate, cross-attention maps

Each class loads its library (libattn_nn, libattn_task) when first used; a
library that is missing or cannot be loaded raises an ImportError naming the
file.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MiniLM", "DateTranslator"]

_WHERE = {"MiniLM": ".minilm", "DateTranslator": ".dates"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError("module 'attn.models' has no attribute %r" % name)


def __dir__() -> list:
    return sorted(set(globals()) | set(_WHERE))
