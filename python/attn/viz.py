"""attn.viz: attention maps as PNG heatmaps (include/attn/viz.h, library attn_viz).

    attn.viz.heatmap_png("map.png", w, row_labels=list("2024-03-17"),
                         col_labels=list("17 Mar 2024"), title="17 Mar 2024",
                         row_axis="output", col_axis="source")

w is a [rows, cols] array of weights, row r one output (query) position and
column c one source (key) position; the colour scale is [0, 1], or [0, max]
with normalize=True. heatmap_rgb gives the same image as an array.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ._lib.core import check
from ._lib.core import lib as core
from ._lib.viz import Heatmap, lib
from .errors import ShapeMismatchError

__all__ = ["heatmap_png", "heatmap_rgb"]


def _labels(labels: Optional[Sequence[str]], n: int, name: str) -> Any:
    if labels is None:
        return None
    if len(labels) != n:
        raise ShapeMismatchError("attn.viz: %s has %d labels; the map has %d" %
                                 (name, len(labels), n))
    return (ctypes.c_char_p * max(n, 1))(*[str(s).encode("utf-8") for s in labels])


def _heatmap(w: Any, row_labels, col_labels, title, row_axis, col_axis, cell: int,
             normalize: bool) -> Tuple[Heatmap, list]:
    """The attn_viz_heatmap of w and what it points to (to keep alive)."""
    a = np.asarray(w, dtype=np.float32)
    if a.ndim != 2:
        raise ShapeMismatchError("attn.viz: w has shape %s; it must be [rows, cols]" %
                                 (a.shape,))
    a = np.ascontiguousarray(a)
    rows, cols = a.shape
    rl, cl = _labels(row_labels, rows, "row_labels"), _labels(col_labels, cols, "col_labels")
    enc = [None if s is None else s.encode("utf-8") for s in (title, row_axis, col_axis)]
    h = Heatmap(a.ctypes.data, rows, cols, cols, rl, cl, enc[0], enc[1], enc[2], int(cell),
                1 if normalize else 0)
    return h, [a, rl, cl]


def heatmap_png(path: Union[str, "os.PathLike[str]"], w: Any, *,
                row_labels: Optional[Sequence[str]] = None,
                col_labels: Optional[Sequence[str]] = None, title: Optional[str] = None,
                row_axis: Optional[str] = None, col_axis: Optional[str] = None, cell: int = 0,
                normalize: bool = False) -> None:
    """Writes the map w [rows, cols] as an RGB PNG at path (atomically: through
    "<path>.tmp"). cell: pixels per cell, 0 automatic."""
    h, _keep = _heatmap(w, row_labels, col_labels, title, row_axis, col_axis, cell, normalize)
    check(lib.attn_viz_heatmap_png(os.fsencode(path), ctypes.byref(h)))


def heatmap_rgb(w: Any, *, row_labels: Optional[Sequence[str]] = None,
                col_labels: Optional[Sequence[str]] = None, title: Optional[str] = None,
                row_axis: Optional[str] = None, col_axis: Optional[str] = None, cell: int = 0,
                normalize: bool = False) -> np.ndarray:
    """The image heatmap_png writes, as uint8 [height, width, 3]."""
    h, _keep = _heatmap(w, row_labels, col_labels, title, row_axis, col_axis, cell, normalize)
    buf, width, height = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_int()
    check(lib.attn_viz_heatmap_rgb(ctypes.byref(h), ctypes.byref(buf), ctypes.byref(width),
                                   ctypes.byref(height)))
    img = np.empty((height.value, width.value, 3), np.uint8)
    ctypes.memmove(img.ctypes.data, buf, img.nbytes)
    core.attn_release(buf)
    return img
