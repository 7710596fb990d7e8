"""libattn_text (attn/text.h): the WordPiece tokenizer and the byte-level BPE
tokenizer (its vocabulary read from a GGUF file of libattn_formats)."""
from __future__ import annotations

import ctypes

from . import load

c_int, c_i32, c_i64, c_sz, c_p = (ctypes.c_int, ctypes.c_int32, ctypes.c_int64,
                                  ctypes.c_size_t, ctypes.c_void_p)
PI64, PSZ, PI = ctypes.POINTER(c_i64), ctypes.POINTER(c_sz), ctypes.POINTER(c_int)


class BpeStream(ctypes.Structure):
    """attn_bpe_stream: the pending bytes of an unfinished character."""
    _fields_ = [("pending", ctypes.c_ubyte * 4), ("n_pending", c_int)]


PStream = ctypes.POINTER(BpeStream)

FUNCTIONS = [
    # WordPiece
    ("attn_wordpiece_load", c_int, ctypes.c_char_p, ctypes.POINTER(c_p)),
    ("attn_wordpiece_load_memory", c_int, ctypes.c_char_p, c_sz, ctypes.POINTER(c_p)),
    ("attn_wordpiece_free", None, c_p),
    ("attn_wordpiece_vocab_size", c_i64, c_p),
    ("attn_wordpiece_token", ctypes.c_char_p, c_p, c_i32),
    ("attn_wordpiece_id", c_i32, c_p, ctypes.c_char_p),
    ("attn_wordpiece_special", c_i32, c_p, ctypes.c_char_p),
    ("attn_wordpiece_encode", c_int, c_p, ctypes.c_char_p, c_i64, c_p, c_i64, PI64, c_p),
    # byte-level BPE
    ("attn_bpe_load_gguf", c_int, c_p, ctypes.POINTER(c_p)),
    ("attn_bpe_free", None, c_p),
    ("attn_bpe_vocab_size", c_i64, c_p),
    ("attn_bpe_encode", c_int, c_p, ctypes.c_char_p, c_sz, c_int, c_p, c_i64, PI64),
    ("attn_bpe_pretokenize", c_int, c_p, ctypes.c_char_p, c_sz, c_p, c_i64, PI64),
    ("attn_bpe_decode", c_int, c_p, c_p, c_i64, c_int, c_p, c_sz, PSZ),
    ("attn_bpe_stream_push", c_int, c_p, PStream, c_i32, c_p, c_sz, PSZ, PI),
    ("attn_bpe_stream_flush", c_int, PStream, c_p, c_sz, PSZ, PI),
]

lib = load("attn_text", FUNCTIONS)
