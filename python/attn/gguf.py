"""attn.gguf: a ctypes binding over attn's GGUF reader (include/attn/gguf.h,
libattn_formats.so) and its byte-level BPE tokenizer (include/attn/text.h,
libattn_text.so) on the package's ctypes layer, as much as the tests need.

    f = GGUF(path)                      # mapped, validated
    f.version, f.alignment, f.data_offset
    f.keys()                            # [(key, type name)] in file order
    f.value(key)                        # str, int, float, bool or (nested) list
    f.tensors()                         # [TensorInfo] in file order
    f.read_rows(name, row0, n_rows)     # float32 array [n_rows, dims[0]]
    tok = BPE(f)                        # attn_bpe_load_gguf
    tok.encode(text, parse_special=False) -> [ids]
    tok.pretokenize(text) -> [(begin, end)] byte ranges of the words
    tok.decode(ids, skip_special=False) -> bytes
    tok.stream(ids) -> (str, invalid flags) through the stream decoder

A failed call raises the attn.AttnError subclass of the library's status.
"""

from __future__ import annotations

import ctypes as C
import os
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._lib.core import check as _check
from ._lib.formats import TensorInfo
from ._lib.formats import lib as _F
from ._lib.text import BpeStream
from ._lib.text import lib as _T

__all__ = ["GGUF", "BPE", "TensorInfo", "TYPE_NAMES"]

TYPE_NAMES = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
              "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"]
Text = Union[str, bytes]
_INTS = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64"}


def _bytes_at(ptr: C.c_void_p, n: int) -> bytes:
    return C.string_at(ptr, n) if n else b""


class GGUF:
    def __init__(self, path: Union[str, "os.PathLike[str]"]):
        self._h = C.c_void_p()
        _check(_F.attn_gguf_load(os.fsencode(path), C.byref(self._h)))
        self.version = _F.attn_gguf_version(self._h)
        self.alignment = _F.attn_gguf_alignment(self._h)
        self.data_offset = _F.attn_gguf_data_offset(self._h)

    def close(self) -> None:
        if self._h:
            _F.attn_gguf_free(self._h)
            self._h = C.c_void_p()

    def __del__(self) -> None:
        self.close()

    def keys(self) -> List[Tuple[str, str]]:
        out = []
        for i in range(_F.attn_gguf_kv_count(self._h)):
            key, t = C.c_char_p(), C.c_int()
            _check(_F.attn_gguf_kv(self._h, i, C.byref(key), C.byref(t)))
            out.append(((key.value or b"").decode(), TYPE_NAMES[t.value]))
        return out

    def value(self, key: str) -> Any:
        kind = dict(self.keys())[key]
        k = key.encode()
        if kind == "STRING":
            p, n = C.c_void_p(), C.c_size_t()
            _check(_F.attn_gguf_get_string(self._h, k, C.byref(p), C.byref(n)))
            return _bytes_at(p, n.value).decode()
        if kind == "ARRAY":
            a = C.c_void_p()
            _check(_F.attn_gguf_get_array(self._h, k, C.byref(a)))
            return _array(a)
        return _scalar(kind, lambda fn, out: getattr(_F, "attn_gguf_get_" + fn)(self._h, k, out))

    def tensors(self) -> List[TensorInfo]:
        out = []
        for i in range(_F.attn_gguf_tensor_count(self._h)):
            info = TensorInfo()
            _check(_F.attn_gguf_tensor_get(self._h, i, C.byref(info)))
            out.append(info)
        return out

    def tensor(self, name: str) -> TensorInfo:
        info = TensorInfo()
        _check(_F.attn_gguf_tensor_find(self._h, name.encode(), C.byref(info)))
        return info

    def read_rows(self, name: str, row0: int = 0, n_rows: Optional[int] = None) -> np.ndarray:
        info = self.tensor(name)
        n_rows = info.n_rows - row0 if n_rows is None else n_rows
        out = np.empty((n_rows, info.dims[0]), dtype=np.float32)
        _check(_F.attn_gguf_read_rows(C.byref(info), row0, n_rows,
                                      out.ctypes.data_as(C.c_void_p)))
        return out


def _scalar(kind: str, get: Callable[[str, Any], int]) -> Any:
    if kind in _INTS:
        unsigned = kind.startswith("U")
        n: Any = C.c_uint64() if unsigned else C.c_int64()
        _check(get("uint" if unsigned else "int", C.byref(n)))
        return n.value
    if kind in ("FLOAT32", "FLOAT64"):
        x = C.c_double()
        _check(get("float", C.byref(x)))
        return x.value
    b = C.c_int()
    _check(get("bool", C.byref(b)))
    return bool(b.value)


def _array(a: C.c_void_p) -> List[Any]:
    kind = TYPE_NAMES[_F.attn_gguf_array_type(a)]
    out: List[Any] = []
    for i in range(_F.attn_gguf_array_count(a)):
        if kind == "STRING":
            p, n = C.c_void_p(), C.c_size_t()
            _check(_F.attn_gguf_array_string(a, i, C.byref(p), C.byref(n)))
            out.append(_bytes_at(p, n.value).decode())
        elif kind == "ARRAY":
            sub = C.c_void_p()
            _check(_F.attn_gguf_array_array(a, i, C.byref(sub)))
            out.append(_array(sub))
        else:
            def get(fn: str, o: Any, i: int = i) -> int:
                return int(getattr(_F, "attn_gguf_array_" + fn)(a, i, o))
            out.append(_scalar(kind, get))
    return out


class BPE:
    def __init__(self, gguf: GGUF):
        self._gguf = gguf  # kept alive for symmetry; the tokenizer copies what it needs
        self._h = C.c_void_p()
        _check(_T.attn_bpe_load_gguf(gguf._h, C.byref(self._h)))
        self.vocab_size = _T.attn_bpe_vocab_size(self._h)

    def close(self) -> None:
        if self._h:
            _T.attn_bpe_free(self._h)
            self._h = C.c_void_p()

    def __del__(self) -> None:
        self.close()

    def encode(self, text: Text, parse_special: bool = False) -> List[int]:
        data = text.encode() if isinstance(text, str) else bytes(text)
        n = C.c_int64()
        _check(_T.attn_bpe_encode(self._h, data, len(data), int(parse_special), None, 0,
                                  C.byref(n)))
        ids = (C.c_int32 * max(n.value, 1))()
        _check(_T.attn_bpe_encode(self._h, data, len(data), int(parse_special), ids, n.value,
                                  C.byref(n)))
        return list(ids[:n.value])

    def pretokenize(self, text: Text) -> List[Tuple[int, int]]:
        data = text.encode() if isinstance(text, str) else bytes(text)
        n = C.c_int64()
        spans = (C.c_int64 * (2 * max(len(data), 1)))()
        _check(_T.attn_bpe_pretokenize(self._h, data, len(data), spans, len(data), C.byref(n)))
        return [(spans[2 * i], spans[2 * i + 1]) for i in range(n.value)]

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> bytes:
        arr = (C.c_int32 * max(len(ids), 1))(*ids)
        n = C.c_size_t()
        _check(_T.attn_bpe_decode(self._h, arr, len(ids), int(skip_special), None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        _check(_T.attn_bpe_decode(self._h, arr, len(ids), int(skip_special), buf, n.value,
                                  C.byref(n)))
        return buf.raw[:n.value]

    def stream(self, ids: Sequence[int]) -> Tuple[str, List[int]]:
        """The text of ids through the stream decoder, and each push's invalid flag."""
        s = BpeStream()
        parts, flags = [], []
        buf = C.create_string_buffer(3 * (3 + 4096))
        n, bad = C.c_size_t(), C.c_int()
        for i in ids:
            _check(_T.attn_bpe_stream_push(self._h, C.byref(s), i, buf, len(buf), C.byref(n),
                                           C.byref(bad)))
            parts.append(buf.raw[:n.value].decode())
            flags.append(bad.value)
        _check(_T.attn_bpe_stream_flush(C.byref(s), buf, len(buf), C.byref(n), C.byref(bad)))
        parts.append(buf.raw[:n.value].decode())
        flags.append(bad.value)
        return "".join(parts), flags
