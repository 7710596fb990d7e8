"""libattn_viz (attn/viz.h): attention maps as PNG heatmaps."""
from __future__ import annotations

import ctypes

from . import load

PC = ctypes.POINTER(ctypes.c_char_p)


class Heatmap(ctypes.Structure):
    """attn_viz_heatmap."""
    _fields_ = [("w", ctypes.c_void_p), ("rows", ctypes.c_int64), ("cols", ctypes.c_int64),
                ("row_stride", ctypes.c_int64), ("row_labels", PC), ("col_labels", PC),
                ("title", ctypes.c_char_p), ("row_axis", ctypes.c_char_p),
                ("col_axis", ctypes.c_char_p), ("cell", ctypes.c_int),
                ("normalize", ctypes.c_int)]


PH = ctypes.POINTER(Heatmap)
FUNCTIONS = [
    ("attn_viz_heatmap_png", ctypes.c_int, ctypes.c_char_p, PH),
    ("attn_viz_heatmap_rgb", ctypes.c_int, PH, ctypes.POINTER(ctypes.c_void_p),
     ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)),
]

lib = load("attn_viz", FUNCTIONS)
