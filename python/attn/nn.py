"""attn.nn: the transformer toolkit's layers, loss, optimiser and schedules
(include/attn/nn.h, library attn_nn) on numpy float32 arrays.

Conventions (the C API's):
  - Inputs are converted to C-contiguous float32 (int32 for ids, targets and
    positions), copying only when needed.
  - Forward functions return new arrays.
  - Backward functions ACCUMULATE (+=) into their gradients. Pass an existing
    C-contiguous, writable float32 array of the right shape to add into it, or
    None (the default) to get a fresh one starting at zero. The gradients are
    returned.
  - Row-wise layers (linear, layernorm, rmsnorm) accept any leading dims.
  - A failed call raises the attn.AttnError subclass of the library's status,
    with its message.
  - The linear layer runs on a context (threads, kernel) as attn.sdpa does;
    the result is the same for any thread count.
"""
from __future__ import annotations

import ctypes
import enum
import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ._lib.core import check as _check
from ._lib.core import context as _context
from ._lib.nn import AdamW, lib
from ._sdpa import kernel_arg as _kernel_arg
from ._sdpa import threads_arg as _threads_arg
from .enums import Kernel, enum_value
from .errors import BadDtypeError, ShapeMismatchError

__all__ = [
    "linear_forward", "linear_backward", "embedding_forward", "embedding_backward",
    "layernorm_forward", "layernorm_backward", "rmsnorm_forward", "rmsnorm_backward",
    "act_forward", "act_backward", "dropout_forward", "dropout_backward", "dropout_keep",
    "dropout_mask", "sinusoidal", "rope_forward", "rope_backward", "cross_entropy",
    "AdamW", "adamw_default", "adamw_step", "clip_grad_norm", "lr", "Act", "Schedule",
]


class Act(enum.IntEnum):
    """attn_nn_act."""
    GELU = 1  # exact (erf) GELU, torch's default
    RELU = 2


class Schedule(enum.IntEnum):
    """attn_nn_schedule: the learning-rate schedules of attn_nn_lr."""
    CONSTANT = 0
    COSINE = 1
    INVSQRT = 2


_U64 = 0xFFFFFFFFFFFFFFFF
ArrayLike = Any
Grad = Optional[np.ndarray]  # a gradient to accumulate into, or None for a new one
KernelArg = Union[Kernel, int, str, None]


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
    a = _inplace(a, name)
    if a.shape != shape:
        raise ShapeMismatchError("attn.nn: argument '%s' has shape %s; expected %s" %
                                 (name, a.shape, shape))
    return a


def _inplace(a, name):
    """An array the C side updates in place: float32, C-contiguous, writable."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
        raise BadDtypeError("attn.nn: argument '%s' must be a float32 numpy array" % name)
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ShapeMismatchError("attn.nn: argument '%s' must be C-contiguous and writable"
                                 % name)
    return a


def _rows(x, name):
    """x as [n, d] rows of its last dim, and its shape."""
    x = _f32(x)
    if x.ndim < 1:
        raise ShapeMismatchError("attn.nn: argument '%s' must have at least one dim" % name)
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1]), x.shape


# ---- linear ------------------------------------------------------------------------------

def linear_forward(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, *,
                   threads: int = 1, kernel: KernelArg = None) -> np.ndarray:
    """y [..., out] = x [..., in] w^T + b, w [out, in] (torch.nn.Linear layout),
    on the calling thread's context of `threads` threads (0: one per CPU) and
    `kernel` (None: ATTN_KERNEL or auto; as attn.sdpa)."""
    x2, shape = _rows(x, "x")
    w = _f32(w)
    b = None if b is None else _f32(b)
    out = w.shape[0]
    y = np.empty((x2.shape[0], out), dtype=np.float32)
    ctx = _context(_threads_arg(threads, "attn.nn"), _kernel_arg(kernel, "attn.nn"))
    _check(lib.attn_nn_linear_forward(ctx, _ptr(x2), x2.shape[0], x2.shape[1], _ptr(w), _ptr(b),
                                      out, _ptr(y)))
    return y.reshape(shape[:-1] + (out,))


def linear_backward(x: ArrayLike, w: ArrayLike, dy: ArrayLike, *, dx: Grad = None,
                    dw: Grad = None, db: Grad = None, need_db: bool = True,
                    threads: int = 1, kernel: KernelArg = None
                    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
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
    ctx = _context(_threads_arg(threads, "attn.nn"), _kernel_arg(kernel, "attn.nn"))
    _check(lib.attn_nn_linear_backward(ctx, _ptr(x2), x2.shape[0], n_in, _ptr(w), out,
                                       _ptr(dy2), _ptr(dx), _ptr(dw), _ptr(db)))
    return dx, dw, db


# ---- embedding -----------------------------------------------------------------------------

def embedding_forward(ids: ArrayLike, table: ArrayLike) -> np.ndarray:
    """y [*ids.shape, d] = rows of table [vocab, d]."""
    ids = _i32(ids)
    table = _f32(table)
    vocab, d = table.shape
    y = np.empty(ids.shape + (d,), dtype=np.float32)
    _check(lib.attn_nn_embedding_forward(_ptr(ids), ids.size, _ptr(table), vocab, d, _ptr(y)))
    return y


def embedding_backward(ids: ArrayLike, dy: ArrayLike, vocab: int, *,
                       dtable: Grad = None) -> np.ndarray:
    """dtable [vocab, d] rows ids[r] += dy row r. Returns dtable."""
    ids = _i32(ids)
    dy = _f32(dy)
    d = dy.shape[-1]
    dtable = _grad(dtable, (vocab, d), "dtable")
    _check(lib.attn_nn_embedding_backward(_ptr(ids), ids.size, int(vocab), d, _ptr(dy),
                                          _ptr(dtable)))
    return dtable


# ---- norms --------------------------------------------------------------------------------------

def layernorm_forward(x: ArrayLike, gamma: ArrayLike, beta: Optional[ArrayLike] = None,
                      eps: float = 1e-5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def layernorm_backward(x: ArrayLike, gamma: ArrayLike, mean: ArrayLike, rstd: ArrayLike,
                       dy: ArrayLike, *, dx: Grad = None, dgamma: Grad = None,
                       dbeta: Grad = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def rmsnorm_forward(x: ArrayLike, gamma: ArrayLike,
                    eps: float = 1e-6) -> Tuple[np.ndarray, np.ndarray]:
    """RMSNorm over the last dim (torch.nn.RMSNorm). Returns (y, rstd)."""
    x2, shape = _rows(x, "x")
    gamma = _f32(gamma)
    n, d = x2.shape
    y = np.empty_like(x2)
    rstd = np.empty(n, dtype=np.float32)
    _check(lib.attn_nn_rmsnorm_forward(_ptr(x2), n, d, _ptr(gamma), float(eps), _ptr(y),
                                       _ptr(rstd)))
    return y.reshape(shape), rstd.reshape(shape[:-1])


def rmsnorm_backward(x: ArrayLike, gamma: ArrayLike, rstd: ArrayLike, dy: ArrayLike, *,
                     dx: Grad = None, dgamma: Grad = None) -> Tuple[np.ndarray, np.ndarray]:
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

def act_forward(x: ArrayLike, kind: Union[Act, int, str] = "gelu") -> np.ndarray:
    """kind "gelu" (exact erf GELU) or "relu"; any shape."""
    x = _f32(x)
    y = np.empty_like(x)
    _check(lib.attn_nn_act_forward(enum_value(Act, kind, "kind"), _ptr(x), x.size, _ptr(y)))
    return y


def act_backward(x: ArrayLike, dy: ArrayLike, kind: Union[Act, int, str] = "gelu", *,
                 dx: Grad = None) -> np.ndarray:
    """dx += act'(x) * dy. Returns dx."""
    x = _f32(x)
    dy = _f32(dy)
    dx = _grad(dx, x.shape, "dx")
    _check(lib.attn_nn_act_backward(enum_value(Act, kind, "kind"), _ptr(x), x.size, _ptr(dy),
                                    _ptr(dx)))
    return dx


def dropout_forward(x: ArrayLike, p: float, seed: int, offset: int = 0) -> np.ndarray:
    """Inverted dropout of x (any shape; element e is the e-th in C order)."""
    x = _f32(x)
    y = np.empty_like(x)
    _check(lib.attn_nn_dropout_forward(_ptr(x), x.size, float(p), int(seed) & _U64,
                                       int(offset) & _U64, _ptr(y)))
    return y


def dropout_backward(dy: ArrayLike, p: float, seed: int, offset: int = 0, *,
                     dx: Grad = None) -> np.ndarray:
    """dx += keep ? dy / (1 - p) : 0. Returns dx."""
    dy = _f32(dy)
    dx = _grad(dx, dy.shape, "dx")
    _check(lib.attn_nn_dropout_backward(_ptr(dy), dy.size, float(p), int(seed) & _U64,
                                        int(offset) & _U64, _ptr(dx)))
    return dx


def dropout_keep(seed: int, offset: int, p: float, e: int) -> bool:
    """attn_nn_dropout_keep: True if element e is kept."""
    return bool(lib.attn_nn_dropout_keep(int(seed) & _U64, int(offset) & _U64, float(p),
                                         int(e)))


def dropout_mask(shape: Sequence[int], p: float, seed: int, offset: int = 0) -> np.ndarray:
    """The keep mask (bool, of the given shape) that dropout_forward applies."""
    ones = np.ones(shape, dtype=np.float32)
    return dropout_forward(ones, p, seed, offset) != 0


# ---- positions -----------------------------------------------------------------------------------

def sinusoidal(n_pos: int, d: int) -> np.ndarray:
    """The sinusoidal position table [n_pos, d]."""
    t = np.empty((int(n_pos), int(d)), dtype=np.float32)
    _check(lib.attn_nn_sinusoidal(int(n_pos), int(d), _ptr(t)))
    return t


def rope_forward(x: ArrayLike, pos: ArrayLike, theta: float = 10000.0) -> np.ndarray:
    """Rotary positions on x [n, heads, hd] (rotate-half pairing), pos [n]."""
    x = _f32(x)
    pos = _i32(pos)
    n, heads, hd = x.shape
    y = np.empty_like(x)
    _check(lib.attn_nn_rope_forward(_ptr(x), n, heads, hd, _ptr(pos), float(theta), _ptr(y)))
    return y


def rope_backward(dy: ArrayLike, pos: ArrayLike, theta: float = 10000.0, *,
                  dx: Grad = None) -> np.ndarray:
    """dx [n, heads, hd] += R^T dy. Returns dx."""
    dy = _f32(dy)
    pos = _i32(pos)
    n, heads, hd = dy.shape
    dx = _grad(dx, dy.shape, "dx")
    _check(lib.attn_nn_rope_backward(_ptr(dy), n, heads, hd, _ptr(pos), float(theta),
                                     _ptr(dx)))
    return dx


# ---- loss ------------------------------------------------------------------------------------------

def cross_entropy(logits: ArrayLike, targets: ArrayLike, *, ignore_index: int = -100,
                  label_smoothing: float = 0.0, grad_scale: float = 1.0, want_grad: bool = True
                  ) -> Tuple[float, int, Optional[np.ndarray]]:
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

def adamw_default() -> AdamW:
    """torch.optim.AdamW's defaults as an AdamW struct."""
    return lib.attn_nn_adamw_default()


def adamw_step(param: np.ndarray, grad: ArrayLike, m: np.ndarray, v: np.ndarray, step: int, *,
               lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, decay: bool = True) -> None:
    """One AdamW step (step counted from 1) updating param, m and v in place
    (float32, C-contiguous, writable, same size). decay=False: no weight decay."""
    param, m, v = _inplace(param, "param"), _inplace(m, "m"), _inplace(v, "v")
    grad = _f32(grad)
    if not (param.size == grad.size == m.size == v.size):
        raise ShapeMismatchError("attn.nn.adamw_step: param, grad, m and v must have the "
                                 "same size")
    opt = AdamW(float(lr), float(betas[0]), float(betas[1]), float(eps), float(weight_decay))
    _check(lib.attn_nn_adamw_step(ctypes.byref(opt), int(step), _ptr(param), _ptr(grad),
                                  _ptr(m), _ptr(v), param.size, 1 if decay else 0))


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Clips a list of float32 gradient arrays in place by their global L2 norm
    (torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
    grads = [_inplace(g, "grads[%d]" % i) for i, g in enumerate(grads)]
    n = len(grads)
    bufs = (ctypes.c_void_p * max(n, 1))(*[g.ctypes.data for g in grads])
    counts = (ctypes.c_int64 * max(n, 1))(*[g.size for g in grads])
    norm = ctypes.c_double()
    _check(lib.attn_nn_clip_grad_norm(bufs, counts, n, float(max_norm), ctypes.byref(norm)))
    return norm.value


def lr(kind: Union[Schedule, int, str], step: int, warmup: int, total: int, base_lr: float,
       min_lr: float = 0.0) -> float:
    """attn_nn_lr: kind "constant" | "cosine" | "invsqrt" (or attn.nn.Schedule).
    Invalid arguments raise attn.BadParamError."""
    out = ctypes.c_double()
    _check(lib.attn_nn_lr(enum_value(Schedule, kind, "kind"), int(step), int(warmup), int(total),
                          float(base_lr), float(min_lr), ctypes.byref(out)))
    return out.value
