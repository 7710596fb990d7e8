"""attn.score: a ctypes binding over the learned-score attention of libattn.so
(include/attn/score.h): Bahdanau additive, Luong general and concat, and dot
product with a learned scale, forward, backward and weights.

Arrays use the core's layout: q [B, Sq, H, Dq], k [B, Sk, H, Dk],
v [B, Sk, H, Dv]; out [B, Sq, H, Dv], lse [B, H, Sq]. The dtype picks the
kernel as in attn.forward (float64: the double-precision reference; float32:
the chunked kernel or the core's kernels, or kernel="ref"|"tiled"|"avx2").

params is a dict of the kind's parameters (per head; a leading H dim may be
left out when H = 1):

  "additive"    w_q [H, A, Dq], w_k [H, A, Dk], v_a [H, A], b [H, A] (optional)
  "general"     w [H, Dq, Dk]
  "concat"      w [H, A, Dq + Dk], v_a [H, A]
  "scaled_dot"  g [H] (or a scalar)

Masks and dropout take the keywords of attn.forward (causal, align, window,
q_lens, k_lens, mask, dropout_p, seed, offset).
"""

import ctypes

import numpy as np

from . import (SdpaParams, Tensor, _Call, _check, _ctx_for, _float_input, _lse4, _usable,
               _view, lib)

__all__ = ["KINDS", "forward", "backward", "weights"]

KINDS = {"additive": 1, "general": 2, "concat": 3, "scaled_dot": 4}
_SLOTS = ("w_q", "w_k", "b", "v_a", "w", "g")
# rows and cols of each parameter's [1, H, rows, cols] view, from its numpy shape
_ROWS_COLS = {"w_q": "matrix", "w_k": "matrix", "w": "matrix", "b": "vector", "v_a": "vector",
              "g": "scalar"}


class ScoreParams(ctypes.Structure):
    """attn_score_params, fields in declaration order."""
    _fields_ = [("kind", ctypes.c_int)] + \
        [(s, ctypes.POINTER(Tensor)) for s in _SLOTS] + [("masks", SdpaParams)]


class ScoreGrads(ctypes.Structure):
    """attn_score_grads: d_w_q, d_w_k, d_b, d_v_a, d_w, d_g."""
    _fields_ = [("d_" + s, ctypes.POINTER(Tensor)) for s in _SLOTS]


def _declare():
    PT = ctypes.POINTER(Tensor)
    PP = ctypes.POINTER(ScoreParams)
    lib.attn_score_params_default.restype = ScoreParams
    lib.attn_score_params_default.argtypes = [ctypes.c_int]
    lib.attn_score_forward.restype = ctypes.c_int
    lib.attn_score_forward.argtypes = [ctypes.c_void_p, PT, PT, PT, PP, PT, PT]
    lib.attn_score_backward.restype = ctypes.c_int
    lib.attn_score_backward.argtypes = [ctypes.c_void_p, PT, PT, PT, PT, PT, PT, PP, PT, PT, PT,
                                        ctypes.POINTER(ScoreGrads)]
    lib.attn_score_weights.restype = ctypes.c_int
    lib.attn_score_weights.argtypes = [ctypes.c_void_p, PT, PT, PT, PP, ctypes.c_int, PT]


_declare()


def _param4(a, slot, H, dtype):
    """The [1, H, rows, cols] array of a parameter given as [H, ...] (or without H)."""
    a = np.asarray(a, dtype=dtype)
    shape = _ROWS_COLS[slot]
    if shape == "scalar":
        a = a.reshape(1, -1, 1, 1)
    elif shape == "vector":
        a = a.reshape(1, H, 1, a.shape[-1])
    else:
        a = a.reshape((1, H) + a.shape[-2:])
    return _usable(a)


class _ScoreCall:
    """Builds attn_score_params and keeps every buffer it points to alive."""

    def __init__(self, kind, q, params, masks):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s, not %r" % (sorted(KINDS), kind))
        self.call = _Call(q, scale=None, softcap=0.0, bias=None, alibi=None, **masks)
        p = ScoreParams()
        p.kind = KINDS[kind]
        p.masks = self.call.params
        self.arrays = {}
        self.views = {}
        for slot, value in params.items():
            if slot not in _SLOTS:
                raise ValueError("unknown parameter %r; expected some of %s" % (slot, _SLOTS))
            a = _param4(value, slot, q.shape[2], q.dtype)
            t = _view(a, slot)
            self.arrays[slot], self.views[slot] = a, t
            setattr(p, slot, ctypes.pointer(t))
        self.params = p


def _masks(causal, align, window, q_lens, k_lens, mask, dropout_p, seed, offset):
    return dict(causal=causal, align=align, window=window, q_lens=q_lens, k_lens=k_lens,
                mask=mask, dropout_p=dropout_p, seed=seed, offset=offset)


def forward(kind, q, k, v, params, *, causal=False, align="top_left", window=(-1, -1),
            q_lens=None, k_lens=None, mask=None, dropout_p=0.0, seed=0, offset=0, threads=1,
            kernel="auto"):
    """Returns (out [B, Sq, H, Dv], lse [B, H, Sq]) in q's dtype."""
    q, k, v = _float_input(q, "q"), _float_input(k, "k"), _float_input(v, "v")
    sc = _ScoreCall(kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                            dropout_p, seed, offset))
    B, Sq, H = q.shape[:3]
    out = np.zeros((B, Sq, H, v.shape[3]), dtype=q.dtype)
    lse = np.zeros((B, H, Sq, 1), dtype=q.dtype)
    views = [_view(a, n) for a, n in ((q, "q"), (k, "k"), (v, "v"), (out, "out"), (lse, "lse"))]
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_score_forward(ctx, *[ctypes.byref(t) for t in views[:3]],
                                  ctypes.byref(sc.params), *[ctypes.byref(t) for t in views[3:]]))
    return out, lse.reshape(B, H, Sq)


def backward(kind, q, k, v, out, dout, lse, params, *, causal=False, align="top_left",
             window=(-1, -1), q_lens=None, k_lens=None, mask=None, dropout_p=0.0, seed=0,
             offset=0, threads=1, kernel="auto"):
    """Returns (dq, dk, dv, grads): grads maps each parameter name to its gradient,
    with the shape the parameter was given in."""
    q, k, v = _float_input(q, "q"), _float_input(k, "k"), _float_input(v, "v")
    out, dout, lse = _float_input(out, "out"), _float_input(dout, "dout"), _lse4(lse)
    sc = _ScoreCall(kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                            dropout_p, seed, offset))
    dq, dk, dv = (np.zeros(a.shape, dtype=q.dtype) for a in (q, k, v))
    grads, g = {}, ScoreGrads()
    keep = []
    for slot, a in sc.arrays.items():
        grads[slot] = np.zeros(a.shape, dtype=q.dtype)
        t = _view(grads[slot], "d_" + slot)
        keep.append(t)
        setattr(g, "d_" + slot, ctypes.pointer(t))
    ins = [_view(a, n) for a, n in ((q, "q"), (k, "k"), (v, "v"), (out, "out"), (dout, "dout"),
                                    (lse, "lse"))]
    outs = [_view(a, n) for a, n in ((dq, "dq"), (dk, "dk"), (dv, "dv"))]
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_score_backward(ctx, *[ctypes.byref(t) for t in ins], ctypes.byref(sc.params),
                                   *[ctypes.byref(t) for t in outs], ctypes.byref(g)))
    shaped = {s: grads[s].reshape(np.shape(params[s])) for s in grads}
    return dq, dk, dv, shaped


def weights(kind, q, k, lse, params, *, causal=False, align="top_left", window=(-1, -1),
            q_lens=None, k_lens=None, mask=None, dropout_p=0.0, seed=0, offset=0, threads=1,
            kernel="auto", with_dropout=False):
    """The attention weights [B, H, Sq, Sk] recomputed from q, k and the forward's lse;
    with_dropout gives those applied to v (dropped 0, kept scaled by 1/(1-p))."""
    q, k, lse = _float_input(q, "q"), _float_input(k, "k"), _lse4(lse)
    sc = _ScoreCall(kind, q, params, _masks(causal, align, window, q_lens, k_lens, mask,
                                            dropout_p, seed, offset))
    B, Sq, H = q.shape[:3]
    w = np.zeros((B, H, Sq, k.shape[1]), dtype=q.dtype)
    views = [_view(a, n) for a, n in ((q, "q"), (k, "k"), (lse, "lse"), (w, "w"))]
    ctx = _ctx_for(threads, kernel)
    _check(lib.attn_score_weights(ctx, *[ctypes.byref(t) for t in views[:3]],
                                  ctypes.byref(sc.params), 1 if with_dropout else 0,
                                  ctypes.byref(views[3])))
    return w
