"""attn.models.DateTranslator: the main job of `attn train`, from Python.

    t = attn.models.DateTranslator()                 # the encoder-decoder of `attn train`
    t.train(steps=1000, target=0.995, progress=print)
    t.translate("Sunday, March 17th 2024")           # '2024-03-17'
    text, w = t.attention("3/4/05")                  # w [len(text), len("3/4/05")]
    t.map_png("3/4/05", "map.png")                   # the heatmap `attn translate --maps` draws
    t.save("dates.safetensors")                      # `attn translate --model` reads it

It calls the same C code as the program (the dates generator, the training
loop, beam search with a KV cache), which pip builds as libattn_task. The
defaults are those of `attn train` (docs/cli.md); the run is deterministic.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np

from .._lib.core import check, context
from .._lib.nn import TransformerConfig
from .._lib.nn import lib as nn
from .._lib.task import TGT_LEN, TrainCallback, TrainReport, lib
from .._sdpa import threads_arg
from ..enums import enum_value
from ..errors import BadParamError
from ..nn import Act, Schedule
from ..viz import heatmap_png

__all__ = ["DateTranslator", "Progress", "Report"]

PathLike = Union[str, "os.PathLike[str]"]

_ARCHS = {"encdec": 1, "decoder": 2}
_NORMS = {"layernorm": 1, "rmsnorm": 2}
_POS = {"sinusoidal": 1, "learned": 2, "rope": 3}


class Progress(NamedTuple):
    """One training step, as the progress callback receives it."""
    step: int
    steps: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float
    heldout_acc: Optional[float]  # None unless evaluated at this step


class Report(NamedTuple):
    """What DateTranslator.train did."""
    steps_run: int
    last_step: int
    final_loss: float
    heldout_acc: Optional[float]  # the last evaluation's exact match, if any
    seconds: float


def _choice(table: Dict[str, int], value: str, what: str) -> int:
    if value not in table:
        raise BadParamError("attn.models.DateTranslator: %s is %r; it must be one of %s" %
                            (what, value, ", ".join(sorted(table))))
    return table[value]


class DateTranslator:
    """The transformer of the dates task (attn/transformer.h): dates as people
    write them in, ISO 8601 out, one character per token.

    The model keyword arguments are those of `attn train` (arch "encdec" or
    "decoder", d_model, heads, kv_heads, ff, layers, enc_layers, dec_layers,
    post_norm, norm, pos, act, dropout, attn_dropout) and seed, which
    initialises the weights. threads: attn's threads (0: one per CPU)."""

    def __init__(self, *, arch: str = "encdec", d_model: int = 128, heads: int = 4,
                 kv_heads: Optional[int] = None, ff: int = 512, layers: int = 2,
                 enc_layers: Optional[int] = None, dec_layers: Optional[int] = None,
                 post_norm: bool = False, norm: str = "layernorm", pos: str = "sinusoidal",
                 act: str = "gelu", dropout: float = 0.0, attn_dropout: float = 0.0,
                 seed: int = 2, threads: int = 0):
        a = _choice(_ARCHS, arch, "arch")
        c = nn.attn_transformer_config_default(a)
        c.norm, c.pos = _choice(_NORMS, norm, "norm"), _choice(_POS, pos, "pos")
        c.act = enum_value(Act, act, "attn.models.DateTranslator: act")
        c.d_model, c.n_heads, c.d_ff = d_model, heads, ff
        c.n_kv_heads = kv_heads or heads
        c.n_enc_layers = (enc_layers or layers) if a == _ARCHS["encdec"] else 0
        c.n_dec_layers = dec_layers or layers
        c.norm_first = 0 if post_norm else 1
        c.dropout, c.attn_dropout = dropout, attn_dropout
        self._m: Optional[ctypes.c_void_p] = ctypes.c_void_p()
        check(nn.attn_transformer_create(ctypes.byref(c), int(seed), ctypes.byref(self._m)))
        self.threads = threads_arg(threads, "attn.models.DateTranslator")

    @classmethod
    def load(cls, path: PathLike, *, threads: int = 0) -> "DateTranslator":
        """A model from a checkpoint of save(), train(save=...) or `attn train`."""
        self = cls.__new__(cls)
        self._m = ctypes.c_void_p()
        check(nn.attn_transformer_load(os.fsencode(path), ctypes.byref(self._m)))
        self.threads = threads_arg(threads, "attn.models.DateTranslator.load")
        return self

    def close(self, _free=nn.attn_transformer_free) -> None:
        """Frees the model (also done when the object is collected)."""
        m, self._m = getattr(self, "_m", None), None
        if m:
            _free(m)

    def __del__(self) -> None:
        self.close()

    @property
    def config(self) -> TransformerConfig:
        """A copy of the model's attn_transformer_config."""
        return TransformerConfig.from_buffer_copy(nn.attn_transformer_get_config(self._m)
                                                  .contents)

    @property
    def param_count(self) -> int:
        return int(nn.attn_transformer_param_count(self._m))

    @property
    def steps_taken(self) -> int:
        """Optimiser steps taken so far (training continues from here)."""
        return int(nn.attn_transformer_steps_taken(self._m))

    def save(self, path: PathLike, *, with_optim: bool = True) -> None:
        """Writes a checkpoint (safetensors; atomically), with the AdamW state
        unless with_optim is False."""
        check(nn.attn_transformer_save(self._m, os.fsencode(path), 1 if with_optim else 0,
                                       None, None, 0))

    def train(self, *, steps: Optional[int] = None, batch: Optional[int] = None,
              lr: Optional[float] = None, min_lr: Optional[float] = None,
              warmup: Optional[int] = None, schedule: Optional[str] = None,
              clip: Optional[float] = None, weight_decay: Optional[float] = None,
              label_smoothing: Optional[float] = None, data_seed: Optional[int] = None,
              seed: Optional[int] = None, checkpointing: bool = False, padded: bool = False,
              eval_every: Optional[int] = None, eval_n: Optional[int] = None,
              target: float = 0.99, save: Optional[PathLike] = None, save_every: int = 0,
              progress: Optional[Callable[[Progress], Any]] = None) -> Report:
        """Trains from the current step to `steps` on generated dates (AdamW,
        warm-up and the schedule, clipping), checking the held-out exact match
        every eval_every steps and stopping once it reaches target (0: never).
        None means `attn train`'s default (steps 1500, batch 64, lr 2e-3,
        min_lr 2e-5, warmup 100, "cosine", clip 1, weight_decay 0.01, data_seed
        1, seed 2 for dropout, eval_every 250, eval_n 500). Batches are packed
        (the sequences back to back, no padding rows) unless padded is True
        (`attn train --padded`). save: a checkpoint
        written at the end (and every save_every steps) that `attn train
        --resume` continues. progress(Progress) is called after every step; an
        exception it raises is raised when training ends."""
        cfg = lib.task_train_cfg_default()
        given = dict(steps=steps, batch=batch, lr=lr, min_lr=min_lr, warmup=warmup, clip=clip,
                     weight_decay=weight_decay, label_smoothing=label_smoothing,
                     data_seed=data_seed, seed=seed, eval_every=eval_every, eval_n=eval_n)
        for name, value in given.items():
            if value is not None:
                setattr(cfg, name, value)
        if schedule is not None:
            cfg.schedule = enum_value(Schedule, schedule, "attn.models.DateTranslator: schedule")
        cfg.checkpointing = 1 if checkpointing else 0
        cfg.padded = 1 if padded else 0
        cfg.target = target
        cfg.save_path = None if save is None else os.fsencode(save)
        cfg.save_every = save_every
        failure: list = []
        report = progress

        def on_step(p: Any, user: Any) -> None:
            if failure or report is None:
                return
            s = p.contents
            try:
                report(Progress(s.step, s.steps, s.loss, s.lr, s.grad_norm, s.tokens_per_s,
                                  s.elapsed_s, s.eta_s,
                                  s.heldout_acc if s.heldout_acc >= 0 else None))
            except BaseException as e:  # raised below, once C has returned
                failure.append(e)

        cb = TrainCallback(on_step) if progress is not None else TrainCallback()
        rep = TrainReport()
        check(lib.task_train_dates(context(self.threads), self._m, ctypes.byref(cfg), cb, None,
                                   ctypes.byref(rep)))
        if failure:
            raise failure[0]
        return Report(rep.steps_run, rep.last_step, rep.final_loss,
                      rep.heldout_acc if rep.heldout_acc >= 0 else None, rep.seconds)

    def _translate(self, text: str, beam: int, maps: bool) -> Tuple[str, Optional[np.ndarray]]:
        src = text.encode("utf-8")
        out = ctypes.create_string_buffer(64)
        w = np.zeros((TGT_LEN + 1, max(len(src), 1)), np.float32) if maps else None
        n = ctypes.c_int64()
        check(lib.task_translate(context(self.threads), self._m, src, int(beam), out,
                                 len(out), None if w is None else w.ctypes.data,
                                 ctypes.byref(n)))
        result = out.value.decode("utf-8")
        return result, None if w is None else w[:n.value, :len(src)]

    def translate(self, text: str, *, beam: int = 1) -> str:
        """The ISO date the model writes for text (1 to 48 characters), with
        greedy decoding (beam 1) or beam search."""
        return self._translate(text, beam, False)[0]

    def attention(self, text: str) -> Tuple[str, np.ndarray]:
        """(translation, w): w [n_out, len(text)] is the last decoder layer's
        cross-attention averaged over heads, row r for output character r
        (greedy decoding; the encoder-decoder only)."""
        result, w = self._translate(text, 1, True)
        assert w is not None
        return result, w

    def map_png(self, text: str, path: PathLike) -> str:
        """Writes the cross-attention map of text as `attn translate --maps` does
        (output characters down, source characters across); returns the
        translation."""
        result, w = self.attention(text)
        rows = list(result)[:w.shape[0]]
        rows += [""] * (w.shape[0] - len(rows))
        heatmap_png(path, w, row_labels=rows, col_labels=list(text),
                    title="%s -> %s" % (text, result), row_axis="output", col_axis="source")
        return result

    def evaluate(self, n: int = 2000, *, beam: int = 1) -> float:
        """Exact match on the first n held-out (date, format) pairs, which
        training never sees."""
        acc = ctypes.c_double()
        check(lib.task_eval_dates(context(self.threads), self._m, int(n), int(beam),
                                  ctypes.byref(acc)))
        return acc.value

