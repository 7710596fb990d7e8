"""libattn_task: the dates task of the `attn` program (apps/attn/task:
train.h, with dates.h and charvocab.h behind it), which the Python package
builds as a library of its own for attn.models.DateTranslator. Its names
carry the prefix task_, as the apps' code does (docs/api.md)."""
from __future__ import annotations

import ctypes

from . import load
from .nn import lib as _nn  # noqa: F401  (load order: libattn_task needs libattn_nn)

c_int, c_i64, c_u64, c_dbl, c_p = (ctypes.c_int, ctypes.c_int64, ctypes.c_uint64,
                                   ctypes.c_double, ctypes.c_void_p)

TGT_LEN = 10  # TASK_DATES_TGT_LEN: "YYYY-MM-DD"


class TrainCfg(ctypes.Structure):
    """task_train_cfg."""
    _fields_ = [("steps", c_i64), ("batch", c_i64), ("warmup", c_i64), ("stop_after", c_i64),
                ("lr", c_dbl), ("min_lr", c_dbl), ("weight_decay", c_dbl), ("clip", c_dbl),
                ("label_smoothing", c_dbl), ("schedule", c_int), ("data_seed", c_u64),
                ("seed", c_u64), ("checkpointing", c_int), ("padded", c_int), ("eval_every", c_i64),
                ("eval_n", c_i64), ("target", c_dbl), ("save_path", ctypes.c_char_p),
                ("save_every", c_i64)]


class TrainProgress(ctypes.Structure):
    """task_train_progress: one step, as the callback sees it."""
    _fields_ = [("step", c_i64), ("steps", c_i64), ("loss", c_dbl), ("lr", c_dbl),
                ("grad_norm", c_dbl), ("tokens_per_s", c_dbl), ("elapsed_s", c_dbl),
                ("eta_s", c_dbl), ("heldout_acc", c_dbl), ("activation_bytes", ctypes.c_size_t)]


class TrainReport(ctypes.Structure):
    """task_train_report."""
    _fields_ = [("steps_run", c_i64), ("last_step", c_i64), ("final_loss", c_dbl),
                ("heldout_acc", c_dbl), ("seconds", c_dbl), ("activation_bytes", ctypes.c_size_t)]


TrainCallback = ctypes.CFUNCTYPE(None, ctypes.POINTER(TrainProgress), c_p)

FUNCTIONS = [
    ("task_train_cfg_default", TrainCfg),
    ("task_train_dates", c_int, c_p, c_p, ctypes.POINTER(TrainCfg), TrainCallback, c_p,
     ctypes.POINTER(TrainReport)),
    ("task_translate", c_int, c_p, c_p, ctypes.c_char_p, c_i64, ctypes.c_char_p,
     ctypes.c_size_t, c_p, ctypes.POINTER(c_i64)),
    ("task_eval_dates", c_int, c_p, c_p, c_i64, c_i64, ctypes.POINTER(c_dbl)),
]

lib = load("attn_task", FUNCTIONS)
