"""Scaled dot-product attention on NumPy arrays: attn.sdpa, attn.sdpa_backward,
attn.sdpa_weights, and the dropout helpers.

Layout (the C library's): q [B, Sq, Hq, Dk], k [B, Sk, Hkv, Dk], v [B, Sk, Hkv, Dv],
o [B, Sq, Hq, Dv], lse [B, Hq, Sq]; Hq % Hkv == 0 (grouped-query and
multi-query heads). Any non-negative strides (BHSD buffers transposed, packed
QKV, views into a KV cache) pass to C without a copy.

make_params() turns the options into attn_sdpa_params for every front end
(this one and attn.torch); a new option is one more keyword there.
"""
from __future__ import annotations

import ctypes
from functools import partial
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ._lib.core import CallArgs, call_args, check, context, lib
from ._views import HALF_DTYPES, SDPA_DTYPES, array, floats, pack
from .enums import Align, Kernel, enum_value
from .errors import BadDtypeError, BadParamError, ShapeMismatchError

__all__ = ["sdpa", "sdpa_backward", "sdpa_weights", "Grads", "dropout_keep", "dropout_mask",
           "philox4x32_10", "make_params"]

U64 = 0xFFFFFFFFFFFFFFFF
Window = Optional[Tuple[Optional[int], Optional[int]]]
ArrayLike = Any


def _number(x: Any, fn: str, name: str, kind: type = float) -> Any:
    if isinstance(x, (bool, np.bool_)) and kind is not bool:
        raise BadParamError("%s: argument '%s' is %r; it must be a number" % (fn, name, x))
    try:
        return kind(x)
    except (TypeError, ValueError):
        raise BadParamError("%s: argument '%s' is %r; it must be %s" %
                            (fn, name, x, "an integer" if kind is int else "a number")) from None


def threads_arg(threads: Any, fn: str) -> int:
    """threads as the int attn_ctx_create takes (0: one per CPU)."""
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise BadParamError("%s: argument 'threads' is %r; it must be an integer >= 0 "
                            "(0: one thread per CPU)" % (fn, threads))
    return int(threads)


def kernel_arg(kernel: Union[Kernel, int, str, None], fn: str) -> Optional[int]:
    return None if kernel is None else int(enum_value(Kernel, kernel, fn + ": argument 'kernel'"))


def make_params(args: CallArgs, fn: str, *, scale: Optional[float] = None,
                softcap: float = 0.0, causal: bool = False,
                align: Union[Align, int, str] = Align.TOP_LEFT, window: Window = None,
                q_lens: Optional[int] = None, k_lens: Optional[int] = None,
                bias: Optional[int] = None, mask: Optional[int] = None,
                alibi: Optional[int] = None, dropout_p: float = 0.0, seed: int = 0,
                offset: int = 0) -> Optional[int]:
    """The address of the attn_sdpa_params of a call, packed into args, or None
    when every option is off (C then uses its defaults). q_lens, k_lens (B
    int64), alibi (Hq doubles) and the bias and mask views are addresses the
    caller keeps valid and has checked for length. The scalars are checked
    here only for type; C checks their ranges."""
    member = align if type(align) is Align else enum_value(Align, align,
                                                          fn + ": argument 'align'")
    if (scale is None and not softcap and not causal and window is None and q_lens is None
            and k_lens is None and bias is None and mask is None and alibi is None
            and not dropout_p and member == Align.TOP_LEFT):
        return None
    left = right = -1
    if window is not None:
        try:
            w_left, w_right = window
        except (TypeError, ValueError):
            raise BadParamError("%s: argument 'window' is %r; it must be (left, right), None "
                                "or -1 for unbounded" % (fn, window)) from None
        left = -1 if w_left is None else _number(w_left, fn, "window[0]", int)
        right = -1 if w_right is None else _number(w_right, fn, "window[1]", int)
    return args.params(0 if scale is None else 1,
                       0.0 if scale is None else _number(scale, fn, "scale"),
                       _number(softcap, fn, "softcap"), 1 if causal else 0, int(member),
                       left, right, q_lens or 0, k_lens or 0, bias or 0, mask or 0, alibi or 0,
                       _number(dropout_p, fn, "dropout_p"),
                       _number(seed, fn, "seed", int) & U64,
                       _number(offset, fn, "offset", int) & U64)


# ---- the NumPy options ----------------------------------------------------------------------

def _entries(x: ArrayLike, fn: str, name: str, dtype: type,
             n: Optional[int] = None) -> np.ndarray:
    """x as contiguous entries of dtype (int64 lengths and indices, float64
    slopes), n of them if n is given. Small arrays: converted, not viewed."""
    a = np.asarray(x)
    kinds = "iu" if dtype is np.int64 else "iuf"
    if a.dtype.kind not in kinds:
        raise BadDtypeError("%s: argument '%s' has dtype %s; it must hold %s" %
                            (fn, name, a.dtype, "integers" if dtype is np.int64 else "numbers"))
    a = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
    if n is not None and a.shape[0] != n:
        raise ShapeMismatchError("%s: argument '%s' has %d entries; it needs %d (%s)" %
                                 (fn, name, a.shape[0], n, "Hq" if name == "alibi" else "B"))
    return a


def _bias_dtypes(dt: np.dtype) -> Tuple[np.dtype, ...]:
    """What a bias may be: q's dtype, or float32 under a half-precision q."""
    return (dt, np.dtype(np.float32)) if dt in HALF_DTYPES else (dt,)


def _lse_dtype(dt: np.dtype) -> np.dtype:
    """lse is float64 in float64 calls and float32 in every other."""
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _to4(a: np.ndarray, fn: str, name: str) -> np.ndarray:
    """A bias or mask of fewer than 4 dims with leading dims of 1 prepended
    (numpy broadcasting), as a view of the same memory."""
    if a.ndim > 4:
        raise ShapeMismatchError("%s: argument '%s' has shape %s; it must have at most 4 dims"
                                 % (fn, name, a.shape))
    return a.reshape((1,) * (4 - a.ndim) + a.shape) if a.ndim < 4 else a


class _Options:
    """The NumPy options of one call as attn_sdpa_params in args (params: its
    address, or None); holds every array the params point to until the call
    returns."""
    __slots__ = ("params", "arrays", "bias")

    def __init__(self, args: CallArgs, fn: str, q: np.ndarray, *, scale: Optional[float],
                 softcap: float, causal: bool, align: Union[Align, int, str], window: Window,
                 q_lens: Optional[ArrayLike], k_lens: Optional[ArrayLike],
                 bias: Optional[ArrayLike], mask: Optional[ArrayLike],
                 alibi: Optional[ArrayLike], dropout_p: float, seed: int, offset: int):
        self.bias = None
        self.arrays: list = []
        addr = {}
        if q_lens is not None or k_lens is not None or alibi is not None:
            B, Hq = q.shape[0], q.shape[2]
            for name, x, n in (("q_lens", q_lens, B), ("k_lens", k_lens, B),
                               ("alibi", alibi, Hq)):
                if x is not None:
                    a = _entries(x, fn, name, np.float64 if name == "alibi" else np.int64, n)
                    self.arrays.append(a)
                    addr[name] = a.ctypes.data
        if bias is not None:
            self.bias = array(bias, fn, "bias", _bias_dtypes(q.dtype))
            self.arrays.append(self.bias)
            addr["bias"] = pack(args, _to4(self.bias, fn, "bias"), fn, "bias")
        if mask is not None:
            m = array(mask, fn, "mask", (np.dtype(np.bool_), np.dtype(np.uint8)))
            self.arrays.append(m)
            addr["mask"] = pack(args, _to4(m, fn, "mask"), fn, "mask")
        self.params = make_params(args, fn, scale=scale, softcap=softcap, causal=causal,
                                  align=align, window=window, dropout_p=dropout_p, seed=seed,
                                  offset=offset, **addr)


def _inputs(fn: str, to_view: Callable[..., Any], **arrays: ArrayLike) -> Tuple[list, list]:
    """(arrays, views) of float inputs named by their keywords; to_view(a, fn,
    name, ndim) makes a view (pack into a call's buffer, or a Tensor struct)."""
    out, views = [], []
    for name, x in arrays.items():
        a = floats(x, fn, name) if name == "lse" else array(x, fn, name, SDPA_DTYPES)
        out.append(a)
        views.append(to_view(a, fn, name, 3 if name == "lse" else 4))
    return out, views


# ---- the public calls ---------------------------------------------------------------------------

def sdpa(q: ArrayLike, k: ArrayLike, v: ArrayLike, *, causal: bool = False,
         align: Union[Align, int, str] = Align.TOP_LEFT, window: Window = None,
         q_lens: Optional[ArrayLike] = None, k_lens: Optional[ArrayLike] = None,
         mask: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None,
         alibi: Optional[ArrayLike] = None, softcap: float = 0.0, scale: Optional[float] = None,
         dropout_p: float = 0.0, seed: int = 0, offset: int = 0, return_lse: bool = False,
         threads: int = 0, kernel: Union[Kernel, int, str, None] = None
         ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Scaled dot-product attention: o = softmax(mask(scale * q k^T + bias)) v.

    q [B, Sq, Hq, Dk], k [B, Sk, Hkv, Dk], v [B, Sk, Hkv, Dv], all of one dtype:
    float32, float64, float16, or bfloat16 given as uint16 bit patterns
    (attn.to_bf16 / attn.from_bf16); or a float32 q over a float16/bfloat16 k
    and v (a half-precision KV cache, forward only). Any non-negative strides
    (no copies). Query head h reads key/value
    head h // (Hq // Hkv). Returns o [B, Sq, Hq, Dv], and with return_lse=True
    (o, lse) where lse [B, Hq, Sq] is the log of each row's softmax denominator
    (-inf for a row that sees no key; its o is 0; float32 unless q is
    float64). float64 runs the double-precision reference kernel, the others
    the fastest kernel this CPU runs (half precision: float32 arithmetic,
    inputs widened as loaded, outputs rounded once as stored).

    causal      key j is visible to query i only if j <= i' (i' = i, or with
                align="bottom_right" i + Lk - Lq)
    window      (left, right): only keys i' - left <= j <= i' + right; None or -1
                is unbounded on that side
    q_lens      B query lengths: rows i >= q_lens[b] are padding (o = 0)
    k_lens      B key lengths: keys j >= k_lens[b] are masked
    mask        bool (or uint8) [B|1, Hq|1, Sq|1, Sk|1], True (nonzero) = attend;
                fewer dims broadcast as in numpy
    bias        q's dtype (or float32 under a half q), the same shapes, added to
                the scores
    alibi       Hq slopes: adds -slope[h] * |i' - j|
    softcap     > 0: scores become softcap * tanh(s / softcap)
    scale       the factor of q k^T (default 1 / sqrt(Dk))
    dropout_p   dropout on the probabilities, kept ones scaled by 1 / (1 - p); the
                mask is a pure function of (seed, offset, b, h, i, j)
    threads     0: one per CPU
    kernel      None (ATTN_KERNEL or auto), "ref", "tiled" or "avx2" (attn.Kernel)

    Errors raise attn.AttnError subclasses naming the argument (attn.errors).
    """
    fn = "attn.sdpa"
    args = call_args.start()
    (q, k, v), (tq, tk, tv) = _inputs(fn, partial(pack, args), q=q, k=k, v=v)
    opts = _Options(args, fn, q, scale=scale, softcap=softcap, causal=causal, align=align,
                    window=window, q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask,
                    alibi=alibi, dropout_p=dropout_p, seed=seed, offset=offset)
    B, Sq, Hq = q.shape[:3]
    o = np.empty((B, Sq, Hq, v.shape[3]), q.dtype)
    to = pack(args, o, fn, "o")
    lse = np.empty((B, Hq, Sq), _lse_dtype(q.dtype)) if return_lse else None
    tl = None if lse is None else pack(args, lse, fn, "lse", 3)
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_sdpa_forward(ctx, tq, tk, tv, opts.params, to, tl))
    return o if lse is None else (o, lse)


class Grads(NamedTuple):
    """The gradients of sdpa_backward; dbias is None unless asked for."""
    dq: np.ndarray
    dk: np.ndarray
    dv: np.ndarray
    dbias: Optional[np.ndarray]


def sdpa_backward(q: ArrayLike, k: ArrayLike, v: ArrayLike, o: ArrayLike, do: ArrayLike,
                  lse: ArrayLike, *, causal: bool = False,
                  align: Union[Align, int, str] = Align.TOP_LEFT, window: Window = None,
                  q_lens: Optional[ArrayLike] = None, k_lens: Optional[ArrayLike] = None,
                  mask: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None,
                  alibi: Optional[ArrayLike] = None, softcap: float = 0.0,
                  scale: Optional[float] = None, dropout_p: float = 0.0, seed: int = 0,
                  offset: int = 0, want_dbias: bool = False, threads: int = 0,
                  kernel: Union[Kernel, int, str, None] = None) -> Grads:
    """The gradients of sdpa with the same options, from its o [B, Sq, Hq, Dv]
    and lse [B, Hq, Sq] (sdpa(..., return_lse=True)) and do = dL/do
    [B, Sq, Hq, Dv]. Returns Grads(dq, dk, dv, dbias): the shapes of q, k, v, and
    with want_dbias=True the bias's shape (its broadcast dims summed).
    Deterministic: the same bits for any thread count."""
    fn = "attn.sdpa_backward"
    args = call_args.start()
    (q, k, v, o, do, lse), views = _inputs(fn, partial(pack, args), q=q, k=k, v=v, o=o,
                                           do=do, lse=lse)
    if want_dbias and bias is None:
        raise BadParamError("%s: want_dbias=True needs a bias" % fn)
    opts = _Options(args, fn, q, scale=scale, softcap=softcap, causal=causal, align=align,
                    window=window, q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask,
                    alibi=alibi, dropout_p=dropout_p, seed=seed, offset=offset)
    grads = [np.empty(a.shape, a.dtype) for a in (q, k, v)]
    outs = [pack(args, g, fn, name) for g, name in zip(grads, ("dq", "dk", "dv"))]
    dbias = (None if opts.bias is None or not want_dbias
             else np.empty(opts.bias.shape, opts.bias.dtype))
    tdb = None if dbias is None else pack(args, _to4(dbias, fn, "dbias"), fn, "dbias")
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_sdpa_backward(ctx, *views, opts.params, *outs, tdb))
    return Grads(grads[0], grads[1], grads[2], dbias)


def _indices(sel: Optional[Sequence[int]], fn: str, name: str,
             keep: list) -> Tuple[Optional[int], Optional[int]]:
    if sel is None:
        return None, None
    a = _entries(sel, fn, name, np.int64)
    keep.append(a)
    return a.ctypes.data, a.shape[0]


def sdpa_weights(q: ArrayLike, k: ArrayLike, lse: ArrayLike, *, causal: bool = False,
                 align: Union[Align, int, str] = Align.TOP_LEFT, window: Window = None,
                 q_lens: Optional[ArrayLike] = None, k_lens: Optional[ArrayLike] = None,
                 mask: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None,
                 alibi: Optional[ArrayLike] = None, softcap: float = 0.0,
                 scale: Optional[float] = None, dropout_p: float = 0.0, seed: int = 0,
                 offset: int = 0, heads: Optional[Sequence[int]] = None,
                 rows: Optional[Sequence[int]] = None, with_dropout: bool = False,
                 threads: int = 0, kernel: Union[Kernel, int, str, None] = None) -> np.ndarray:
    """The attention probabilities w [B, n_heads, n_rows, Sk] recomputed from q, k
    and sdpa's lse, for the query heads and rows given by index (None: all),
    without an Sq x Sk buffer for the others. with_dropout=True gives the
    weights applied to v (dropped 0, kept ones scaled by 1 / (1 - p))."""
    fn = "attn.sdpa_weights"
    args = call_args.start()
    (q, k, lse), (tq, tk, tl) = _inputs(fn, partial(pack, args), q=q, k=k, lse=lse)
    opts = _Options(args, fn, q, scale=scale, softcap=softcap, causal=causal, align=align,
                    window=window, q_lens=q_lens, k_lens=k_lens, bias=bias, mask=mask,
                    alibi=alibi, dropout_p=dropout_p, seed=seed, offset=offset)
    keep: list = []
    hp, nh = _indices(heads, fn, "heads", keep)
    rp, nr = _indices(rows, fn, "rows", keep)
    B, Sq, Hq = q.shape[:3]
    nh = Hq if nh is None else nh
    nr = Sq if nr is None else nr
    w = np.empty((B, nh, nr, k.shape[1]), q.dtype)
    tw = pack(args, w, fn, "w")
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_sdpa_weights(ctx, tq, tk, tl, opts.params, hp, nh, rp, nr,
                                1 if with_dropout else 0, tw))
    return w


# ---- dropout ----------------------------------------------------------------------------------

def dropout_keep(seed: int, offset: int, p: float, b: int, h: int, i: int, j: int,
                 n_heads: int) -> bool:
    """attn_dropout_keep: whether element (b, h, i, j) of the probabilities is
    kept at drop probability p (the rule of every kernel)."""
    return bool(lib.attn_dropout_keep(int(seed) & U64, int(offset) & U64, float(p), b, h, i, j,
                                      n_heads))


def dropout_mask(seed: int, offset: int, p: float, B: int, H: int, Sq: int,
                 Sk: int) -> np.ndarray:
    """The keep mask [B, H, Sq, Sk] (bool) of every kernel, from attn_dropout_keep."""
    out = np.empty((B, H, Sq, Sk), dtype=np.bool_)
    keep = lib.attn_dropout_keep
    seed, offset, p = int(seed) & U64, int(offset) & U64, float(p)
    for b in range(B):
        for h in range(H):
            for i in range(Sq):
                row = out[b, h, i]
                for j in range(Sk):
                    row[j] = keep(seed, offset, p, b, h, i, j, H)
    return out


def philox4x32_10(ctr: Sequence[int], key: Sequence[int]) -> Tuple[int, int, int, int]:
    """attn_philox4x32_10: 4 uint32 counter words and 2 key words -> 4 words."""
    c = (ctypes.c_uint32 * 4)(*[int(x) & 0xFFFFFFFF for x in ctr])
    kk = (ctypes.c_uint32 * 2)(*[int(x) & 0xFFFFFFFF for x in key])
    out = (ctypes.c_uint32 * 4)()
    lib.attn_philox4x32_10(c, kk, out)
    return (out[0], out[1], out[2], out[3])

