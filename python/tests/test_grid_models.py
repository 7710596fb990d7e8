"""Random grids of the toolkit's models, a whole training step against
PyTorch float64 with the same weights. Checked per configuration: the
logits, the loss and the gradient of every parameter.

1. The transformer (attn_transformer_step): the encoder-decoder against
   torch.nn.Transformer, the decoder-only LM against the LM written out in
   test_nn_reference.py.
2. The GRU encoder-decoder with additive attention (attn_seq2seq_step)
   against the same model written out in test_gru.py: embeddings 1-16,
   hidden sizes 1-24, attention dims 1-16, both decoder initialisations,
   sources of 1-10 tokens with lengths 1..S, targets of 1-8 with ignored
   (pad) labels, label smoothing 0-0.3.

The transformer grid:
Drawn: heads 1-8 (the LM: grouped-query and multi-query), head dims 1-16,
d_model >= 4,
feed-forward widths 1-64, 1-3 layers each, pre- and post-norm, LayerNorm and
RMSNorm, GELU and ReLU, sinusoidal, learned and (LM) rotary positions, tied
embeddings or not, vocabularies 2-60, batches 1-4 of 1-12 tokens with source
padding and ignored (pad) targets, label smoothing 0-0.3. Not drawn:
dropout (torch cannot be given attn's masks inside nn.Transformer; the
module grid covers the attention dropout) and RoPE in the encoder-decoder
(torch.nn.Transformer has no rotary positions).
"""
import numpy as np
import torch
import torch.nn.functional as F

from grid_util import log_int, run_grid
from test_gru import L  # noqa: F401 (the fixture: libattn_nn with its functions declared)
from test_gru import BACKWARD, MEAN, RnnConfig, TorchBahdanau
from test_gru import CModel as Seq2seqModel
from test_nn_reference import (DECODER, ENCDEC, GELU, LAYERNORM, LEARNED, RELU, RMSNORM, ROPE,
                               SINUSOIDAL, CModel, config, torch_model, torch_param)

torch.set_num_threads(1)


def draw(rng):
    arch = ENCDEC if rng.random() < 0.5 else DECODER
    H = log_int(rng, 1, 8)
    hd = log_int(rng, max(1, -(-4 // H)), 16)  # d_model >= 4: a norm over 1 or 2 values
    # has no gradient but rounding noise (the layer grid has those)
    pos = int(rng.choice([SINUSOIDAL, LEARNED] + ([ROPE] if arch == DECODER and hd % 2 == 0
                                                  else [])))
    Hkv = H
    if arch == DECODER and rng.random() < 0.6:
        Hkv = int(rng.choice([d for d in range(1, H + 1) if H % d == 0]))
    S, T = log_int(rng, 1, 12), log_int(rng, 1, 12)
    kw = dict(arch=arch, vocab=log_int(rng, 2, 60), d_model=H * hd, n_heads=H, n_kv_heads=Hkv,
              d_ff=log_int(rng, 1, 64), n_enc_layers=log_int(rng, 1, 3) if arch == ENCDEC else 0,
              n_dec_layers=log_int(rng, 1, 3), max_len=max(S, T) + int(rng.integers(0, 4)),
              norm_first=int(rng.random() < 0.6),
              norm=int(rng.choice([LAYERNORM, RMSNORM])), pos=pos,
              act=int(rng.choice([GELU, RELU])), norm_eps=float(rng.choice([1e-5, 1e-6])),
              rope_theta=float(rng.choice([10000.0, 500.0])),
              tie_embeddings=int(rng.random() < 0.3))
    return kw, S, T


def batch(rng, c, B, S, T):
    """Token 0 is the pad id: source rows padded past their length, and some
    target labels 0 (ignored by the loss)."""
    b = {}
    if c.arch == ENCDEC:
        lens = rng.integers(1, S + 1, size=B).astype(np.int64)
        src = rng.integers(1, c.vocab, size=(B, S)).astype(np.int32)
        for i in range(B):
            src[i, lens[i]:] = 0
        b["src"], b["src_lens"] = src, lens
    tgt = rng.integers(0 if rng.random() < 0.5 else 1, c.vocab, size=(B, T + 1)).astype(np.int32)
    tgt[0, 1] = max(1, int(tgt[0, 1]))  # one label counts
    b["tgt_in"], b["tgt_out"] = tgt[:, :-1].copy(), tgt[:, 1:].copy()
    return b


def one_model(rng, chk):
    kw, S, T = draw(rng)
    B = log_int(rng, 1, 4)
    ls = float(rng.choice([0.0, 0.1, float(rng.uniform(0, 0.3))]))
    chk.desc = dict(kw, B=B, S=S, T=T, label_smoothing=ls)
    c = config(**kw)
    cm = CModel(c, seed=int(rng.integers(0, 2 ** 32)))
    try:
        b = batch(rng, c, B, S, T)
        loss, logits = cm.step(b, ls)
        params = cm.params()
        tm = torch_model(c)
        tm.load(params)
        tm.double()
        tl = tm(b)
        tloss = F.cross_entropy(tl.reshape(-1, c.vocab),
                                torch.from_numpy(b["tgt_out"]).long().reshape(-1),
                                ignore_index=0, label_smoothing=ls)
        tloss.backward()
        chk.close("logits", logits, tl, 2e-5, 1.0)
        chk.close("loss", np.array(loss), tloss, 1e-5, 1.0)
        ref = {}
        for name, (_, grad, _) in params.items():
            tg = torch_param(tm, name).grad
            ref[name] = np.zeros(grad.shape) if tg is None else tg.numpy()
        # a tensor whose gradient is tiny (a layer the loss barely reaches) is
        # measured against 1% of the largest gradient of the model
        top = max(float(np.abs(g).max()) for g in ref.values() if g.size)
        for name, (_, grad, _) in params.items():
            chk.close("d(%s)" % kind_of(name), grad, ref[name], 1e-4, 1e-2 * top)
    finally:
        cm.close()


def kind_of(name):
    """A parameter name without its layer index, for the error report."""
    return ".".join(p for p in name.split(".") if not p.isdigit())


def test_grid_transformer(request):
    run_grid(request, "transformer", 5_000_000, 0.5, one_model)


# ---- the GRU encoder-decoder -----------------------------------------------------------------

def one_seq2seq(L, rng, chk):
    V, E, H, Hd, A = (log_int(rng, 4, 40), log_int(rng, 1, 16), log_int(rng, 1, 24),
                      log_int(rng, 1, 24), log_int(rng, 1, 16))
    init = int(rng.choice([BACKWARD, MEAN]))
    B, S, T = log_int(rng, 1, 5), log_int(rng, 1, 10), log_int(rng, 1, 8)
    ls = float(rng.choice([0.0, 0.1, float(rng.uniform(0, 0.3))]))
    chk.desc = dict(vocab=V, embed=E, hidden=H, dec_hidden=Hd, attn_dim=A, init=init, B=B, S=S,
                    T=T, label_smoothing=ls)
    cfg = RnnConfig(V, E, H, Hd, A, init)
    cm = Seq2seqModel(L, cfg, int(rng.integers(0, 2 ** 32)))
    try:
        lens = rng.integers(1, S + 1, size=B).astype(np.int64)
        src = np.zeros((B, S), np.int32)
        for b in range(B):
            src[b, :lens[b]] = rng.integers(3, V, lens[b])
        tgt_in = np.concatenate([np.ones((B, 1), np.int32),
                                 rng.integers(3, V, (B, T - 1)).astype(np.int32)], 1)
        tgt_out = rng.integers(0 if rng.random() < 0.5 else 2, V, (B, T)).astype(np.int32)
        tgt_out[0, 0] = max(2, int(tgt_out[0, 0]))  # one label counts
        b = {"src": src, "src_lens": lens, "tgt_in": tgt_in, "tgt_out": tgt_out}
        loss, logits = cm.step(b, ls)
        cp = cm.params()
        tm = TorchBahdanau(cfg).double()
        tm.load(cp)
        tl = tm(b)
        tloss = F.cross_entropy(tl.reshape(-1, V), torch.from_numpy(tgt_out).long().reshape(-1),
                                ignore_index=0, label_smoothing=ls)
        tloss.backward()
        chk.close("logits", logits, tl, 2e-5, 1.0)
        chk.close("loss", np.array(loss), tloss, 1e-5, 1.0)
        own = dict(tm.named_parameters())
        ref = {n: np.zeros(g.shape) if own[n].grad is None else own[n].grad.numpy()
               for n, (_, g) in cp.items()}
        top = max(float(np.abs(g).max()) for g in ref.values() if g.size)
        for name, (_, grad) in cp.items():
            chk.close("d(%s)" % name, grad, ref[name], 1e-4, 1e-2 * top)
    finally:
        cm.close()


def test_grid_seq2seq(request, L):  # noqa: F811 (L is test_gru's fixture)
    run_grid(request, "seq2seq", 5_100_000, 0.5, lambda rng, chk: one_seq2seq(L, rng, chk))
