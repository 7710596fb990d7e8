"""attn.nn: a ctypes binding over libattn_nn.so, the transformer toolkit's layers,
loss, optimiser and schedules (include/attn/nn.h), on numpy float32 arrays.

Conventions (the C API's):
  - Inputs are converted to C-contiguous float32 (int32 for ids, targets and
    positions), copying only when needed.
  - Forward functions return new arrays.
  - Backward functions ACCUMULATE (+=) into their gradients. Pass an existing
    C-contiguous, writable float32 array of the right shape to add into it, or
    None (the default) to get a fresh one starting at zero. The gradients are
    returned.
  - Row-wise layers (linear, layernorm, rmsnorm) accept any leading dims.
  - The linear layer runs on a context (threads, kernel) as attn.forward
    does; the result is the same for any thread count.
  - A failed call raises attn.AttnError with the library's status and message.

The shared library is found via the environment variable ATTN_NN_LIB, else
libattn_nn.so beside the libattn.so that the attn package loaded, else
../../build/libattn_nn.so relative to this package, else ../../build-*/libattn_nn.so.
"""

import ctypes
import glob
import math
import os

import numpy as np

from . import AttnError
from . import _ctx_for
from . import lib as _core_lib

__all__ = [
    "lib", "linear_forward", "linear_backward", "embedding_forward", "embedding_backward",
    "layernorm_forward", "layernorm_backward", "rmsnorm_forward", "rmsnorm_backward",
    "act_forward", "act_backward", "dropout_forward", "dropout_backward", "dropout_keep",
    "dropout_mask", "sinusoidal", "rope_forward", "rope_backward", "cross_entropy",
    "AdamW", "adamw_default", "adamw_step", "clip_grad_norm", "lr",
    "GELU", "RELU", "SCHED_CONSTANT", "SCHED_COSINE", "SCHED_INVSQRT",
]

# ---- C enums -----------------------------------------------------------------------

GELU, RELU = 1, 2
SCHED_CONSTANT, SCHED_COSINE, SCHED_INVSQRT = 0, 1, 2
_ACTS = {"gelu": GELU, "relu": RELU}
_SCHEDS = {"constant": SCHED_CONSTANT, "cosine": SCHED_COSINE, "invsqrt": SCHED_INVSQRT}
_U64 = 0xFFFFFFFFFFFFFFFF


class AdamW(ctypes.Structure):
    """attn_nn_adamw: double lr, beta1, beta2, eps, weight_decay."""
    _fields_ = [("lr", ctypes.c_double), ("beta1", ctypes.c_double),
                ("beta2", ctypes.c_double), ("eps", ctypes.c_double),
                ("weight_decay", ctypes.c_double)]


# ---- loading -------------------------------------------------------------------------

def _find_library():
    env = os.environ.get("ATTN_NN_LIB")
    if env:
        return env
    core = getattr(_core_lib, "_name", None)
    if core:
        beside = os.path.join(os.path.dirname(os.path.abspath(core)), "libattn_nn.so")
        if os.path.exists(beside):
            return beside
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    cand = os.path.join(root, "build", "libattn_nn.so")
    if os.path.exists(cand):
        return cand
    others = sorted(glob.glob(os.path.join(root, "build-*", "libattn_nn.so")))
    if others:
        return others[0]
    raise OSError("libattn_nn.so not found: set ATTN_NN_LIB or build the target "
                  "attn_nn_shared into " + os.path.join(root, "build"))


def _declare(L, name, restype, *argtypes):
    f = getattr(L, name)
    f.restype = restype
    f.argtypes = list(argtypes)


def _load():
    L = ctypes.CDLL(_find_library())
    P, i32, i64, u64, dbl, st = (ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64,
                                 ctypes.c_uint64, ctypes.c_double, ctypes.c_int)
    # attn_last_error through this handle: the copy of libattn that libattn_nn uses
    _declare(L, "attn_last_error", ctypes.c_char_p)
    _declare(L, "attn_nn_linear_forward", st, P, P, i64, i64, P, P, i64, P)
    _declare(L, "attn_nn_linear_backward", st, P, P, i64, i64, P, i64, P, P, P, P)
    _declare(L, "attn_nn_embedding_forward", st, P, i64, P, i64, i64, P)
    _declare(L, "attn_nn_embedding_backward", st, P, i64, i64, i64, P, P)
    _declare(L, "attn_nn_layernorm_forward", st, P, i64, i64, P, P, dbl, P, P, P)
    _declare(L, "attn_nn_layernorm_backward", st, P, i64, i64, P, P, P, P, P, P, P)
    _declare(L, "attn_nn_rmsnorm_forward", st, P, i64, i64, P, dbl, P, P)
    _declare(L, "attn_nn_rmsnorm_backward", st, P, i64, i64, P, P, P, P, P)
    _declare(L, "attn_nn_act_forward", st, st, P, i64, P)
    _declare(L, "attn_nn_act_backward", st, st, P, i64, P, P)
    _declare(L, "attn_nn_dropout_forward", st, P, i64, dbl, u64, u64, P)
    _declare(L, "attn_nn_dropout_backward", st, P, i64, dbl, u64, u64, P)
    _declare(L, "attn_nn_dropout_keep", ctypes.c_int, u64, u64, dbl, i64)
    _declare(L, "attn_nn_sinusoidal", st, i64, i64, P)
    _declare(L, "attn_nn_rope_forward", st, P, i64, i64, i64, P, dbl, P)
    _declare(L, "attn_nn_rope_backward", st, P, i64, i64, i64, P, dbl, P)
    _declare(L, "attn_nn_cross_entropy", st, P, i64, i64, P, i32, dbl, dbl,
             ctypes.POINTER(dbl), ctypes.POINTER(i64), P)
    _declare(L, "attn_nn_adamw_default", AdamW)
    _declare(L, "attn_nn_adamw_step", st, ctypes.POINTER(AdamW), i64, P, P, P, P, i64,
             ctypes.c_int)
    _declare(L, "attn_nn_clip_grad_norm", st, ctypes.POINTER(P), ctypes.POINTER(i64),
             ctypes.c_int, dbl, ctypes.POINTER(dbl))
    _declare(L, "attn_nn_lr", st, st, i64, i64, i64, dbl, dbl, ctypes.POINTER(dbl))
    return L


lib = _load()


def _check(status):
    if status != 0:
        raise AttnError(status, lib.attn_last_error().decode())


# ---- arrays ---------------------------------------------------------------------------

def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _i32(a):
    return np.ascontiguousarray(a, dtype=np.int32)


def _ptr(a):
    return None if a is None else a.ctypes.data


def _grad(a, shape, name):
    """A gradient to accumulate into: a as is (checked), or zeros of shape."""
    shape = tuple(int(s) for s in shape)
    if a is None:
        return np.zeros(shape, dtype=np.float32)
    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
        raise TypeError("%s must be a float32 numpy array" % name)
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError("%s must be C-contiguous and writable" % name)
    if a.shape != shape:
        raise ValueError("%s has shape %s; expected %s" % (name, a.shape, shape))
    return a


def _inplace(a, name):
    """An array the C side updates in place: float32, C-contiguous, writable."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
        raise TypeError("%s must be a float32 numpy array" % name)
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError("%s must be C-contiguous and writable" % name)
    return a


def _rows(x, name):
    """x as [n, d] rows of its last dim, and its shape."""
    x = _f32(x)
    if x.ndim < 1:
        raise ValueError("%s must have at least one dim" % name)
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1]), x.shape


def _kind(value, table, what):
    if isinstance(value, str):
        if value not in table:
            raise ValueError("%s must be one of %s, not %r" % (what, sorted(table), value))
        return table[value]
    return int(value)


# ---- linear ------------------------------------------------------------------------------

def linear_forward(x, w, b=None, *, threads=1, kernel="auto"):
    """y [..., out] = x [..., in] w^T + b, w [out, in] (torch.nn.Linear layout),
    on a context of `threads` threads and the given kernel choice."""
    x2, shape = _rows(x, "x")
    w = _f32(w)
    b = None if b is None else _f32(b)
    out = w.shape[0]
    y = np.empty((x2.shape[0], out), dtype=np.float32)
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_nn_linear_forward(ctx, _ptr(x2), x2.shape[0], x2.shape[1], _ptr(w), _ptr(b),
                                      out, _ptr(y)))
    return y.reshape(shape[:-1] + (out,))


def linear_backward(x, w, dy, *, dx=None, dw=None, db=None, need_db=True, threads=1,
                    kernel="auto"):
    """Accumulates dx [..., in] += dy w, dw += dy^T x, db += sum_rows dy.
    Returns (dx, dw, db); db is None when need_db is False and db was not given."""
    x2, shape = _rows(x, "x")
    w = _f32(w)
    out, n_in = w.shape
    dy2 = _f32(dy).reshape(-1, out)
    dx = _grad(dx, shape, "dx")
    dw = _grad(dw, w.shape, "dw")
    if db is not None or need_db:
        db = _grad(db, (out,), "db")
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_nn_linear_backward(ctx, _ptr(x2), x2.shape[0], n_in, _ptr(w), out,
                                       _ptr(dy2), _ptr(dx), _ptr(dw), _ptr(db)))
    return dx, dw, db


# ---- embedding -----------------------------------------------------------------------------

def embedding_forward(ids, table):
    """y [*ids.shape, d] = rows of table [vocab, d]."""
    ids = _i32(ids)
    table = _f32(table)
    vocab, d = table.shape
    y = np.empty(ids.shape + (d,), dtype=np.float32)
    _check(lib.attn_nn_embedding_forward(_ptr(ids), ids.size, _ptr(table), vocab, d, _ptr(y)))
    return y


def embedding_backward(ids, dy, vocab, *, dtable=None):
    """dtable [vocab, d] rows ids[r] += dy row r. Returns dtable."""
    ids = _i32(ids)
    dy = _f32(dy)
    d = dy.shape[-1]
    dtable = _grad(dtable, (vocab, d), "dtable")
    _check(lib.attn_nn_embedding_backward(_ptr(ids), ids.size, int(vocab), d, _ptr(dy),
                                          _ptr(dtable)))
    return dtable


# ---- norms --------------------------------------------------------------------------------------

def layernorm_forward(x, gamma, beta=None, eps=1e-5):
    """LayerNorm over the last dim. Returns (y, mean, rstd); mean and rstd have
    shape x.shape[:-1] and are what layernorm_backward needs."""
    x2, shape = _rows(x, "x")
    gamma = _f32(gamma)
    beta = None if beta is None else _f32(beta)
    n, d = x2.shape
    y = np.empty_like(x2)
    mean = np.empty(n, dtype=np.float32)
    rstd = np.empty(n, dtype=np.float32)
    _check(lib.attn_nn_layernorm_forward(_ptr(x2), n, d, _ptr(gamma), _ptr(beta), float(eps),
                                         _ptr(y), _ptr(mean), _ptr(rstd)))
    return y.reshape(shape), mean.reshape(shape[:-1]), rstd.reshape(shape[:-1])


def layernorm_backward(x, gamma, mean, rstd, dy, *, dx=None, dgamma=None, dbeta=None):
    """Accumulates into (dx, dgamma, dbeta) and returns them."""
    x2, shape = _rows(x, "x")
    gamma, mean, rstd = _f32(gamma), _f32(mean), _f32(rstd)
    n, d = x2.shape
    dy2 = _f32(dy).reshape(n, d)
    dx = _grad(dx, shape, "dx")
    dgamma = _grad(dgamma, (d,), "dgamma")
    dbeta = _grad(dbeta, (d,), "dbeta")
    _check(lib.attn_nn_layernorm_backward(_ptr(x2), n, d, _ptr(gamma), _ptr(mean), _ptr(rstd),
                                          _ptr(dy2), _ptr(dx), _ptr(dgamma), _ptr(dbeta)))
    return dx, dgamma, dbeta


def rmsnorm_forward(x, gamma, eps=1e-6):
    """RMSNorm over the last dim (torch.nn.RMSNorm). Returns (y, rstd)."""
    x2, shape = _rows(x, "x")
    gamma = _f32(gamma)
    n, d = x2.shape
    y = np.empty_like(x2)
    rstd = np.empty(n, dtype=np.float32)
    _check(lib.attn_nn_rmsnorm_forward(_ptr(x2), n, d, _ptr(gamma), float(eps), _ptr(y),
                                       _ptr(rstd)))
    return y.reshape(shape), rstd.reshape(shape[:-1])


def rmsnorm_backward(x, gamma, rstd, dy, *, dx=None, dgamma=None):
    """Accumulates into (dx, dgamma) and returns them."""
    x2, shape = _rows(x, "x")
    gamma, rstd = _f32(gamma), _f32(rstd)
    n, d = x2.shape
    dy2 = _f32(dy).reshape(n, d)
    dx = _grad(dx, shape, "dx")
    dgamma = _grad(dgamma, (d,), "dgamma")
    _check(lib.attn_nn_rmsnorm_backward(_ptr(x2), n, d, _ptr(gamma), _ptr(rstd), _ptr(dy2),
                                        _ptr(dx), _ptr(dgamma)))
    return dx, dgamma


# ---- activations and dropout ------------------------------------------------------------------

def act_forward(x, kind="gelu"):
    """kind "gelu" (exact erf GELU) or "relu"; any shape."""
    x = _f32(x)
    y = np.empty_like(x)
    _check(lib.attn_nn_act_forward(_kind(kind, _ACTS, "kind"), _ptr(x), x.size, _ptr(y)))
    return y


def act_backward(x, dy, kind="gelu", *, dx=None):
    """dx += act'(x) * dy. Returns dx."""
    x = _f32(x)
    dy = _f32(dy)
    dx = _grad(dx, x.shape, "dx")
    _check(lib.attn_nn_act_backward(_kind(kind, _ACTS, "kind"), _ptr(x), x.size, _ptr(dy),
                                    _ptr(dx)))
    return dx


def dropout_forward(x, p, seed, offset=0):
    """Inverted dropout of x (any shape; element e is the e-th in C order)."""
    x = _f32(x)
    y = np.empty_like(x)
    _check(lib.attn_nn_dropout_forward(_ptr(x), x.size, float(p), int(seed) & _U64,
                                       int(offset) & _U64, _ptr(y)))
    return y


def dropout_backward(dy, p, seed, offset=0, *, dx=None):
    """dx += keep ? dy / (1 - p) : 0. Returns dx."""
    dy = _f32(dy)
    dx = _grad(dx, dy.shape, "dx")
    _check(lib.attn_nn_dropout_backward(_ptr(dy), dy.size, float(p), int(seed) & _U64,
                                        int(offset) & _U64, _ptr(dx)))
    return dx


def dropout_keep(seed, offset, p, e):
    """attn_nn_dropout_keep: True if element e is kept."""
    return bool(lib.attn_nn_dropout_keep(int(seed) & _U64, int(offset) & _U64, float(p),
                                         int(e)))


def dropout_mask(shape, p, seed, offset=0):
    """The keep mask (bool, of the given shape) that dropout_forward applies."""
    ones = np.ones(shape, dtype=np.float32)
    return dropout_forward(ones, p, seed, offset) != 0


# ---- positions -----------------------------------------------------------------------------------

def sinusoidal(n_pos, d):
    """The sinusoidal position table [n_pos, d]."""
    t = np.empty((int(n_pos), int(d)), dtype=np.float32)
    _check(lib.attn_nn_sinusoidal(int(n_pos), int(d), _ptr(t)))
    return t


def rope_forward(x, pos, theta=10000.0):
    """Rotary positions on x [n, heads, hd] (rotate-half pairing), pos [n]."""
    x = _f32(x)
    pos = _i32(pos)
    n, heads, hd = x.shape
    y = np.empty_like(x)
    _check(lib.attn_nn_rope_forward(_ptr(x), n, heads, hd, _ptr(pos), float(theta), _ptr(y)))
    return y


def rope_backward(dy, pos, theta=10000.0, *, dx=None):
    """dx [n, heads, hd] += R^T dy. Returns dx."""
    dy = _f32(dy)
    pos = _i32(pos)
    n, heads, hd = dy.shape
    dx = _grad(dx, dy.shape, "dx")
    _check(lib.attn_nn_rope_backward(_ptr(dy), n, heads, hd, _ptr(pos), float(theta),
                                     _ptr(dx)))
    return dx


# ---- loss ------------------------------------------------------------------------------------------

def cross_entropy(logits, targets, *, ignore_index=-100, label_smoothing=0.0, grad_scale=1.0,
                  want_grad=True):
    """F.cross_entropy(logits [..., vocab], targets [...], reduction="mean").
    Returns (loss, count, dlogits): count rows were not ignored; dlogits (same
    shape as logits, d loss / d logits times grad_scale) or None."""
    z = _f32(logits)
    vocab = z.shape[-1]
    z2 = z.reshape(-1, vocab)
    t = _i32(targets).reshape(-1)
    loss = ctypes.c_double()
    count = ctypes.c_int64()
    dz = np.empty_like(z2) if want_grad else None
    _check(lib.attn_nn_cross_entropy(_ptr(z2), z2.shape[0], vocab, _ptr(t), int(ignore_index),
                                     float(label_smoothing), float(grad_scale),
                                     ctypes.byref(loss), ctypes.byref(count), _ptr(dz)))
    return loss.value, count.value, None if dz is None else dz.reshape(z.shape)


# ---- optimisation -------------------------------------------------------------------------------------

def adamw_default():
    """torch.optim.AdamW's defaults as an AdamW struct."""
    return lib.attn_nn_adamw_default()


def adamw_step(param, grad, m, v, step, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=1e-2, decay=True):
    """One AdamW step (step counted from 1) updating param, m and v in place
    (float32, C-contiguous, writable, same size). decay=False: no weight decay."""
    param, m, v = _inplace(param, "param"), _inplace(m, "m"), _inplace(v, "v")
    grad = _f32(grad)
    if not (param.size == grad.size == m.size == v.size):
        raise ValueError("param, grad, m and v must have the same size")
    opt = AdamW(float(lr), float(betas[0]), float(betas[1]), float(eps), float(weight_decay))
    _check(lib.attn_nn_adamw_step(ctypes.byref(opt), int(step), _ptr(param), _ptr(grad),
                                  _ptr(m), _ptr(v), param.size, 1 if decay else 0))


def clip_grad_norm(grads, max_norm):
    """Clips a list of float32 gradient arrays in place by their global L2 norm
    (torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
    grads = [_inplace(g, "grads[%d]" % i) for i, g in enumerate(grads)]
    n = len(grads)
    bufs = (ctypes.c_void_p * max(n, 1))(*[g.ctypes.data for g in grads])
    counts = (ctypes.c_int64 * max(n, 1))(*[g.size for g in grads])
    norm = ctypes.c_double()
    _check(lib.attn_nn_clip_grad_norm(bufs, counts, n, float(max_norm), ctypes.byref(norm)))
    return norm.value


def lr(kind, step, warmup, total, base_lr, min_lr=0.0):
    """attn_nn_lr: kind "constant" | "cosine" | "invsqrt" (or its enum value).
    Invalid arguments raise AttnError (ATTN_BAD_PARAM)."""
    out = ctypes.c_double()
    _check(lib.attn_nn_lr(_kind(kind, _SCHEDS, "kind"), int(step), int(warmup), int(total),
                          float(base_lr), float(min_lr), ctypes.byref(out)))
    return out.value
