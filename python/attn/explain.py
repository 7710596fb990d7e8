"""attn.explain: the attention explorer page (include/attn/explain.h, library
attn_explain) for any model's attention weights, e.g. PyTorch's
output_attentions.

    with attn.explain.Page("my model") as page:
        s = page.tokens("input", tokens)                  # n tokens
        g = page.group("self-attention", s, s, weights)   # [layers, heads, n, n]
        page.add_map(g, "rollout", attn.explain.rollout(weights))
        page.write("page.html")                           # one self-contained file

or in one call: attn.explain.self_attention_page("page.html", tokens, weights).

A page holds token sequences (at most MAX_TOKENS each), attention groups
(n_layers x n_heads weight matrices [n_q, n_k], rows the query sequence's
tokens), targets (the outputs a relevance map explains) and maps derived
from a group: rollout (no target) or relevance (one per target), each with
an optional attribution per key token [n_k]. docs/explain.md describes the
views. rollout, head_mean, self_rule and cross_rule are the C library's
arithmetic of those maps (attention rollout; Chefer et al.'s
gradient-weighted relevance rules).
"""
from __future__ import annotations

import ctypes
import enum
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._lib.core import check
from ._lib.explain import MAX_TEXT, MAX_TOKENS, lib
from .enums import enum_value
from .errors import BadParamError, ShapeMismatchError

__all__ = ["Page", "Kind", "self_attention_page", "rollout", "head_mean", "self_rule",
           "cross_rule", "MAX_TOKENS", "MAX_TEXT"]

ArrayLike = Any
PathLike = Union[str, "os.PathLike[str]"]


class Kind(enum.IntEnum):
    """attn_explain_kind: what a map of a group is."""
    ROLLOUT = 1    # attention rollout (no target)
    RELEVANCE = 2  # gradient-weighted relevance of a target


def _f32(a: ArrayLike, ndim: int, name: str, shape: str) -> np.ndarray:
    """a as a C-contiguous float32 array of ndim dims (the C side reads it
    densely); ShapeMismatchError naming it otherwise."""
    x = np.ascontiguousarray(a, dtype=np.float32)
    if x.ndim != ndim:
        raise ShapeMismatchError("attn.explain: argument '%s' has shape %s; it must be %s" %
                                 (name, x.shape, shape))
    return x


def _text(s: str) -> bytes:
    return str(s).encode("utf-8", "surrogateescape")


class Page:
    """An explorer page (attn_explain) under construction. Every method
    raises the attn.AttnError subclass of the library's status, naming the
    bad argument; on error the page is unchanged."""

    def __init__(self, title: str):
        self._e: Optional[ctypes.c_void_p] = ctypes.c_void_p()
        check(lib.attn_explain_create(_text(title), ctypes.byref(self._e)))
        self._seq_len: list = []
        self._groups: list = []

    def close(self, _free=lib.attn_explain_free) -> None:
        """Frees the page (also done when the object is collected)."""
        e, self._e = getattr(self, "_e", None), None
        if e:
            _free(e)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "Page":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def note(self, text: str) -> None:
        """A line of text at the top of the page."""
        check(lib.attn_explain_add_note(self._e, _text(text)))

    def tokens(self, name: str, tokens: Sequence[str]) -> int:
        """A token sequence (1 to MAX_TOKENS strings); returns its index."""
        items = [_text(t) for t in tokens]
        arr = (ctypes.c_char_p * max(len(items), 1))(*items)
        seq = ctypes.c_int64()
        check(lib.attn_explain_add_tokens(self._e, _text(name), arr, len(items),
                                          ctypes.byref(seq)))
        self._seq_len.append(len(items))
        return seq.value

    def group(self, name: str, q_seq: int, k_seq: int, weights: ArrayLike) -> int:
        """An attention group of query sequence q_seq and key sequence k_seq
        with weights [n_layers, n_heads, n_q, n_k] (finite); returns its index."""
        w = _f32(weights, 4, "weights", "[n_layers, n_heads, n_q, n_k]")
        n = len(self._seq_len)
        want = (self._seq_len[q_seq] if 0 <= q_seq < n else -1,
                self._seq_len[k_seq] if 0 <= k_seq < n else -1)
        if -1 not in want and w.shape[2:] != want:
            raise ShapeMismatchError("attn.explain.Page.group: argument 'weights' has shape %s; "
                                     "its last dims must be the sequences' lengths %s"
                                     % (w.shape, want))
        if not np.isfinite(w).all():  # checked before the group exists: a failed call adds nothing
            raise BadParamError("attn.explain.Page.group: argument 'weights' has a value "
                                "that is not finite")
        g = ctypes.c_int64()
        check(lib.attn_explain_add_group(self._e, _text(name), int(q_seq), int(k_seq),
                                         w.shape[0], w.shape[1], ctypes.byref(g)))
        for layer in range(w.shape[0]):
            for head in range(w.shape[1]):
                check(lib.attn_explain_set_weights(self._e, g.value, layer, head,
                                                   w[layer, head].ctypes.data))
        self._groups.append(want)
        return g.value

    def target(self, label: str) -> int:
        """An output a relevance map explains, as the page labels it; returns its index."""
        t = ctypes.c_int64()
        check(lib.attn_explain_add_target(self._e, _text(label), ctypes.byref(t)))
        return t.value

    def add_map(self, group: int, kind: Union[Kind, int, str], m: ArrayLike,
                attr: Optional[ArrayLike] = None, *, target: int = -1) -> None:
        """A map m [n_q, n_k] of a group, and the attribution attr [n_k] of
        each key token (or None). kind "rollout" (target -1) or "relevance"
        (target from self.target)."""
        k = enum_value(Kind, kind, "attn.explain.Page.add_map: argument 'kind'")
        mm = _f32(m, 2, "m", "[n_q, n_k]")
        aa = None if attr is None else _f32(attr, 1, "attr", "[n_k]")
        if 0 <= group < len(self._groups) and mm.shape != self._groups[group]:
            raise ShapeMismatchError("attn.explain.Page.add_map: argument 'm' has shape %s; "
                                     "the group's maps are %s" % (mm.shape, self._groups[group]))
        if aa is not None and aa.shape[0] != mm.shape[1]:
            raise ShapeMismatchError("attn.explain.Page.add_map: argument 'attr' has %d "
                                     "entries; it must have n_k = %d" % (aa.shape[0], mm.shape[1]))
        check(lib.attn_explain_add_map(self._e, int(group), int(k), int(target), mm.ctypes.data,
                                       None if aa is None else aa.ctypes.data))

    def select(self, group: int, layer: int = 0, head: int = 0) -> None:
        """The group, layer and head the page opens on."""
        check(lib.attn_explain_select(self._e, int(group), int(layer), int(head)))

    def html(self) -> str:
        """The page as one HTML string."""
        n = ctypes.c_size_t()
        check(lib.attn_explain_html(self._e, None, 0, ctypes.byref(n)))
        buf = ctypes.create_string_buffer(n.value + 1)
        check(lib.attn_explain_html(self._e, buf, len(buf), ctypes.byref(n)))
        return buf.raw[:n.value].decode("utf-8")

    def write(self, path: PathLike) -> int:
        """Writes the page to path (through "<path>.tmp" renamed into place);
        returns its size in bytes."""
        n = ctypes.c_size_t()
        check(lib.attn_explain_write(self._e, os.fsencode(path), ctypes.byref(n)))
        return n.value


def self_attention_page(path: PathLike, tokens: Sequence[str], weights: ArrayLike, *,
                        title: str = "attention", name: str = "self-attention",
                        notes: Sequence[str] = ()) -> int:
    """Writes a page of one self-attention stack: tokens (n strings), weights
    [n_layers, n_heads, n, n] (e.g. torch.stack(model(...,
    output_attentions=True).attentions)[:, 0] for batch row 0) and their
    rollout, with its mean over query rows as the attribution. Returns the
    page's size in bytes."""
    w = _f32(weights, 4, "weights", "[n_layers, n_heads, n, n]")
    with Page(title) as page:
        for text in notes:
            page.note(text)
        s = page.tokens("tokens", tokens)
        g = page.group(name, s, s, w)
        r = rollout(w)
        page.add_map(g, Kind.ROLLOUT, r, r.mean(axis=0))
        return page.write(path)


def rollout(weights: ArrayLike) -> np.ndarray:
    """Attention rollout r [n, n] of a self-attention stack weights
    [n_layers, n_heads, n, n] (layer 0 the first): the product over layers,
    last to first, of rownorm(0.5 mean_h A + 0.5 I)."""
    a = _f32(weights, 4, "weights", "[n_layers, n_heads, n, n]")
    r = np.empty(a.shape[2:], np.float32)
    check(lib.attn_explain_rollout(a.ctypes.data, a.shape[0], a.shape[1], a.shape[2],
                                   r.ctypes.data))
    return r


def head_mean(a: ArrayLike, grad: Optional[ArrayLike] = None) -> np.ndarray:
    """[n_q, n_k]: the mean over heads of a [n_heads, n_q, n_k], or, given
    grad [n_heads, n_q, n_k] (the gradient of the explained output with
    respect to a), of max(grad * a, 0)."""
    x = _f32(a, 3, "a", "[n_heads, n_q, n_k]")
    g = None if grad is None else _f32(grad, 3, "grad", "[n_heads, n_q, n_k]")
    if g is not None and g.shape != x.shape:
        raise ShapeMismatchError("attn.explain.head_mean: argument 'grad' has shape %s; "
                                 "a has %s" % (g.shape, x.shape))
    out = np.empty(x.shape[1:], np.float32)
    check(lib.attn_explain_head_mean(x.ctypes.data, None if g is None else g.ctypes.data,
                                     x.shape[0], x.shape[1], x.shape[2], out.ctypes.data))
    return out


def _inplace(a: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
            and a.flags.writeable and a.shape == shape):
        raise ShapeMismatchError("attn.explain: argument '%s' must be a writable C-contiguous "
                                 "float32 array of shape %s (it is updated in place)"
                                 % (name, shape))
    return a


def self_rule(abar: ArrayLike, r_xx: np.ndarray, r_xy: Optional[np.ndarray] = None) -> None:
    """Chefer's self-attention rule, in place: r_xx [n, n] += abar r_xx and,
    given r_xy [n, m], r_xy += abar r_xy (abar [n, n] from head_mean)."""
    a = _f32(abar, 2, "abar", "[n, n]")
    n = a.shape[0]
    _inplace(r_xx, (n, n), "r_xx")
    m = 0 if r_xy is None else r_xy.shape[-1]
    if r_xy is not None:
        _inplace(r_xy, (n, m), "r_xy")
    check(lib.attn_explain_self_rule(a.ctypes.data, n, r_xx.ctypes.data,
                                     None if r_xy is None else r_xy.ctypes.data, m))


def cross_rule(abar: ArrayLike, r_tt: ArrayLike, r_ss: ArrayLike, r_ts: np.ndarray) -> None:
    """Chefer's cross-attention rule, in place: r_ts [t, s] += Rbar_tt^T abar
    Rbar_ss with abar [t, s], r_tt [t, t], r_ss [s, s] and Rbar = rownorm(R -
    I) + I."""
    a = _f32(abar, 2, "abar", "[t, s]")
    t, s = a.shape
    tt, ss = _f32(r_tt, 2, "r_tt", "[t, t]"), _f32(r_ss, 2, "r_ss", "[s, s]")
    if tt.shape != (t, t) or ss.shape != (s, s):
        raise ShapeMismatchError("attn.explain.cross_rule: r_tt %s and r_ss %s must be "
                                 "[%d, %d] and [%d, %d]" % (tt.shape, ss.shape, t, t, s, s))
    _inplace(r_ts, (t, s), "r_ts")
    check(lib.attn_explain_cross_rule(a.ctypes.data, tt.ctypes.data, t, ss.ctypes.data, s,
                                      r_ts.ctypes.data))
