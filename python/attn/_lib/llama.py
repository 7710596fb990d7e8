"""libattn_nn's Llama model (attn/llama.h): SmolLM2 and other Llama-architecture
GGUF models. Structs mirror the header field by field."""
from __future__ import annotations

import ctypes

from . import load

c_int, c_i32, c_i64, c_u64, c_dbl, c_sz, c_p = (ctypes.c_int, ctypes.c_int32, ctypes.c_int64,
                                                ctypes.c_uint64, ctypes.c_double, ctypes.c_size_t,
                                                ctypes.c_void_p)
st = ctypes.c_int  # attn_status
PP, PI32, PI64, PF = (ctypes.POINTER(c_p), ctypes.POINTER(c_i32), ctypes.POINTER(c_i64),
                      ctypes.POINTER(ctypes.c_float))


class Config(ctypes.Structure):
    """attn_llama_config."""
    _fields_ = [(n, c_i64) for n in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head",
                                     "d_ff", "n_vocab", "n_ctx")] + \
               [("rope_theta", c_dbl), ("rms_eps", c_dbl), ("tied", c_int)]


class Message(ctypes.Structure):
    """attn_llama_message."""
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class SessionParams(ctypes.Structure):
    """attn_llama_session_params."""
    _fields_ = [("n_ctx", c_i64), ("cache_dtype", c_int)]


class Sampling(ctypes.Structure):
    """attn_llama_sampling."""
    _fields_ = [("temperature", c_dbl), ("top_k", c_i64), ("top_p", c_dbl), ("min_p", c_dbl),
                ("repeat_penalty", c_dbl), ("repeat_last_n", c_i64), ("seed", c_u64)]


class GenerateParams(ctypes.Structure):
    """attn_llama_generate_params."""
    _fields_ = [("sampling", Sampling), ("max_tokens", c_i64)]


FUNCTIONS = [
    ("attn_llama_load", st, ctypes.c_char_p, PP),
    ("attn_llama_free", None, c_p),
    ("attn_llama_get_config", ctypes.POINTER(Config), c_p),
    ("attn_llama_tokenizer", c_p, c_p),
    ("attn_llama_chat_format", st, c_p, ctypes.POINTER(Message), c_i64, c_int, c_int, c_p, c_sz,
     ctypes.POINTER(c_sz)),
    ("attn_llama_session_create", st, c_p, ctypes.POINTER(SessionParams), PP),
    ("attn_llama_session_free", None, c_p),
    ("attn_llama_session_length", c_i64, c_p),
    ("attn_llama_forward", st, c_p, c_p, PI32, c_i64, PF),
    ("attn_llama_generate", st, c_p, c_p, PI32, c_i64, ctypes.POINTER(GenerateParams), c_p, c_p,
     PI32, c_i64, PI64, ctypes.POINTER(c_int)),
    ("attn_llama_attention", st, c_p, c_p, PI32, c_i64, c_i64, PI64, c_i64, PF),
    ("attn_llama_sample", st, ctypes.POINTER(Sampling), PF, c_i64, PI32, c_i64, c_u64, PI32),
]

lib = load("attn_nn", FUNCTIONS)
