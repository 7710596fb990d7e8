"""attn.gguf: a ctypes binding over attn's GGUF reader (include/attn/gguf.h,
libattn_formats.so) and its byte-level BPE tokenizer (include/attn/text.h,
libattn_text.so), as much as the tests need.

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

The libraries are found via ATTN_FORMATS_LIB / ATTN_TEXT_LIB, else in
../../build (or ../../build-*) relative to this package.
"""

import ctypes as C
import glob
import os

import numpy as np

__all__ = ["GGUF", "BPE", "TensorInfo", "GgufError", "TYPE_NAMES"]

OK = 0
TYPE_NAMES = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
              "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"]
_INTS = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64"}
MAX_DIMS = 4


class GgufError(RuntimeError):
    def __init__(self, status, message):
        super().__init__(f"status {status}: {message}")
        self.status = status


def _find(env, name):
    path = os.environ.get(env)
    if path:
        return path
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for cand in [os.path.join(root, "build", name)] + sorted(
            glob.glob(os.path.join(root, "build-*", name))):
        if os.path.exists(cand):
            return cand
    raise OSError(f"{name} not found: set {env} or build into {os.path.join(root, 'build')}")


class TensorInfo(C.Structure):
    """attn_gguf_tensor_info, fields in declaration order."""
    _fields_ = [("name", C.c_char_p), ("type", C.c_int), ("n_dims", C.c_int),
                ("dims", C.c_int64 * MAX_DIMS), ("numel", C.c_int64), ("n_rows", C.c_int64),
                ("row_bytes", C.c_size_t), ("bytes", C.c_size_t), ("offset", C.c_size_t),
                ("data", C.c_void_p)]


class BpeStream(C.Structure):
    _fields_ = [("pending", C.c_ubyte * 4), ("n_pending", C.c_int)]


def _declare(F, T):
    vp, i64, sz, st = C.c_void_p, C.c_int64, C.c_size_t, C.c_int
    PP, PI64, PU64, PSZ = C.POINTER(vp), C.POINTER(i64), C.POINTER(C.c_uint64), C.POINTER(sz)
    PS, PI, PD = C.POINTER(C.c_char_p), C.POINTER(C.c_int), C.POINTER(C.c_double)
    sigs = {
        F: {
            "attn_last_error": (C.c_char_p, []),
            "attn_gguf_load": (st, [C.c_char_p, PP]),
            "attn_gguf_free": (None, [vp]),
            "attn_gguf_version": (C.c_uint32, [vp]),
            "attn_gguf_alignment": (sz, [vp]),
            "attn_gguf_data_offset": (sz, [vp]),
            "attn_gguf_kv_count": (i64, [vp]),
            "attn_gguf_kv": (st, [vp, i64, PS, PI]),
            "attn_gguf_get_string": (st, [vp, C.c_char_p, C.POINTER(C.c_void_p), PSZ]),
            "attn_gguf_get_int": (st, [vp, C.c_char_p, PI64]),
            "attn_gguf_get_uint": (st, [vp, C.c_char_p, PU64]),
            "attn_gguf_get_float": (st, [vp, C.c_char_p, PD]),
            "attn_gguf_get_bool": (st, [vp, C.c_char_p, PI]),
            "attn_gguf_get_array": (st, [vp, C.c_char_p, PP]),
            "attn_gguf_array_count": (i64, [vp]),
            "attn_gguf_array_type": (C.c_int, [vp]),
            "attn_gguf_array_string": (st, [vp, i64, C.POINTER(C.c_void_p), PSZ]),
            "attn_gguf_array_int": (st, [vp, i64, PI64]),
            "attn_gguf_array_uint": (st, [vp, i64, PU64]),
            "attn_gguf_array_float": (st, [vp, i64, PD]),
            "attn_gguf_array_bool": (st, [vp, i64, PI]),
            "attn_gguf_array_array": (st, [vp, i64, PP]),
            "attn_gguf_tensor_count": (i64, [vp]),
            "attn_gguf_tensor_get": (st, [vp, i64, C.POINTER(TensorInfo)]),
            "attn_gguf_tensor_find": (st, [vp, C.c_char_p, C.POINTER(TensorInfo)]),
            "attn_gguf_tensor_type_name": (C.c_char_p, [C.c_int]),
            "attn_gguf_read_rows": (st, [C.POINTER(TensorInfo), i64, i64, C.c_void_p]),
        },
        T: {
            "attn_bpe_load_gguf": (st, [vp, PP]),
            "attn_bpe_free": (None, [vp]),
            "attn_bpe_vocab_size": (i64, [vp]),
            "attn_bpe_encode": (st, [vp, C.c_char_p, sz, C.c_int, C.c_void_p, i64, PI64]),
            "attn_bpe_pretokenize": (st, [vp, C.c_char_p, sz, C.c_void_p, i64, PI64]),
            "attn_bpe_decode": (st, [vp, C.c_void_p, i64, C.c_int, C.c_void_p, sz, PSZ]),
            "attn_bpe_stream_push": (st, [vp, C.POINTER(BpeStream), C.c_int32, C.c_void_p, sz,
                                          PSZ, PI]),
            "attn_bpe_stream_flush": (st, [C.POINTER(BpeStream), C.c_void_p, sz, PSZ, PI]),
        },
    }
    for lib, fns in sigs.items():
        for name, (res, args) in fns.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args


_F = C.CDLL(_find("ATTN_FORMATS_LIB", "libattn_formats.so"))
_T = C.CDLL(_find("ATTN_TEXT_LIB", "libattn_text.so"))
_declare(_F, _T)


def _check(status):
    if status != OK:
        raise GgufError(status, _F.attn_last_error().decode(errors="replace"))


def _bytes_at(ptr, n):
    return C.string_at(ptr, n) if n else b""


class GGUF:
    def __init__(self, path):
        self._h = C.c_void_p()
        _check(_F.attn_gguf_load(os.fsencode(path), C.byref(self._h)))
        self.version = _F.attn_gguf_version(self._h)
        self.alignment = _F.attn_gguf_alignment(self._h)
        self.data_offset = _F.attn_gguf_data_offset(self._h)

    def close(self):
        if self._h:
            _F.attn_gguf_free(self._h)
            self._h = C.c_void_p()

    def __del__(self):
        self.close()

    def keys(self):
        out = []
        for i in range(_F.attn_gguf_kv_count(self._h)):
            key, t = C.c_char_p(), C.c_int()
            _check(_F.attn_gguf_kv(self._h, i, C.byref(key), C.byref(t)))
            out.append((key.value.decode(), TYPE_NAMES[t.value]))
        return out

    def value(self, key):
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

    def tensors(self):
        out = []
        for i in range(_F.attn_gguf_tensor_count(self._h)):
            info = TensorInfo()
            _check(_F.attn_gguf_tensor_get(self._h, i, C.byref(info)))
            out.append(info)
        return out

    def tensor(self, name):
        info = TensorInfo()
        _check(_F.attn_gguf_tensor_find(self._h, name.encode(), C.byref(info)))
        return info

    def read_rows(self, name, row0=0, n_rows=None):
        info = self.tensor(name)
        n_rows = info.n_rows - row0 if n_rows is None else n_rows
        out = np.empty((n_rows, info.dims[0]), dtype=np.float32)
        _check(_F.attn_gguf_read_rows(C.byref(info), row0, n_rows,
                                      out.ctypes.data_as(C.c_void_p)))
        return out


def _scalar(kind, get):
    if kind in _INTS:
        unsigned = kind.startswith("U")
        v = C.c_uint64() if unsigned else C.c_int64()
        _check(get("uint" if unsigned else "int", C.byref(v)))
        return v.value
    if kind in ("FLOAT32", "FLOAT64"):
        v = C.c_double()
        _check(get("float", C.byref(v)))
        return v.value
    v = C.c_int()
    _check(get("bool", C.byref(v)))
    return bool(v.value)


def _array(a):
    kind = TYPE_NAMES[_F.attn_gguf_array_type(a)]
    out = []
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
            out.append(_scalar(kind, lambda fn, o, i=i: getattr(_F, "attn_gguf_array_" + fn)(a, i, o)))
    return out


class BPE:
    def __init__(self, gguf):
        self._gguf = gguf  # kept alive for symmetry; the tokenizer copies what it needs
        self._h = C.c_void_p()
        _check(_T.attn_bpe_load_gguf(gguf._h, C.byref(self._h)))
        self.vocab_size = _T.attn_bpe_vocab_size(self._h)

    def close(self):
        if self._h:
            _T.attn_bpe_free(self._h)
            self._h = C.c_void_p()

    def __del__(self):
        self.close()

    def encode(self, text, parse_special=False):
        data = text.encode() if isinstance(text, str) else bytes(text)
        n = C.c_int64()
        _check(_T.attn_bpe_encode(self._h, data, len(data), int(parse_special), None, 0,
                                  C.byref(n)))
        ids = (C.c_int32 * max(n.value, 1))()
        _check(_T.attn_bpe_encode(self._h, data, len(data), int(parse_special), ids, n.value,
                                  C.byref(n)))
        return list(ids[:n.value])

    def pretokenize(self, text):
        data = text.encode() if isinstance(text, str) else bytes(text)
        n = C.c_int64()
        spans = (C.c_int64 * (2 * max(len(data), 1)))()
        _check(_T.attn_bpe_pretokenize(self._h, data, len(data), spans, len(data), C.byref(n)))
        return [(spans[2 * i], spans[2 * i + 1]) for i in range(n.value)]

    def decode(self, ids, skip_special=False):
        arr = (C.c_int32 * max(len(ids), 1))(*ids)
        n = C.c_size_t()
        _check(_T.attn_bpe_decode(self._h, arr, len(ids), int(skip_special), None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        _check(_T.attn_bpe_decode(self._h, arr, len(ids), int(skip_special), buf, n.value,
                                  C.byref(n)))
        return buf.raw[:n.value]

    def stream(self, ids):
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
