"""attn.score: learned-score attention (include/attn/score.h): Bahdanau additive,
Luong general and concat, and dot product with a learned scale, forward,
backward and weights.

Arrays use the core's layout: q [B, Sq, H, Dq], k [B, Sk, H, Dk],
v [B, Sk, H, Dv]; out [B, Sq, H, Dv], lse [B, H, Sq], any non-negative
strides. The dtype picks the kernel as in attn.sdpa (float64: the
double-precision reference; float32: the chunked kernel or the core's
kernels, or kernel="ref"|"tiled"|"avx2").

params is a dict of the kind's parameters (per head; a leading H dim may be
left out when H = 1), converted to q's dtype:

  "additive"    w_q [H, A, Dq], w_k [H, A, Dk], v_a [H, A], b [H, A] (optional)
  "general"     w [H, Dq, Dk]
  "concat"      w [H, A, Dq + Dk], v_a [H, A]
  "scaled_dot"  g [H] (or a scalar)

Masks and dropout take the keywords of attn.sdpa (causal, align, window,
q_lens, k_lens, mask, dropout_p, seed, offset).
"""
from __future__ import annotations

import ctypes
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ._lib.core import SCORE_SLOTS, ScoreGrads, SdpaParams, call_args, check, context, lib
from ._sdpa import _Options, _inputs, kernel_arg, threads_arg
from ._views import view
from .errors import BadParamError

__all__ = ["KINDS", "forward", "backward", "weights"]

KINDS = {"additive": 1, "general": 2, "concat": 3, "scaled_dot": 4}
# rows and cols of each parameter's [1, H, rows, cols] view, from its numpy shape
_ROWS_COLS = {"w_q": "matrix", "w_k": "matrix", "w": "matrix", "b": "vector", "v_a": "vector",
              "g": "scalar"}
_BYREF = ctypes.byref


def _param4(a: Any, slot: str, H: int, dtype: np.dtype) -> np.ndarray:
    """The [1, H, rows, cols] array of a parameter given as [H, ...] (or without H)."""
    a = np.asarray(a, dtype=dtype)
    shape = _ROWS_COLS[slot]
    if shape == "scalar":
        return a.reshape(1, -1, 1, 1)
    if shape == "vector":
        return a.reshape(1, H, 1, a.shape[-1])
    return a.reshape((1, H) + a.shape[-2:])


class _ScoreCall:
    """attn_score_params of one call; holds every array they point to."""

    def __init__(self, fn: str, kind: str, q: np.ndarray, params: Mapping[str, Any],
                 masks: Dict[str, Any]):
        if kind not in KINDS:
            raise BadParamError("%s: kind is %r; it must be one of %s" % (fn, kind, sorted(KINDS)))
        self.opts = _Options(call_args.start(), fn, q, scale=None, softcap=0.0, bias=None,
                             alibi=None, **masks)
        p = lib.attn_score_params_default(KINDS[kind])
        if self.opts.params is not None:
            p.masks = SdpaParams.from_address(self.opts.params)
        self.arrays: Dict[str, np.ndarray] = {}
        for slot, value in params.items():
            if slot not in SCORE_SLOTS:
                raise BadParamError("%s: unknown parameter %r; expected some of %s" %
                                    (fn, slot, SCORE_SLOTS))
            a = self.arrays[slot] = _param4(value, slot, q.shape[2], q.dtype)
            setattr(p, slot, ctypes.pointer(view(a, fn, slot)))
        self.params = p


def _masks(causal, align, window, q_lens, k_lens, mask, dropout_p, seed, offset):
    return dict(causal=causal, align=align, window=window, q_lens=q_lens, k_lens=k_lens,
                mask=mask, dropout_p=dropout_p, seed=seed, offset=offset)


def forward(kind: str, q: Any, k: Any, v: Any, params: Mapping[str, Any], *,
            causal: bool = False, align: Any = "top_left", window: Any = None,
            q_lens: Any = None, k_lens: Any = None, mask: Any = None, dropout_p: float = 0.0,
            seed: int = 0, offset: int = 0, threads: int = 0,
            kernel: Any = None) -> Tuple[np.ndarray, np.ndarray]:
    """Returns (out [B, Sq, H, Dv], lse [B, H, Sq]) in q's dtype."""
    fn = "attn.score.forward"
    (q, k, v), (tq, tk, tv) = _inputs(fn, view, q=q, k=k, v=v)
    sc = _ScoreCall(fn, kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                                dropout_p, seed, offset))
    B, Sq, H = q.shape[:3]
    out = np.empty((B, Sq, H, v.shape[3]), dtype=q.dtype)
    lse = np.empty((B, H, Sq), dtype=q.dtype)
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_score_forward(ctx, _BYREF(tq), _BYREF(tk), _BYREF(tv), _BYREF(sc.params),
                                 _BYREF(view(out, fn, "out")), _BYREF(view(lse, fn, "lse", 3))))
    return out, lse


def backward(kind: str, q: Any, k: Any, v: Any, out: Any, dout: Any, lse: Any,
             params: Mapping[str, Any], *, causal: bool = False, align: Any = "top_left",
             window: Any = None, q_lens: Any = None, k_lens: Any = None, mask: Any = None,
             dropout_p: float = 0.0, seed: int = 0, offset: int = 0, threads: int = 0,
             kernel: Any = None
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
    """Returns (dq, dk, dv, grads): grads maps each parameter name to its gradient,
    with the shape the parameter was given in."""
    fn = "attn.score.backward"
    arrays, ins = _inputs(fn, view, q=q, k=k, v=v, out=out, dout=dout, lse=lse)
    q = arrays[0]
    sc = _ScoreCall(fn, kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                                dropout_p, seed, offset))
    dq, dk, dv = (np.empty(a.shape, dtype=q.dtype) for a in arrays[:3])
    grads: Dict[str, np.ndarray] = {}
    g = ScoreGrads()
    for slot, a in sc.arrays.items():
        grads[slot] = np.empty(a.shape, dtype=q.dtype)
        setattr(g, "d_" + slot, ctypes.pointer(view(grads[slot], fn, "d_" + slot)))
    outs = [view(a, fn, n) for a, n in ((dq, "dq"), (dk, "dk"), (dv, "dv"))]
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_score_backward(ctx, *[_BYREF(t) for t in ins], _BYREF(sc.params),
                                  *[_BYREF(t) for t in outs], _BYREF(g)))
    return dq, dk, dv, {s: grads[s].reshape(np.shape(params[s])) for s in grads}


def weights(kind: str, q: Any, k: Any, lse: Any, params: Mapping[str, Any], *,
            causal: bool = False, align: Any = "top_left", window: Any = None,
            q_lens: Any = None, k_lens: Any = None, mask: Any = None, dropout_p: float = 0.0,
            seed: int = 0, offset: int = 0, threads: int = 0, kernel: Any = None,
            with_dropout: bool = False) -> np.ndarray:
    """The attention weights [B, H, Sq, Sk] recomputed from q, k and the forward's lse;
    with_dropout gives those applied to v (dropped 0, kept scaled by 1/(1-p))."""
    fn = "attn.score.weights"
    (q, k, lse), (tq, tk, tl) = _inputs(fn, view, q=q, k=k, lse=lse)
    sc = _ScoreCall(fn, kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                                dropout_p, seed, offset))
    B, Sq, H = q.shape[:3]
    w = np.empty((B, H, Sq, k.shape[1]), dtype=q.dtype)
    ctx = context(threads_arg(threads, fn), kernel_arg(kernel, fn))
    check(lib.attn_score_weights(ctx, _BYREF(tq), _BYREF(tk), _BYREF(tl), _BYREF(sc.params),
                                 1 if with_dropout else 0, _BYREF(view(w, fn, "w"))))
    return w

