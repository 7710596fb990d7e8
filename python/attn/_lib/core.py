"""libattn (attn/attn.h, attn/score.h): the structs, the functions, the status
check and the per-thread contexts every front end shares."""
from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any, Dict, Optional, Sequence

from ..errors import error_class
from . import load

c_int, c_i64, c_u64, c_dbl, c_p = (ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double,
                                   ctypes.c_void_p)
c_char_p = ctypes.c_char_p


I64x4 = c_i64 * 4


class Tensor(ctypes.Structure):
    """attn_tensor: void *data; attn_dtype dtype; int64_t dim[4]; int64_t stride[4]
    (strides in elements)."""
    _fields_ = [("data", c_p), ("dtype", c_int), ("dim", I64x4), ("stride", I64x4)]


class SdpaParams(ctypes.Structure):
    """attn_sdpa_params, fields in declaration order. The arrays q_lens, k_lens
    (int64) and alibi_slopes (double) are addresses, as the front ends hold
    them; bias and mask point to Tensor structs."""
    _fields_ = [
        ("has_scale", c_int), ("scale", c_dbl), ("softcap", c_dbl),
        ("causal", c_int), ("align", c_int), ("window_left", c_i64), ("window_right", c_i64),
        ("q_lens", c_p), ("k_lens", c_p),
        ("bias", ctypes.POINTER(Tensor)), ("mask", ctypes.POINTER(Tensor)),
        ("alibi_slopes", c_p),
        ("dropout_p", c_dbl), ("seed", c_u64), ("offset", c_u64),
        ("align_offset", c_i64), ("block_mask", c_p),
        ("n_seqs", c_i64), ("cu_seqlens_q", c_p), ("cu_seqlens_k", c_p),
    ]


SCORE_SLOTS = ("w_q", "w_k", "b", "v_a", "w", "g")


class ScoreParams(ctypes.Structure):
    """attn_score_params: the kind, its parameter tensors, and the masks."""
    _fields_ = ([("kind", c_int)] + [(s, ctypes.POINTER(Tensor)) for s in SCORE_SLOTS] +
                [("masks", SdpaParams)])


class ScoreGrads(ctypes.Structure):
    """attn_score_grads: d_w_q, d_w_k, d_b, d_v_a, d_w, d_g."""
    _fields_ = [("d_" + s, ctypes.POINTER(Tensor)) for s in SCORE_SLOTS]


PT, PS = ctypes.POINTER(Tensor), ctypes.POINTER(ScoreParams)
PU32 = ctypes.POINTER(ctypes.c_uint32)

# The SDPA calls take their structs as addresses (c_p): the front ends pack
# them into a CallArgs buffer, which costs a fraction of building ctypes
# Structures on every call.
FUNCTIONS = [
    ("attn_version", c_char_p),
    ("attn_status_name", c_char_p, c_int),
    ("attn_status_string", c_char_p, c_int),
    ("attn_last_error", c_char_p),
    ("attn_dtype_name", c_char_p, c_int),
    ("attn_dtype_size", ctypes.c_size_t, c_int),
    ("attn_release", None, c_p),
    ("attn_ctx_create", c_int, c_int, ctypes.POINTER(c_p)),
    ("attn_ctx_free", None, c_p),
    ("attn_ctx_trim", None, c_p),
    ("attn_ctx_threads", c_int, c_p),
    ("attn_ctx_set_kernel", c_int, c_p, c_int),
    ("attn_ctx_kernel", c_int, c_p),
    ("attn_ctx_resolved_kernel", c_int, c_p),
    ("attn_kernel_name", c_char_p, c_int),
    ("attn_ctx_describe", c_int, c_p, c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)),
    ("attn_tensor_make", Tensor, c_p, c_int, c_i64, c_i64, c_i64, c_i64),
    ("attn_sdpa_params_default", SdpaParams),
    ("attn_sdpa_forward", c_int, c_p, c_p, c_p, c_p, c_p, c_p, c_p),
    ("attn_sdpa_backward", c_int, c_p, c_p, c_p, c_p, c_p, c_p, c_p, c_p, c_p, c_p, c_p, c_p),
    ("attn_sdpa_weights", c_int, c_p, c_p, c_p, c_p, c_p, c_p, c_i64, c_p, c_i64, c_int, c_p),
    ("attn_philox4x32_10", None, PU32, PU32, PU32),
    ("attn_dropout_keep", c_int, c_u64, c_u64, c_dbl, c_i64, c_i64, c_i64, c_i64, c_i64),
    ("attn_score_params_default", ScoreParams, c_int),
    ("attn_score_forward", c_int, c_p, PT, PT, PT, PS, PT, PT),
    ("attn_score_backward", c_int, c_p, PT, PT, PT, PT, PT, PT, PS, PT, PT, PT,
     ctypes.POINTER(ScoreGrads)),
    ("attn_score_weights", c_int, c_p, PT, PT, PT, PS, c_int, PT),
]

lib = load("attn", FUNCTIONS)
_last_error = lib.attn_last_error

# attn_tensor and attn_sdpa_params as bytes (native sizes, LP64 padding).
TENSOR = struct.Struct("=qi4x4q4q")
SDPA_PARAMS = struct.Struct("=i4xddiiqqqqqqqdQQqqqqq")
SDPA_PARAMS_FIELDS = len(SDPA_PARAMS.unpack(bytes(SDPA_PARAMS.size)))
if TENSOR.size != ctypes.sizeof(Tensor) or SDPA_PARAMS.size != ctypes.sizeof(SdpaParams):
    raise ImportError("attn: the C structs of this platform are not laid out as the binding "
                      "packs them (attn_tensor %d bytes, attn_sdpa_params %d)" %
                      (ctypes.sizeof(Tensor), ctypes.sizeof(SdpaParams)))


class CallArgs(threading.local):
    """Memory for the structs of one C call, one buffer per thread: start()
    at the beginning of a call, then each tensor() or params() packs one
    struct and returns its address, valid until the next start() on this
    thread. (No call into attn reenters Python before it returns.)"""

    def __init__(self) -> None:
        self.buf = (ctypes.c_char * 4096)()
        self.base = ctypes.addressof(self.buf)
        self.used = 0

    def start(self) -> "CallArgs":
        self.used = 0
        return self

    def tensor(self, ptr: int, dtype: int, shape: Sequence[int],
               strides: Sequence[int]) -> int:
        """An attn_tensor: data ptr, dtype, dim[4] and stride[4] (elements)."""
        off = self.used
        self.used = off + 80  # pack_into refuses to write past the buffer
        TENSOR.pack_into(self.buf, off, ptr, dtype, *shape, *strides)
        return self.base + off

    def params(self, *fields: Any) -> int:
        """An attn_sdpa_params from its fields in declaration order (the
        pointers as addresses, 0 for NULL); the trailing fields not given
        (align_offset, block_mask, n_seqs, cu_seqlens_q/k) are 0."""
        off = self.used
        self.used = off + SDPA_PARAMS.size
        SDPA_PARAMS.pack_into(self.buf, off, *fields, *([0] * (SDPA_PARAMS_FIELDS - len(fields))))
        return self.base + off


call_args = CallArgs()


def check(status: int) -> None:
    """Raises the exception of a non-zero status with attn_last_error()'s
    message (the calling thread's: read it right after the failed call)."""
    if status:
        raise error_class(status)(_last_error().decode("utf-8", "replace"), status)


# ---- contexts: one per (calling thread, thread count) ---------------------------------

class Context:
    """An attn_ctx owned by one Python thread; freed when that thread ends."""
    __slots__ = ("handle", "initial_kernel", "kernel")

    def __init__(self, threads: int):
        self.handle = c_p()
        check(lib.attn_ctx_create(threads, ctypes.byref(self.handle)))
        # ATTN_KERNEL in the environment sets a new context's kernel: kernel=None
        # in the front ends means this choice.
        self.initial_kernel = self.kernel = lib.attn_ctx_kernel(self.handle)

    def use_kernel(self, kernel: Optional[int]) -> None:
        want = self.initial_kernel if kernel is None else int(kernel)
        if want != self.kernel:
            check(lib.attn_ctx_set_kernel(self.handle, want))
            self.kernel = want

    def __del__(self, _free=lib.attn_ctx_free) -> None:
        handle = getattr(self, "handle", None)
        if handle:
            _free(handle)


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.contexts: Dict[int, Context] = {}


_per_thread = _PerThread()


def trim_memory() -> None:
    """Frees the large buffers the calling thread's contexts keep for their
    next calls (attn_ctx_trim)."""
    for ctx in _per_thread.contexts.values():
        lib.attn_ctx_trim(ctx.handle)


def context(threads: int, kernel: Optional[int] = None) -> ctypes.c_void_p:
    """The calling thread's attn_ctx with `threads` threads (0: one per CPU),
    running `kernel` (None: ATTN_KERNEL or auto)."""
    contexts = _per_thread.contexts
    ctx = contexts.get(threads)
    if ctx is None:
        ctx = contexts[threads] = Context(threads)
    if kernel != ctx.kernel:
        ctx.use_kernel(kernel)
    return ctx.handle
