"""attn: a small ctypes binding over libattn.so (exact scaled-dot-product attention).

Arrays use the library's logical layout [B, S, H, D] (Q [B, Sq, Hq, Dk],
K [B, Sk, Hkv, Dk], V [B, Sk, Hkv, Dv], O [B, Sq, Hq, Dv]) and may have any
non-negative strides: views are passed to C without copies. Arrays with
negative strides, or strides that are not a multiple of the item size, are
copied first. The dtype picks the kernel: float64 runs the double-precision
reference kernel, float32 the fastest kernel the CPU runs (AVX2+FMA, else the
portable tiled one), or the one named by kernel="avx2" | "tiled" | "ref"
("avx512" | "amx" name kernels this release does not have: AttnError).

The shared library is found via the environment variable ATTN_LIB, else
../../build/libattn.so relative to this package, else ../../build-*/libattn.so.
"""

import atexit
import ctypes
import glob
import os
import threading

import numpy as np

__all__ = [
    "AttnError", "forward", "backward", "weights", "dropout_keep", "dropout_mask",
    "philox4x32_10", "version", "lib",
    "F32", "F64", "BOOL", "KERNEL_AUTO", "KERNEL_REF", "KERNEL_TILED", "KERNEL_AVX2",
    "KERNEL_AVX512", "KERNEL_AMX",
    "ALIGN_TOP_LEFT", "ALIGN_BOTTOM_RIGHT",
]

# ---- C enums -----------------------------------------------------------------

F32, F64, BOOL = 1, 2, 3
KERNEL_AUTO, KERNEL_REF, KERNEL_TILED, KERNEL_AVX2, KERNEL_AVX512, KERNEL_AMX = 0, 1, 2, 3, 4, 5
ALIGN_TOP_LEFT, ALIGN_BOTTOM_RIGHT = 0, 1
OK = 0

_KERNELS = {"auto": KERNEL_AUTO, "ref": KERNEL_REF, "tiled": KERNEL_TILED, "avx2": KERNEL_AVX2,
            "avx512": KERNEL_AVX512, "amx": KERNEL_AMX}
_ALIGNS = {"top_left": ALIGN_TOP_LEFT, "bottom_right": ALIGN_BOTTOM_RIGHT}


# ---- C structs (mirror include/attn.h exactly) ---------------------------------

class Tensor(ctypes.Structure):
    """attn_tensor: void *data; attn_dtype dtype; int64_t dim[4]; int64_t stride[4]."""
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("dim", ctypes.c_int64 * 4),
        ("stride", ctypes.c_int64 * 4),
    ]


class SdpaParams(ctypes.Structure):
    """attn_sdpa_params, fields in declaration order."""
    _fields_ = [
        ("has_scale", ctypes.c_int),
        ("scale", ctypes.c_double),
        ("softcap", ctypes.c_double),
        ("causal", ctypes.c_int),
        ("align", ctypes.c_int),
        ("window_left", ctypes.c_int64),
        ("window_right", ctypes.c_int64),
        ("q_lens", ctypes.POINTER(ctypes.c_int64)),
        ("k_lens", ctypes.POINTER(ctypes.c_int64)),
        ("bias", ctypes.POINTER(Tensor)),
        ("mask", ctypes.POINTER(Tensor)),
        ("alibi_slopes", ctypes.POINTER(ctypes.c_double)),
        ("dropout_p", ctypes.c_double),
        ("seed", ctypes.c_uint64),
        ("offset", ctypes.c_uint64),
    ]


# ---- loading -------------------------------------------------------------------

def _find_library():
    env = os.environ.get("ATTN_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    cand = os.path.join(root, "build", "libattn.so")
    if os.path.exists(cand):
        return cand
    others = sorted(glob.glob(os.path.join(root, "build-*", "libattn.so")))
    if others:
        return others[0]
    raise OSError("libattn.so not found: set ATTN_LIB or build the library into "
                  + os.path.join(root, "build"))


def _load():
    L = ctypes.CDLL(_find_library())
    c_int, c_i64, c_u64, c_dbl = ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double
    PT = ctypes.POINTER(Tensor)
    PP = ctypes.POINTER(SdpaParams)
    PI64 = ctypes.POINTER(c_i64)
    PU32 = ctypes.POINTER(ctypes.c_uint32)

    L.attn_status_name.restype = ctypes.c_char_p
    L.attn_status_name.argtypes = [c_int]
    L.attn_status_string.restype = ctypes.c_char_p
    L.attn_status_string.argtypes = [c_int]
    L.attn_last_error.restype = ctypes.c_char_p
    L.attn_last_error.argtypes = []

    L.attn_ctx_create.restype = c_int
    L.attn_ctx_create.argtypes = [c_int, ctypes.POINTER(ctypes.c_void_p)]
    L.attn_ctx_free.restype = None
    L.attn_ctx_free.argtypes = [ctypes.c_void_p]
    L.attn_ctx_threads.restype = c_int
    L.attn_ctx_threads.argtypes = [ctypes.c_void_p]
    L.attn_ctx_set_kernel.restype = c_int
    L.attn_ctx_set_kernel.argtypes = [ctypes.c_void_p, c_int]
    L.attn_ctx_kernel.restype = c_int
    L.attn_ctx_kernel.argtypes = [ctypes.c_void_p]

    L.attn_sdpa_params_default.restype = SdpaParams
    L.attn_sdpa_params_default.argtypes = []
    L.attn_tensor_make.restype = Tensor
    L.attn_tensor_make.argtypes = [ctypes.c_void_p, c_int, c_i64, c_i64, c_i64, c_i64]

    L.attn_sdpa_forward.restype = c_int
    L.attn_sdpa_forward.argtypes = [ctypes.c_void_p, PT, PT, PT, PP, PT, PT]
    L.attn_sdpa_backward.restype = c_int
    L.attn_sdpa_backward.argtypes = [ctypes.c_void_p, PT, PT, PT, PT, PT, PT, PP,
                                     PT, PT, PT, PT]
    L.attn_sdpa_weights.restype = c_int
    L.attn_sdpa_weights.argtypes = [ctypes.c_void_p, PT, PT, PT, PP, PI64, c_i64,
                                    PI64, c_i64, c_int, PT]

    L.attn_philox4x32_10.restype = None
    L.attn_philox4x32_10.argtypes = [PU32, PU32, PU32]
    L.attn_dropout_keep.restype = c_int
    L.attn_dropout_keep.argtypes = [c_u64, c_u64, c_dbl, c_i64, c_i64, c_i64, c_i64, c_i64]
    return L


lib = _load()


def version():
    """The version this binding was written against (attn/attn.h has no runtime query)."""
    return (0, 1, 0)


# ---- errors --------------------------------------------------------------------

class AttnError(Exception):
    """A non-OK attn_status. Attributes: status (int), name ("ATTN_BAD_DIM"),
    message (attn_last_error() of the failed call)."""

    def __init__(self, status, message):
        self.status = int(status)
        self.name = lib.attn_status_name(self.status).decode()
        self.message = message
        super().__init__("%s: %s" % (self.name, message or
                                     lib.attn_status_string(self.status).decode()))


def _check(status):
    if status != OK:
        raise AttnError(status, lib.attn_last_error().decode())


# ---- contexts: one per (calling thread, thread count) -----------------------------

_ctx_lock = threading.Lock()
_ctxs = {}


def _ctx(threads):
    key = (threading.get_ident(), int(threads))
    c = _ctxs.get(key)
    if c is None:
        out = ctypes.c_void_p()
        _check(lib.attn_ctx_create(int(threads), ctypes.byref(out)))
        with _ctx_lock:
            _ctxs[key] = c = out
    return c


@atexit.register
def _free_ctxs():
    with _ctx_lock:
        for c in _ctxs.values():
            lib.attn_ctx_free(c)
        _ctxs.clear()


def _ctx_for(threads, kernel):
    if isinstance(kernel, str):
        if kernel not in _KERNELS:
            raise ValueError("kernel must be one of %s, not %r" % (sorted(_KERNELS), kernel))
        kernel = _KERNELS[kernel]
    c = _ctx(threads)
    _check(lib.attn_ctx_set_kernel(c, int(kernel)))
    return c


# ---- tensor views ---------------------------------------------------------------------

_DTYPES = {np.dtype(np.float32): F32, np.dtype(np.float64): F64, np.dtype(np.bool_): BOOL,
           np.dtype(np.uint8): BOOL}


def _usable(a):
    """a, or a copy of it whose strides are non-negative multiples of the item size."""
    a = np.asarray(a)
    if any(s < 0 or s % a.itemsize for s in a.strides):
        a = np.ascontiguousarray(a)
    return a


def _view(a, name):
    """An attn_tensor viewing the 4-d array a (no copy). a must come from _usable."""
    if a.ndim != 4:
        raise ValueError("%s must be 4-d, got shape %s" % (name, a.shape))
    if a.dtype not in _DTYPES:
        raise TypeError("%s has dtype %s; attn supports float32, float64 and bool" %
                        (name, a.dtype))
    t = Tensor()
    t.data = a.ctypes.data
    t.dtype = _DTYPES[a.dtype]
    for d in range(4):
        t.dim[d] = a.shape[d]
        t.stride[d] = a.strides[d] // a.itemsize
    return t


def _float_input(a, name):
    a = _usable(a)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError("%s must be float32 or float64, got %s" % (name, a.dtype))
    return a


def _to4(a, name):
    """Prepends size-1 dims to a bias/mask of fewer than 4 dims (numpy broadcasting)."""
    if a.ndim > 4:
        raise ValueError("%s must have at most 4 dims, got shape %s" % (name, a.shape))
    return a.reshape((1,) * (4 - a.ndim) + a.shape) if a.ndim < 4 else a


class _Call:
    """Builds attn_sdpa_params and keeps every buffer it points to alive."""

    def __init__(self, q, *, scale, softcap, causal, align, window, q_lens, k_lens, bias,
                 mask, alibi, dropout_p, seed, offset):
        B, Hq = q.shape[0], q.shape[2]
        p = lib.attn_sdpa_params_default()
        self.keep = []
        if scale is not None:
            p.has_scale = 1
            p.scale = float(scale)
        p.softcap = float(softcap)
        p.causal = 1 if causal else 0
        if isinstance(align, str):
            if align not in _ALIGNS:
                raise ValueError("align must be 'top_left' or 'bottom_right', not %r" % align)
            align = _ALIGNS[align]
        p.align = int(align)
        if window is None:
            window = (-1, -1)
        left, right = window
        p.window_left = -1 if left is None else int(left)
        p.window_right = -1 if right is None else int(right)
        p.q_lens = self._lens(q_lens, B, "q_lens")
        p.k_lens = self._lens(k_lens, B, "k_lens")
        self.bias_shape = None
        self.bias = None
        if bias is not None:
            b = np.asarray(bias)
            self.bias_shape = b.shape
            if b.dtype != q.dtype:
                b = b.astype(q.dtype)
            self.bias = _usable(_to4(b, "bias"))
            t = _view(self.bias, "bias")
            self.keep.append(t)
            p.bias = ctypes.pointer(t)
        if mask is not None:
            m = np.asarray(mask)
            if m.dtype not in (np.bool_, np.uint8):
                m = m.astype(np.bool_)
            m = _usable(_to4(m, "mask"))
            t = _view(m, "mask")
            self.keep += [m, t]
            p.mask = ctypes.pointer(t)
        if alibi is not None:
            s = np.ascontiguousarray(alibi, dtype=np.float64).reshape(-1)
            if s.shape[0] != Hq:
                raise ValueError("alibi needs Hq = %d slopes, got %d" % (Hq, s.shape[0]))
            self.keep.append(s)
            p.alibi_slopes = s.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        p.dropout_p = float(dropout_p)
        p.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        p.offset = int(offset) & 0xFFFFFFFFFFFFFFFF
        self.params = p

    def _lens(self, lens, B, name):
        if lens is None:
            return None
        a = np.ascontiguousarray(lens, dtype=np.int64).reshape(-1)
        if a.shape[0] != B:
            raise ValueError("%s needs B = %d entries, got %d" % (name, B, a.shape[0]))
        self.keep.append(a)
        return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))


def _lse4(lse):
    """The C view [B, Hq, Sq, 1] of an lse array [B, Hq, Sq] (or already 4-d)."""
    lse = _usable(lse)
    if lse.ndim == 3:
        lse = lse[..., None]
    return lse


# ---- public API ---------------------------------------------------------------------------

def forward(q, k, v, *, scale=None, softcap=0.0, causal=False, align="top_left",
            window=(-1, -1), q_lens=None, k_lens=None, bias=None, mask=None, alibi=None,
            dropout_p=0.0, seed=0, offset=0, threads=1, kernel="auto"):
    """O = softmax(mask(scale * Q K^T + bias)) V. Returns (o [B, Sq, Hq, Dv],
    lse [B, Hq, Sq]) in q's dtype; lse is -inf for rows with no visible key.

    mask: bool array broadcastable as [B|1, Hq|1, Sq|1, Sk|1], True = attend.
    bias: float array of the same broadcast shapes (cast to q's dtype).
    window: (left, right), -1 = unbounded. alibi: Hq slopes.
    """
    q = _float_input(q, "q")
    k = _float_input(k, "k")
    v = _float_input(v, "v")
    call = _Call(q, scale=scale, softcap=softcap, causal=causal, align=align, window=window,
                 q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask, alibi=alibi,
                 dropout_p=dropout_p, seed=seed, offset=offset)
    tq, tk, tv = _view(q, "q"), _view(k, "k"), _view(v, "v")
    B, Sq, Hq = q.shape[:3]
    o = np.zeros((B, Sq, Hq, v.shape[3]), dtype=q.dtype)
    lse = np.zeros((B, Hq, Sq, 1), dtype=q.dtype)
    to, tl = _view(o, "o"), _view(lse, "lse")
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_sdpa_forward(ctx, ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tv),
                                 ctypes.byref(call.params), ctypes.byref(to), ctypes.byref(tl)))
    return o, lse.reshape(B, Hq, Sq)


def backward(q, k, v, o, do, lse, *, scale=None, softcap=0.0, causal=False, align="top_left",
             window=(-1, -1), q_lens=None, k_lens=None, bias=None, mask=None, alibi=None,
             dropout_p=0.0, seed=0, offset=0, threads=1, kernel="auto", want_dbias=False):
    """Gradients of the forward with the same options. o and lse are the forward's
    outputs, do the gradient of o. Returns (dq, dk, dv, dbias) where dbias has the
    bias's shape (broadcast dims summed) when want_dbias, else None."""
    q = _float_input(q, "q")
    k = _float_input(k, "k")
    v = _float_input(v, "v")
    o = _float_input(o, "o")
    do = _float_input(do, "do")
    lse = _lse4(lse)
    if want_dbias and bias is None:
        raise ValueError("want_dbias=True needs a bias")
    call = _Call(q, scale=scale, softcap=softcap, causal=causal, align=align, window=window,
                 q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask, alibi=alibi,
                 dropout_p=dropout_p, seed=seed, offset=offset)
    views = [_view(a, n) for a, n in ((q, "q"), (k, "k"), (v, "v"), (o, "o"), (do, "do"),
                                      (lse, "lse"))]
    dq = np.zeros(q.shape, dtype=q.dtype)
    dk = np.zeros(k.shape, dtype=q.dtype)
    dv = np.zeros(v.shape, dtype=q.dtype)
    outs = [_view(dq, "dq"), _view(dk, "dk"), _view(dv, "dv")]
    dbias = tdb = None
    if want_dbias:
        dbias = np.zeros(call.bias.shape, dtype=q.dtype)
        tdb = _view(dbias, "dbias")
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_sdpa_backward(ctx, *[ctypes.byref(t) for t in views],
                                  ctypes.byref(call.params),
                                  *[ctypes.byref(t) for t in outs],
                                  ctypes.byref(tdb) if tdb is not None else None))
    if dbias is not None:
        dbias = dbias.reshape(call.bias_shape)
    return dq, dk, dv, dbias


def weights(q, k, lse, *, scale=None, softcap=0.0, causal=False, align="top_left",
            window=(-1, -1), q_lens=None, k_lens=None, bias=None, mask=None, alibi=None,
            dropout_p=0.0, seed=0, offset=0, threads=1, kernel="auto", heads=None, rows=None,
            with_dropout=False):
    """The attention probabilities [B, n_heads, n_rows, Sk] recomputed from q, k and the
    forward's lse, for the given head and row indices (None: all). with_dropout gives
    the weights applied to V (dropped 0, kept scaled by 1/(1-p))."""
    q = _float_input(q, "q")
    k = _float_input(k, "k")
    lse = _lse4(lse)
    call = _Call(q, scale=scale, softcap=softcap, causal=causal, align=align, window=window,
                 q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask, alibi=alibi,
                 dropout_p=dropout_p, seed=seed, offset=offset)
    B, Sq, Hq = q.shape[:3]
    idx = []
    for sel, full in ((heads, Hq), (rows, Sq)):
        if sel is None:
            idx.append((None, full))
        else:
            a = np.ascontiguousarray(sel, dtype=np.int64).reshape(-1)
            call.keep.append(a)
            idx.append((a.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), a.shape[0]))
    (hp, nh), (rp, nr) = idx
    tq, tk, tl = _view(q, "q"), _view(k, "k"), _view(lse, "lse")
    w = np.zeros((B, nh, nr, k.shape[1]), dtype=q.dtype)
    tw = _view(w, "w")
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_sdpa_weights(ctx, ctypes.byref(tq), ctypes.byref(tk), ctypes.byref(tl),
                                 ctypes.byref(call.params), hp, nh, rp, nr,
                                 1 if with_dropout else 0, ctypes.byref(tw)))
    return w


def dropout_keep(seed, offset, p, b, h, i, j, n_heads):
    """attn_dropout_keep: True if element (b, h, i, j) is kept at drop probability p."""
    return bool(lib.attn_dropout_keep(int(seed) & 0xFFFFFFFFFFFFFFFF,
                                      int(offset) & 0xFFFFFFFFFFFFFFFF, float(p),
                                      b, h, i, j, n_heads))


def dropout_mask(seed, offset, p, B, H, Sq, Sk):
    """The keep mask [B, H, Sq, Sk] (bool) of every kernel, via attn_dropout_keep."""
    out = np.empty((B, H, Sq, Sk), dtype=np.bool_)
    f = lib.attn_dropout_keep
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    offset = int(offset) & 0xFFFFFFFFFFFFFFFF
    p = float(p)
    for b in range(B):
        for h in range(H):
            for i in range(Sq):
                row = out[b, h, i]
                for j in range(Sk):
                    row[j] = f(seed, offset, p, b, h, i, j, H)
    return out


def philox4x32_10(ctr, key):
    """attn_philox4x32_10: 4 uint32 counter words, 2 uint32 key words -> 4 words."""
    c = (ctypes.c_uint32 * 4)(*[int(x) & 0xFFFFFFFF for x in ctr])
    kk = (ctypes.c_uint32 * 2)(*[int(x) & 0xFFFFFFFF for x in key])
    out = (ctypes.c_uint32 * 4)()
    lib.attn_philox4x32_10(c, kk, out)
    return tuple(out)
