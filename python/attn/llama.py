"""attn.llama: a ctypes binding over attn's Llama model (include/attn/llama.h,
libattn_nn.so), as much as the tests need.

    m = Llama(path, threads=2, kernel=None)   # attn_llama_load + a context
    m.config                                   # dict of attn_llama_config
    m.encode(text, special=True) -> [ids]      # the file's BPE tokenizer
    m.decode(ids) -> bytes
    m.chat(messages, add_generation_prompt=True, continuation=False) -> str
    s = m.session(n_ctx=0)
    s.forward(ids) -> float32 logits [n_vocab] of the last id
    s.generate(ids, max_tokens, temperature=0, ...) -> ([ids], stopped)
    m.attention(ids, layer, heads=None) -> float32 [n_heads, n, n]
    m.sample(logits, history=(), step=0, **sampling) -> id

The library is found via ATTN_NN_LIB, else ../../build/libattn_nn.so (or
../../build-*/) relative to this package.
"""

import ctypes as C

import numpy as np

from .gguf import _find

__all__ = ["Llama", "Session", "LlamaError", "KERNELS"]

OK = 0
KERNELS = {"auto": 0, "ref": 1, "tiled": 2, "avx2": 3}


class LlamaError(RuntimeError):
    def __init__(self, status, message):
        super().__init__(f"status {status}: {message}")
        self.status = status


class Config(C.Structure):
    _fields_ = [(n, C.c_int64) for n in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head",
                                          "d_ff", "n_vocab", "n_ctx")] + \
               [("rope_theta", C.c_double), ("rms_eps", C.c_double), ("tied", C.c_int)]


class Message(C.Structure):
    _fields_ = [("role", C.c_char_p), ("content", C.c_char_p)]


class SessionParams(C.Structure):
    _fields_ = [("n_ctx", C.c_int64), ("cache_dtype", C.c_int)]


class Sampling(C.Structure):
    _fields_ = [("temperature", C.c_double), ("top_k", C.c_int64), ("top_p", C.c_double),
                ("min_p", C.c_double), ("repeat_penalty", C.c_double), ("repeat_last_n", C.c_int64),
                ("seed", C.c_uint64)]


class GenerateParams(C.Structure):
    _fields_ = [("sampling", Sampling), ("max_tokens", C.c_int64)]


_lib = None


def lib():
    global _lib
    if _lib is None:
        L = C.CDLL(_find("ATTN_NN_LIB", "libattn_nn.so"))
        vp, i64, st, sz = C.c_void_p, C.c_int64, C.c_int, C.c_size_t
        PP, PI32, PF = C.POINTER(vp), C.POINTER(C.c_int32), C.POINTER(C.c_float)
        for name, res, args in [
            ("attn_last_error", C.c_char_p, []),
            ("attn_ctx_create", st, [C.c_int, PP]),
            ("attn_ctx_free", None, [vp]),
            ("attn_ctx_set_kernel", st, [vp, C.c_int]),
            ("attn_llama_load", st, [C.c_char_p, PP]),
            ("attn_llama_free", None, [vp]),
            ("attn_llama_get_config", C.POINTER(Config), [vp]),
            ("attn_llama_tokenizer", vp, [vp]),
            ("attn_llama_chat_format", st, [vp, C.POINTER(Message), i64, C.c_int, C.c_int,
                                            C.c_char_p, sz, C.POINTER(sz)]),
            ("attn_llama_session_create", st, [vp, C.POINTER(SessionParams), PP]),
            ("attn_llama_session_free", None, [vp]),
            ("attn_llama_session_length", i64, [vp]),
            ("attn_llama_forward", st, [vp, vp, PI32, i64, PF]),
            ("attn_llama_generate", st, [vp, vp, PI32, i64, C.POINTER(GenerateParams), vp, vp,
                                         PI32, i64, C.POINTER(i64), C.POINTER(C.c_int)]),
            ("attn_llama_attention", st, [vp, vp, PI32, i64, i64, C.POINTER(i64), i64, PF]),
            ("attn_llama_sample", st, [C.POINTER(Sampling), PF, i64, PI32, i64, C.c_uint64,
                                       PI32]),
            ("attn_bpe_encode", st, [vp, C.c_char_p, sz, C.c_int, PI32, i64, C.POINTER(i64)]),
            ("attn_bpe_decode", st, [vp, PI32, i64, C.c_int, C.c_char_p, sz, C.POINTER(sz)]),
        ]:
            f = getattr(L, name)
            f.restype, f.argtypes = res, args
        _lib = L
    return _lib


def _check(status):
    if status != OK:
        raise LlamaError(status, lib().attn_last_error().decode("utf-8", "replace"))


def _ids(ids):
    a = np.ascontiguousarray(ids, dtype=np.int32)
    return a, a.ctypes.data_as(C.POINTER(C.c_int32))


def sampling(temperature=0.0, top_k=0, top_p=0.0, min_p=0.0, repeat_penalty=0.0,
             repeat_last_n=0, seed=0):
    return Sampling(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)


class Session:
    def __init__(self, model, n_ctx=0):
        self.model = model
        h = C.c_void_p()
        _check(lib().attn_llama_session_create(model.h, C.byref(SessionParams(n_ctx, 0)),
                                                C.byref(h)))
        self.h = h

    def __del__(self):
        if getattr(self, "h", None):
            lib().attn_llama_session_free(self.h)
            self.h = None

    def __len__(self):
        return lib().attn_llama_session_length(self.h)

    def forward(self, ids):
        a, p = _ids(ids)
        logits = np.empty(self.model.config["n_vocab"], dtype=np.float32)
        _check(lib().attn_llama_forward(self.model.ctx, self.h, p, len(a),
                                        logits.ctypes.data_as(C.POINTER(C.c_float))))
        return logits

    def generate(self, ids, max_tokens, **kw):
        a, p = _ids(ids)
        out = np.zeros(max(max_tokens, 1), dtype=np.int32)
        n, stopped = C.c_int64(), C.c_int()
        gp = GenerateParams(sampling(**kw), max_tokens)
        _check(lib().attn_llama_generate(self.model.ctx, self.h, p, len(a), C.byref(gp), None, None,
                                         out.ctypes.data_as(C.POINTER(C.c_int32)), len(out),
                                         C.byref(n), C.byref(stopped)))
        return out[:n.value].tolist(), bool(stopped.value)


class Llama:
    def __init__(self, path, threads=2, kernel=None):
        L = lib()
        h, ctx = C.c_void_p(), C.c_void_p()
        _check(L.attn_llama_load(path.encode(), C.byref(h)))
        self.h = h
        _check(L.attn_ctx_create(threads, C.byref(ctx)))
        self.ctx = ctx
        if kernel is not None:
            _check(L.attn_ctx_set_kernel(ctx, KERNELS[kernel]))
        c = L.attn_llama_get_config(h).contents
        self.config = {n: getattr(c, n) for n, _ in Config._fields_}
        self.tok = L.attn_llama_tokenizer(h)

    def __del__(self):
        L = lib()
        if getattr(self, "ctx", None):
            L.attn_ctx_free(self.ctx)
            self.ctx = None
        if getattr(self, "h", None):
            L.attn_llama_free(self.h)
            self.h = None

    def session(self, n_ctx=0):
        return Session(self, n_ctx)

    def encode(self, text, special=True):
        b = text.encode("utf-8") if isinstance(text, str) else text
        n = C.c_int64()
        _check(lib().attn_bpe_encode(self.tok, b, len(b), int(special), None, 0, C.byref(n)))
        out = np.zeros(max(n.value, 1), dtype=np.int32)
        _check(lib().attn_bpe_encode(self.tok, b, len(b), int(special),
                                     out.ctypes.data_as(C.POINTER(C.c_int32)), len(out), C.byref(n)))
        return out[:n.value].tolist()

    def decode(self, ids):
        a, p = _ids(ids)
        n = C.c_size_t()
        _check(lib().attn_bpe_decode(self.tok, p, len(a), 0, None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        _check(lib().attn_bpe_decode(self.tok, p, len(a), 0, buf, len(buf), C.byref(n)))
        return buf.raw[:n.value]

    def chat(self, messages, add_generation_prompt=True, continuation=False):
        msgs = (Message * max(len(messages), 1))(
            *[Message(m["role"].encode(), m["content"].encode()) for m in messages])
        n = C.c_size_t()
        args = (self.h, msgs, len(messages), int(add_generation_prompt), int(continuation))
        _check(lib().attn_llama_chat_format(*args, None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        _check(lib().attn_llama_chat_format(*args, buf, len(buf), C.byref(n)))
        return buf.raw[:n.value].decode("utf-8")

    def attention(self, ids, layer, heads=None):
        a, p = _ids(ids)
        nh = len(heads) if heads is not None else self.config["n_heads"]
        w = np.empty((nh, len(a), len(a)), dtype=np.float32)
        hs = None
        if heads is not None:
            harr = np.ascontiguousarray(heads, dtype=np.int64)
            hs = harr.ctypes.data_as(C.POINTER(C.c_int64))
        _check(lib().attn_llama_attention(self.ctx, self.h, p, len(a), layer, hs, nh,
                                          w.ctypes.data_as(C.POINTER(C.c_float))))
        return w

    def sample(self, logits, history=(), step=0, **kw):
        z = np.ascontiguousarray(logits, dtype=np.float32)
        h, hp = _ids(list(history) or [0])
        out = C.c_int32()
        _check(lib().attn_llama_sample(C.byref(sampling(**kw)),
                                       z.ctypes.data_as(C.POINTER(C.c_float)), len(z), hp,
                                       len(history), step, C.byref(out)))
        return out.value
