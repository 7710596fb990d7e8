"""libattn_text (attn/text.h): the WordPiece tokenizer."""
from __future__ import annotations

import ctypes

from . import load

c_p, c_i64 = ctypes.c_void_p, ctypes.c_int64

FUNCTIONS = [
    ("attn_wordpiece_load", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(c_p)),
    ("attn_wordpiece_load_memory", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
     ctypes.POINTER(c_p)),
    ("attn_wordpiece_free", None, c_p),
    ("attn_wordpiece_vocab_size", c_i64, c_p),
    ("attn_wordpiece_token", ctypes.c_char_p, c_p, ctypes.c_int32),
    ("attn_wordpiece_id", ctypes.c_int32, c_p, ctypes.c_char_p),
    ("attn_wordpiece_special", ctypes.c_int32, c_p, ctypes.c_char_p),
    ("attn_wordpiece_encode", ctypes.c_int, c_p, ctypes.c_char_p, c_i64, c_p, c_i64,
     ctypes.POINTER(c_i64), c_p),
]

lib = load("attn_text", FUNCTIONS)
