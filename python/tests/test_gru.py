"""The GRU layer and the Bahdanau encoder-decoder (attn/seq2seq.h) against PyTorch 2.13.

1. attn_nn_gru_forward/backward against torch.nn.GRU(batch_first=True),
   one- and bidirectional, with lengths through pack_padded_sequence, in
   float64: outputs, final states, and the gradients of x, h0 and every
   weight, all with the same weights.
2. attn_rnn_gru_cell_* against torch.nn.GRUCell.
3. The whole seq2seq model (attn_seq2seq_step) against the same math
   written here in PyTorch (nn.GRU encoder, additive attention, nn.GRUCell
   decoder, linear output) with the C model's weights copied by name: loss
   to 1e-5, every parameter's gradient to 1e-4 of the tensor's largest
   gradient; then greedy decoding: tokens and attention weights.

The C side runs through the package's ctypes layer (attn._lib.nn).
"""
import ctypes as C

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attn._lib.core import check, context
from attn._lib.nn import Batch, GenOpts, Param
from attn._lib.nn import Gru, GruCell as Cell, GruSaved as Saved
from attn._lib.nn import Seq2SeqConfig as RnnConfig
from attn._lib.nn import lib

FP = C.POINTER(C.c_float)
BACKWARD, MEAN = 1, 2


@pytest.fixture(scope="module")
def L():
    return lib


def ok(L, st):
    check(st)


def fp(a):
    return a.ctypes.data_as(FP) if a is not None else None


def f32(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# ---- 1, 2: the GRU layer and cell -----------------------------------------------------

class CGru:
    """A C attn_nn_gru whose weights are numpy float32 copies of a torch.nn.GRU."""

    def __init__(self, tg):
        self.D = 2 if tg.bidirectional else 1
        self.g = Gru()
        self.g.bidirectional = self.D - 1
        self.w, self.dw = [], []
        for d in range(self.D):
            sfx = "_l0" + ("_reverse" if d else "")
            ws = [f32(getattr(tg, n + sfx).detach().numpy()) for n in
                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            dws = [np.zeros_like(w) for w in ws]
            self.w.append(ws)
            self.dw.append(dws)
            c = self.g.dir[d]
            c.input_size, c.hidden_size = tg.input_size, tg.hidden_size
            c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh = [fp(w) for w in ws]
            c.d_weight_ih, c.d_weight_hh, c.d_bias_ih, c.d_bias_hh = [fp(w) for w in dws]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_gru_layer_vs_torch(L, bidirectional, seed):
    torch.manual_seed(seed)
    B, T, I, H = 5, 7, 6, 8
    D = 2 if bidirectional else 1
    tg = nn.GRU(I, H, batch_first=True, bidirectional=bidirectional)
    cg = CGru(tg)
    lens = np.array([7, 3, 1, 5, 7], np.int64)
    x = f32(np.random.default_rng(seed).uniform(-1, 1, (B, T, I)))
    h0 = f32(np.random.default_rng(seed + 9).uniform(-1, 1, (D, B, H)))
    a = f32(np.random.default_rng(seed + 1).uniform(-1, 1, (B, T, D * H)))
    c = f32(np.random.default_rng(seed + 2).uniform(-1, 1, (D, B, H)))
    # C
    out = np.zeros((B, T, D * H), np.float32)
    hn = np.zeros((D, B, H), np.float32)
    dx = np.zeros_like(x)
    dh0 = np.zeros_like(h0)
    sv = Saved()
    lp = lens.ctypes.data_as(C.POINTER(C.c_int64))
    ok(L, L.attn_nn_gru_forward(context(2), C.byref(cg.g), fp(x), B, T, lp, fp(h0), fp(out), fp(hn), C.byref(sv)))
    ok(L, L.attn_nn_gru_backward(context(2), C.byref(cg.g), fp(x), lp, C.byref(sv), fp(a), fp(c), fp(dx), fp(dh0)))
    L.attn_nn_gru_saved_free(C.byref(sv))
    # torch, float64
    tg = tg.double()
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h0t = torch.tensor(h0, dtype=torch.float64, requires_grad=True)
    packed = pack_padded_sequence(xt, torch.tensor(lens), batch_first=True, enforce_sorted=False)
    po, hnt = tg(packed, h0t)
    ot, _ = pad_packed_sequence(po, batch_first=True, total_length=T)
    loss = (ot * torch.tensor(a, dtype=torch.float64)).sum() + (hnt * torch.tensor(c, dtype=torch.float64)).sum()
    loss.backward()
    assert np.abs(out - ot.detach().numpy()).max() < 1e-5
    assert np.abs(hn - hnt.detach().numpy()).max() < 1e-5
    assert rel_err(dx, xt.grad.numpy()) < 1e-5
    assert rel_err(dh0, h0t.grad.numpy()) < 1e-5
    for d in range(D):
        sfx = "_l0" + ("_reverse" if d else "")
        for k, n in enumerate(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            ref = getattr(tg, n + sfx).grad.numpy()
            assert rel_err(cg.dw[d][k], ref) < 1e-5, n + sfx


def test_gru_cell_vs_torch(L):
    torch.manual_seed(3)
    B, I, H = 4, 5, 6
    tc = nn.GRUCell(I, H).double()
    ws = [f32(getattr(tc, n).detach().numpy()) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    dws = [np.zeros_like(w) for w in ws]
    cell = Cell(I, H, *[fp(w) for w in ws], *[fp(w) for w in dws])
    rng = np.random.default_rng(3)
    x, h, a = f32(rng.uniform(-1, 1, (B, I))), f32(rng.uniform(-1, 1, (B, H))), f32(rng.uniform(-1, 1, (B, H)))
    hn, sv = np.zeros((B, H), np.float32), np.zeros((B, 4 * H), np.float32)
    dx, dh = np.zeros_like(x), np.zeros_like(h)
    ok(L, L.attn_nn_gru_cell_forward(context(2), C.byref(cell), fp(x), fp(h), B, fp(hn), fp(sv)))
    ok(L, L.attn_nn_gru_cell_backward(context(2), C.byref(cell), fp(x), fp(h), B, fp(sv), fp(a), fp(dx), fp(dh)))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ht = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    y = tc(xt, ht)
    (y * torch.tensor(a, dtype=torch.float64)).sum().backward()
    assert np.abs(hn - y.detach().numpy()).max() < 1e-6
    assert rel_err(dx, xt.grad.numpy()) < 1e-5 and rel_err(dh, ht.grad.numpy()) < 1e-5
    for k, n in enumerate(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
        assert rel_err(dws[k], getattr(tc, n).grad.numpy()) < 1e-5, n


# ---- 3: the seq2seq model ------------------------------------------------------------------

class CModel:
    def __init__(self, L, cfg, seed):
        self.L, self.cfg = L, cfg
        self.m, self.ctx = C.c_void_p(), context(2)
        ok(L, L.attn_seq2seq_create(C.byref(cfg), seed, C.byref(self.m)))

    def close(self):
        self.L.attn_seq2seq_free(self.m)

    def params(self):
        out = {}
        for i in range(self.L.attn_seq2seq_n_tensors(self.m)):
            p = Param()
            ok(self.L, self.L.attn_seq2seq_tensor(self.m, i, C.byref(p)))
            shape = tuple(p.shape[k] for k in range(p.ndim))
            val = np.ctypeslib.as_array(p.value, shape=(p.numel,)).reshape(shape)
            grad = np.ctypeslib.as_array(p.grad, shape=(p.numel,)).reshape(shape)
            out[p.name.decode()] = (val, grad)
        return out

    def step(self, b, ls=0.0):
        B, T = b["tgt_in"].shape
        arrs = {k: np.ascontiguousarray(v) for k, v in b.items()}
        i32 = C.POINTER(C.c_int32)
        bt = Batch(B, arrs["src"].shape[1], T, arrs["src"].ctypes.data_as(i32),
                   arrs["tgt_in"].ctypes.data_as(i32), arrs["tgt_out"].ctypes.data_as(i32),
                   arrs["src_lens"].ctypes.data_as(C.POINTER(C.c_int64)), None, 0)
        loss = C.c_double()
        logits = np.zeros((B, T, self.cfg.vocab), np.float32)
        self.L.attn_seq2seq_zero_grad(self.m)
        ok(self.L, self.L.attn_seq2seq_step(self.ctx, self.m, C.byref(bt), ls, 1, C.byref(loss), fp(logits)))
        return loss.value, logits

    def generate(self, src, lens, cap):
        B, S = src.shape
        src = np.ascontiguousarray(src, np.int32)
        lens = np.ascontiguousarray(lens, np.int64)
        out = np.zeros((B, cap), np.int32)
        n = np.zeros(B, np.int64)
        w = np.zeros((B, cap, S), np.float32)
        o = GenOpts(1, 2, cap, 1, 0.0)
        ok(self.L, self.L.attn_seq2seq_generate(self.ctx, self.m, src.ctypes.data_as(C.POINTER(C.c_int32)), B, S,
                                            lens.ctypes.data_as(C.POINTER(C.c_int64)), C.byref(o),
                                            out.ctypes.data_as(C.POINTER(C.c_int32)), cap,
                                            n.ctypes.data_as(C.POINTER(C.c_int64)), fp(w)))
        return out, n, w


class TorchBahdanau(nn.Module):
    """The same model, written from the equations of attn/seq2seq.h."""

    def __init__(self, cfg):
        super().__init__()
        V, E, H, Hd, A = cfg.vocab, cfg.embed, cfg.hidden, cfg.dec_hidden, cfg.attn_dim
        self.init_kind = cfg.init
        self.encoder = nn.Module()
        self.encoder.embedding = nn.Embedding(V, E)
        self.encoder.gru = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.decoder = nn.Module()
        self.decoder.embedding = nn.Embedding(V, E)
        self.decoder.init = nn.Linear(2 * H if cfg.init == MEAN else H, Hd)
        self.decoder.attention = nn.Module()
        self.decoder.attention.w_q = nn.Parameter(torch.zeros(A, Hd))
        self.decoder.attention.w_k = nn.Parameter(torch.zeros(A, 2 * H))
        self.decoder.attention.b = nn.Parameter(torch.zeros(A))
        self.decoder.attention.v_a = nn.Parameter(torch.zeros(A))
        self.decoder.gru = nn.GRUCell(E + 2 * H, Hd)
        self.decoder.out = nn.Linear(Hd + 2 * H + E, V)

    def load(self, cparams):
        own = dict(self.named_parameters())
        assert sorted(own) == sorted(cparams)
        for name, (val, _) in cparams.items():
            own[name].data.copy_(torch.from_numpy(val.copy()).double())

    def encode(self, src, lens):
        S = src.shape[1]
        xe = self.encoder.embedding(src)
        packed = pack_padded_sequence(xe, lens, batch_first=True, enforce_sorted=False)
        out, hn = self.encoder.gru(packed)
        ann, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        if self.init_kind == BACKWARD:
            x0 = hn[1]
        else:
            x0 = ann.sum(1) / lens[:, None].double()
        return ann, torch.tanh(self.decoder.init(x0))

    def attend(self, s, ann, lens):
        a = self.decoder.attention
        e = torch.tanh((s @ a.w_q.T + a.b)[:, None, :] + ann @ a.w_k.T) @ a.v_a  # [B, S]
        mask = torch.arange(ann.shape[1])[None, :] >= lens[:, None]
        p = torch.softmax(e.masked_fill(mask, float("-inf")), dim=1)
        return (p[:, :, None] * ann).sum(1), p

    def step(self, y, s, ann, lens):
        c, p = self.attend(s, ann, lens)
        emb = self.decoder.embedding(y)
        s = self.decoder.gru(torch.cat([emb, c], 1), s)
        return self.decoder.out(torch.cat([s, c, emb], 1)), s, p

    def forward(self, b):
        src, lens = torch.from_numpy(b["src"]).long(), torch.from_numpy(b["src_lens"])
        tgt = torch.from_numpy(b["tgt_in"]).long()
        ann, s = self.encode(src, lens)
        logits = []
        for i in range(tgt.shape[1]):
            z, s, _ = self.step(tgt[:, i], s, ann, lens)
            logits.append(z)
        return torch.stack(logits, 1)


def make_batch(rng, V, B, S, T, lens):
    src = np.zeros((B, S), np.int32)
    for b in range(B):
        src[b, :lens[b]] = rng.integers(3, V, lens[b])
    tgt = rng.integers(3, V, (B, T)).astype(np.int32)
    tgt_in = np.concatenate([np.ones((B, 1), np.int32), tgt[:, :-1]], 1)
    tgt_out = tgt.copy()
    tgt_out[0, -1] = 2
    tgt_out[1, -2:] = 0  # padding labels are ignored
    return {"src": src, "src_lens": np.array(lens, np.int64), "tgt_in": tgt_in, "tgt_out": tgt_out}


@pytest.mark.parametrize("init", [BACKWARD, MEAN])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_seq2seq_loss_and_gradients_vs_torch(L, init, ls):
    cfg = RnnConfig(17, 6, 7, 9, 5, init)
    cm = CModel(L, cfg, 5 + init)
    try:
        rng = np.random.default_rng(init)
        b = make_batch(rng, 17, 4, 8, 6, [8, 3, 5, 1])
        loss, logits = cm.step(b, ls)
        cp = cm.params()
        tm = TorchBahdanau(cfg).double()
        tm.load(cp)
        tl = tm(b)
        tloss = F.cross_entropy(tl.reshape(-1, 17), torch.from_numpy(b["tgt_out"]).long().reshape(-1),
                                ignore_index=0, label_smoothing=ls)
        tloss.backward()
        assert abs(loss - tloss.item()) < 1e-5
        assert np.abs(logits - tl.detach().numpy()).max() < 1e-4
        own = dict(tm.named_parameters())
        for name, (_, g) in cp.items():
            assert rel_err(g, own[name].grad.numpy()) < 1e-4, name
    finally:
        cm.close()


@pytest.mark.parametrize("eos_bias", [0.0, 0.3])
def test_seq2seq_greedy_decoding_vs_torch(L, eos_bias):
    """eos_bias raises EOS's logit so that rows stop at different steps (0.3:
    lengths 7 (the cap), 3 and 1)."""
    cfg = RnnConfig(13, 6, 8, 8, 6, BACKWARD)
    cm = CModel(L, cfg, 42)
    try:
        cp = cm.params()
        cp["decoder.out.bias"][0][2] += eos_bias  # a view of the C model's memory
        tm = TorchBahdanau(cfg).double()
        tm.load(cp)
        rng = np.random.default_rng(7)
        lens = np.array([6, 2, 4], np.int64)
        src = np.zeros((3, 6), np.int32)
        for b in range(3):
            src[b, :lens[b]] = rng.integers(3, 13, lens[b])
        cap = 7
        out, n, w = cm.generate(src, lens, cap)
        with torch.no_grad():
            lt = torch.from_numpy(lens)
            ann, s = tm.encode(torch.from_numpy(src).long(), lt)
            y = torch.ones(3, dtype=torch.long)
            done = [False] * 3
            toks = [[] for _ in range(3)]
            maps = [[] for _ in range(3)]
            for _ in range(cap):
                z, s, p = tm.step(y, s, ann, lt)
                y = z.argmax(1)
                for b in range(3):
                    if done[b]:
                        continue
                    if y[b].item() == 2:
                        done[b] = True
                    else:
                        toks[b].append(y[b].item())
                        maps[b].append(p[b].numpy())
        if eos_bias:
            assert sorted(n) == [1, 3, 7]
        for b in range(3):
            assert n[b] == len(toks[b])
            assert list(out[b, :n[b]]) == toks[b]
            if n[b]:
                assert np.abs(w[b, :n[b]] - np.array(maps[b])).max() < 1e-5
            assert not w[b, n[b]:].any() and not w[b, :, lens[b]:].any()
    finally:
        cm.close()
