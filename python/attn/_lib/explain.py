"""libattn_explain (attn/explain.h): the attention explorer's document, its
page, and the arithmetic of rollout and relevance."""
from __future__ import annotations

import ctypes

from . import load

c_int, c_i64, c_sz, c_p, c_str = (ctypes.c_int, ctypes.c_int64, ctypes.c_size_t,
                                  ctypes.c_void_p, ctypes.c_char_p)
st = ctypes.c_int  # attn_status
PI64 = ctypes.POINTER(c_i64)

MAX_TOKENS = 512  # ATTN_EXPLAIN_MAX_TOKENS
MAX_TEXT = 4096   # ATTN_EXPLAIN_MAX_TEXT

FUNCTIONS = [
    ("attn_explain_create", st, c_str, ctypes.POINTER(c_p)),
    ("attn_explain_free", None, c_p),
    ("attn_explain_add_note", st, c_p, c_str),
    ("attn_explain_add_tokens", st, c_p, c_str, ctypes.POINTER(c_str), c_i64, PI64),
    ("attn_explain_add_group", st, c_p, c_str, c_i64, c_i64, c_i64, c_i64, PI64),
    ("attn_explain_set_weights", st, c_p, c_i64, c_i64, c_i64, c_p),
    ("attn_explain_add_target", st, c_p, c_str, PI64),
    ("attn_explain_add_map", st, c_p, c_i64, c_int, c_i64, c_p, c_p),
    ("attn_explain_select", st, c_p, c_i64, c_i64, c_i64),
    ("attn_explain_html", st, c_p, c_p, c_sz, ctypes.POINTER(c_sz)),
    ("attn_explain_write", st, c_p, c_str, ctypes.POINTER(c_sz)),
    ("attn_explain_head_mean", st, c_p, c_p, c_i64, c_i64, c_i64, c_p),
    ("attn_explain_rollout", st, c_p, c_i64, c_i64, c_i64, c_p),
    ("attn_explain_self_rule", st, c_p, c_i64, c_p, c_p, c_i64),
    ("attn_explain_cross_rule", st, c_p, c_p, c_i64, c_p, c_i64, c_p),
]

lib = load("attn_explain", FUNCTIONS)
