"""libattn_formats (attn/gguf.h): the GGUF reader. attn_gguf_tensor_info is
mirrored field by field; strings come back as (address, length) pairs."""
from __future__ import annotations

import ctypes

from . import load

c_int, c_i64, c_u64, c_sz, c_p = (ctypes.c_int, ctypes.c_int64, ctypes.c_uint64,
                                  ctypes.c_size_t, ctypes.c_void_p)
st = ctypes.c_int  # attn_status
MAX_DIMS = 4       # ATTN_GGUF_MAX_DIMS


class TensorInfo(ctypes.Structure):
    """attn_gguf_tensor_info."""
    _fields_ = [("name", ctypes.c_char_p), ("type", c_int), ("n_dims", c_int),
                ("dims", c_i64 * MAX_DIMS), ("numel", c_i64), ("n_rows", c_i64),
                ("row_bytes", c_sz), ("bytes", c_sz), ("offset", c_sz), ("data", c_p)]


PP, PI64, PU64, PSZ = (ctypes.POINTER(c_p), ctypes.POINTER(c_i64), ctypes.POINTER(c_u64),
                       ctypes.POINTER(c_sz))
PI, PD, PInfo = ctypes.POINTER(c_int), ctypes.POINTER(ctypes.c_double), ctypes.POINTER(TensorInfo)

FUNCTIONS = [
    ("attn_gguf_load", st, ctypes.c_char_p, PP),
    ("attn_gguf_free", None, c_p),
    ("attn_gguf_version", ctypes.c_uint32, c_p),
    ("attn_gguf_alignment", c_sz, c_p),
    ("attn_gguf_data_offset", c_sz, c_p),
    ("attn_gguf_kv_count", c_i64, c_p),
    ("attn_gguf_kv", st, c_p, c_i64, ctypes.POINTER(ctypes.c_char_p), PI),
    ("attn_gguf_get_string", st, c_p, ctypes.c_char_p, PP, PSZ),
    ("attn_gguf_get_int", st, c_p, ctypes.c_char_p, PI64),
    ("attn_gguf_get_uint", st, c_p, ctypes.c_char_p, PU64),
    ("attn_gguf_get_float", st, c_p, ctypes.c_char_p, PD),
    ("attn_gguf_get_bool", st, c_p, ctypes.c_char_p, PI),
    ("attn_gguf_get_array", st, c_p, ctypes.c_char_p, PP),
    ("attn_gguf_array_count", c_i64, c_p),
    ("attn_gguf_array_type", c_int, c_p),
    ("attn_gguf_array_string", st, c_p, c_i64, PP, PSZ),
    ("attn_gguf_array_int", st, c_p, c_i64, PI64),
    ("attn_gguf_array_uint", st, c_p, c_i64, PU64),
    ("attn_gguf_array_float", st, c_p, c_i64, PD),
    ("attn_gguf_array_bool", st, c_p, c_i64, PI),
    ("attn_gguf_array_array", st, c_p, c_i64, PP),
    ("attn_gguf_tensor_count", c_i64, c_p),
    ("attn_gguf_tensor_get", st, c_p, c_i64, PInfo),
    ("attn_gguf_tensor_find", st, c_p, ctypes.c_char_p, PInfo),
    ("attn_gguf_tensor_type_name", ctypes.c_char_p, c_int),
    ("attn_gguf_read_rows", st, PInfo, c_i64, c_i64, c_p),
]

lib = load("attn_formats", FUNCTIONS)
