"""attn.text: the WordPiece tokenizer of BERT models (include/attn/text.h).

    tok = attn.text.WordPiece("vocab.txt")
    tok.encode("Hello world")             # [101, 7592, 2088, 102]
    tok.encode_offsets("Hello world")     # (ids, [(-1, -1), (0, 5), (6, 11), (-1, -1)])

encode gives [CLS] word pieces [SEP], truncated to max_len ids as Hugging
Face's truncation does. Offsets are byte ranges of the UTF-8 text ((-1, -1)
for [CLS] and [SEP]). The vocabulary file is untrusted: a bad one raises
attn.BadFileError naming the line.
"""
from __future__ import annotations

import ctypes
import os
from typing import List, Optional, Tuple, Union

import numpy as np

from ._lib.core import check
from ._lib.text import lib

__all__ = ["WordPiece"]

Text = Union[str, bytes]


class WordPiece:
    """A WordPiece vocabulary (attn_wordpiece), loaded from a vocab.txt file."""

    def __init__(self, vocab_path: Union[str, "os.PathLike[str]"]):
        self._t: Optional[ctypes.c_void_p] = ctypes.c_void_p()
        check(lib.attn_wordpiece_load(os.fsencode(vocab_path), ctypes.byref(self._t)))

    @classmethod
    def from_bytes(cls, data: bytes) -> "WordPiece":
        """A vocabulary from the bytes of a vocab.txt file."""
        self = cls.__new__(cls)
        self._t = ctypes.c_void_p()
        check(lib.attn_wordpiece_load_memory(data, len(data), ctypes.byref(self._t)))
        return self

    def close(self, _free=lib.attn_wordpiece_free) -> None:
        """Frees the vocabulary (also done when the object is collected); the
        object is unusable after."""
        t, self._t = getattr(self, "_t", None), None
        if t:
            _free(t)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "WordPiece":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def handle(self) -> Optional[ctypes.c_void_p]:
        """The attn_wordpiece pointer, for the C functions of attn._lib."""
        return self._t

    @property
    def vocab_size(self) -> int:
        return int(lib.attn_wordpiece_vocab_size(self._t))

    def __len__(self) -> int:
        return self.vocab_size

    def token(self, id: int) -> Optional[str]:
        """The token of an id, or None outside the vocabulary."""
        s = lib.attn_wordpiece_token(self._t, int(id))
        return None if s is None else s.decode("utf-8")

    def id(self, token: str) -> int:
        """The id of a token, or -1."""
        return int(lib.attn_wordpiece_id(self._t, token.encode("utf-8")))

    def special(self, name: str) -> int:
        """The id of "[PAD]", "[UNK]", "[CLS]", "[SEP]" or "[MASK]", or -1."""
        return int(lib.attn_wordpiece_special(self._t, name.encode("utf-8")))

    def _encode(self, text: Text, max_len: int, offs: Optional[np.ndarray]) -> np.ndarray:
        """The ids; offs [cap, 2] (or None) receives the offsets."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        cap = max(int(max_len), 0)
        ids = np.empty(max(cap, 1), np.int32)
        n = ctypes.c_int64()
        check(lib.attn_wordpiece_encode(self._t, data, int(max_len), ids.ctypes.data, cap,
                                        ctypes.byref(n), None if offs is None else
                                        offs.ctypes.data))
        return ids[:n.value]

    def encode(self, text: Text, max_len: int = 256) -> List[int]:
        """The ids of [CLS] text [SEP], at most max_len (>= 2) of them. text is a
        str or UTF-8 bytes (invalid UTF-8 raises attn.BadParamError naming the byte)."""
        return self._encode(text, max_len, None).tolist()

    def encode_offsets(self, text: Text, max_len: int = 256
                       ) -> Tuple[List[int], List[Tuple[int, int]]]:
        """(ids, offsets): each id's byte range [begin, end) in the UTF-8 text."""
        offs = np.empty((max(int(max_len), 1), 2), np.int64)
        ids = self._encode(text, max_len, offs)
        return ids.tolist(), [(int(a), int(b)) for a, b in offs[:len(ids)]]
