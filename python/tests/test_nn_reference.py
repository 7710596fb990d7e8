"""The toolkit's models against PyTorch 2.13, as llm.c checks GPT-2: the same
weights in a PyTorch model (torch.nn.Transformer for the encoder-decoder, a
small hand-written module for the decoder-only LM), then the logits (1e-4),
the loss (1e-5), every parameter's gradient (1e-4 relative to the tensor's
largest gradient) and a 10-step AdamW loss curve (1e-4) must agree.

The C side runs through the package's ctypes layer (attn._lib.nn:
attn_transformer_create, attn_transformer_step, attn_transformer_update); its
own initialisation is copied into the torch model by tensor name.
"""
import ctypes as C
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from attn._lib.core import check, context
from attn._lib.nn import AdamW, Batch, Param, TrainOpts, lib as L
from attn._lib.nn import TransformerConfig as Config

ENCDEC, DECODER = 1, 2
LAYERNORM, RMSNORM = 1, 2
SINUSOIDAL, LEARNED, ROPE = 1, 2, 3
GELU, RELU = 1, 2


class CModel:
    def __init__(self, cfg, seed=7):
        self.cfg = cfg
        self.m = C.c_void_p()
        self.ctx = context(2)
        check(L.attn_transformer_create(C.byref(cfg), seed, C.byref(self.m)))

    def close(self):
        L.attn_transformer_free(self.m)

    def params(self):
        out = {}
        for i in range(L.attn_transformer_n_tensors(self.m)):
            p = Param()
            check(L.attn_transformer_tensor(self.m, i, C.byref(p)))
            shape = tuple(p.shape[k] for k in range(p.ndim))
            val = np.ctypeslib.as_array(p.value, shape=(p.numel,)).reshape(shape)
            grad = np.ctypeslib.as_array(p.grad, shape=(p.numel,)).reshape(shape)
            out[p.name.decode()] = (val, grad, p.decay)
        return out

    def step(self, batch, ls, grads=True, checkpointing=0, training=0, seed=0):
        B, T = batch["tgt_in"].shape
        arrs = {k: np.ascontiguousarray(v) for k, v in batch.items()}
        b = Batch()
        b.B, b.S_tgt, b.pad_id = B, T, 0
        i32 = C.POINTER(C.c_int32)
        b.tgt_in = arrs["tgt_in"].ctypes.data_as(i32)
        b.tgt_out = arrs["tgt_out"].ctypes.data_as(i32)
        if "src" in arrs:
            b.S_src = arrs["src"].shape[1]
            b.src = arrs["src"].ctypes.data_as(i32)
            b.src_lens = arrs["src_lens"].ctypes.data_as(C.POINTER(C.c_int64))
        o = TrainOpts(training, seed, ls, checkpointing)
        logits = np.zeros((B, T, self.cfg.vocab), np.float32)
        loss = C.c_double()
        if grads:
            L.attn_transformer_zero_grad(self.m)
        check(L.attn_transformer_step(self.ctx, self.m, C.byref(b), C.byref(o), int(grads),
                                      C.byref(loss),
                                      logits.ctypes.data_as(C.POINTER(C.c_float)), None))
        return loss.value, logits

    def step_packed(self, batch, ls, tgt_lens):
        """The step on the batch's sequences packed (attn_nn_batch.cu_seqlens_*):
        source b's first src_lens[b] tokens and target b's first tgt_lens[b],
        back to back. Returns the loss and the logits of the packed rows."""
        i32, i64 = C.POINTER(C.c_int32), C.POINTER(C.c_int64)
        B = batch["tgt_in"].shape[0]
        cut = lambda x, lens: np.ascontiguousarray(np.concatenate([x[i, :lens[i]] for i in range(B)]))
        offsets = lambda lens: np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        tl = np.asarray(tgt_lens, np.int64)
        arrs = {"tgt_in": cut(batch["tgt_in"], tl), "tgt_out": cut(batch["tgt_out"], tl),
                "cu_tgt": offsets(tl)}
        b = Batch()
        b.B, b.S_tgt, b.pad_id = B, int(tl.sum()), 0
        b.tgt_in = arrs["tgt_in"].ctypes.data_as(i32)
        b.tgt_out = arrs["tgt_out"].ctypes.data_as(i32)
        b.cu_seqlens_tgt = arrs["cu_tgt"].ctypes.data_as(i64)
        if "src" in batch:
            sl = batch["src_lens"]
            arrs["src"], arrs["cu_src"] = cut(batch["src"], sl), offsets(sl)
            b.S_src = int(sl.sum())
            b.src = arrs["src"].ctypes.data_as(i32)
            b.cu_seqlens_src = arrs["cu_src"].ctypes.data_as(i64)
        o = TrainOpts(0, 0, ls, 0)
        logits = np.zeros((b.S_tgt, self.cfg.vocab), np.float32)
        loss = C.c_double()
        L.attn_transformer_zero_grad(self.m)
        check(L.attn_transformer_step(self.ctx, self.m, C.byref(b), C.byref(o), 1, C.byref(loss),
                                      logits.ctypes.data_as(C.POINTER(C.c_float)), None))
        return loss.value, logits

    def update(self, lr, clip, wd):
        opt = AdamW(lr, 0.9, 0.999, 1e-8, wd)
        norm = C.c_double()
        check(L.attn_transformer_update(self.m, C.byref(opt), lr, clip, C.byref(norm)))
        return norm.value


# ---- PyTorch models --------------------------------------------------------------

def sinusoid(n, d):
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)
    ang = pos / torch.pow(10000.0, i / d)
    t = torch.zeros(n, d, dtype=torch.float64)
    t[:, 0::2] = torch.sin(ang)
    t[:, 1::2] = torch.cos(ang[:, :d // 2])  # an odd d ends with a sine column
    return t.float()


def rope(x, theta):
    # x [B, S, H, hd]; the pair (x[i], x[i + hd/2]) rotates by pos * theta^(-2i/hd)
    S, hd = x.shape[1], x.shape[-1]
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * inv[None]
    cos = torch.cos(ang).float()[None, :, None, :]
    sin = torch.sin(ang).float()[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class TorchEncDec(nn.Module):
    """torch.nn.Transformer with the toolkit's embeddings and output head."""

    def __init__(self, c):
        super().__init__()
        d = c.d_model
        self.c = c
        self.embed = nn.Embedding(c.vocab, d)
        if c.pos == LEARNED:
            self.enc_pos = nn.Embedding(c.max_len, d)
            self.dec_pos = nn.Embedding(c.max_len, d)
        self.transformer = nn.Transformer(
            d_model=d, nhead=c.n_heads, num_encoder_layers=c.n_enc_layers,
            num_decoder_layers=c.n_dec_layers, dim_feedforward=c.d_ff, dropout=0.0,
            activation="gelu" if c.act == GELU else "relu", batch_first=True,
            norm_first=bool(c.norm_first), layer_norm_eps=c.norm_eps)
        if c.norm == RMSNORM:  # torch's layers call self.normN: swap in RMSNorm
            for mod in list(self.transformer.modules()):
                for name, child in list(mod.named_children()):
                    if isinstance(child, nn.LayerNorm):
                        setattr(mod, name, nn.RMSNorm(d, eps=c.norm_eps))
        self.lm_head = None if c.tie_embeddings else nn.Linear(d, c.vocab, bias=False)

    def load(self, cparams):
        own = dict(self.named_parameters())
        for name, (val, _, _) in cparams.items():
            key = name if name in own else "transformer." + name
            own[key].data.copy_(torch.from_numpy(val.copy()))
        assert len(own) == len(cparams)

    def name_of(self, cname):
        own = dict(self.named_parameters())
        return own[cname if cname in own else "transformer." + cname]

    def forward(self, b):
        c, d = self.c, self.c.d_model
        src, tgt = torch.from_numpy(b["src"]).long(), torch.from_numpy(b["tgt_in"]).long()
        S, T = src.shape[1], tgt.shape[1]
        x = self.embed(src) * math.sqrt(d)
        y = self.embed(tgt) * math.sqrt(d)
        if c.pos == LEARNED:
            x = x + self.enc_pos.weight[:S]
            y = y + self.dec_pos.weight[:T]
        else:
            x = x + sinusoid(S, d)
            y = y + sinusoid(T, d)
        pad = torch.arange(S)[None, :] >= torch.from_numpy(b["src_lens"])[:, None]
        causal = nn.Transformer.generate_square_subsequent_mask(T)
        h = self.transformer(x, y, tgt_mask=causal.to(x.dtype), src_key_padding_mask=pad,
                             memory_key_padding_mask=pad, tgt_is_causal=True)
        return F.linear(h, self.embed.weight if c.tie_embeddings else self.lm_head.weight)


class TorchLM(nn.Module):
    """A decoder-only LM written out: pre- or post-norm blocks, grouped-query attention."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        d, H, Hk = c.d_model, c.n_heads, c.n_kv_heads
        hd = d // H
        self.embed = nn.Embedding(c.vocab, d)
        if c.pos == LEARNED:
            self.dec_pos = nn.Embedding(c.max_len, d)
        norm = (lambda: nn.LayerNorm(d, eps=c.norm_eps)) if c.norm == LAYERNORM else \
            (lambda: nn.RMSNorm(d, eps=c.norm_eps))
        self.blocks = nn.ModuleList()
        for _ in range(c.n_dec_layers):
            blk = nn.Module()
            blk.q = nn.Parameter(torch.zeros(H * hd, d))
            blk.k = nn.Parameter(torch.zeros(Hk * hd, d))
            blk.v = nn.Parameter(torch.zeros(Hk * hd, d))
            blk.bias = nn.Parameter(torch.zeros((H + 2 * Hk) * hd))
            blk.out = nn.Linear(H * hd, d)
            blk.linear1 = nn.Linear(d, c.d_ff)
            blk.linear2 = nn.Linear(c.d_ff, d)
            blk.norm1, blk.norm2 = norm(), norm()
            self.blocks.append(blk)
        self.norm = norm()
        self.lm_head = None if c.tie_embeddings else nn.Linear(d, c.vocab, bias=False)

    def param(self, cname):
        if cname.startswith("layers."):
            _, l, rest = cname.split(".", 2)
            blk = self.blocks[int(l)]
            table = {"self_attn.q_proj_weight": blk.q, "self_attn.k_proj_weight": blk.k,
                     "self_attn.v_proj_weight": blk.v, "self_attn.in_proj_bias": blk.bias,
                     "self_attn.out_proj.weight": blk.out.weight,
                     "self_attn.out_proj.bias": blk.out.bias}
            if rest in table:
                return table[rest]
            mod, what = rest.split(".")
            return getattr(getattr(blk, mod), what)
        return dict(self.named_parameters())[cname]

    def load(self, cparams):
        for name, (val, _, _) in cparams.items():
            self.param(name).data.copy_(torch.from_numpy(val.copy()))

    def forward(self, b):
        c, d = self.c, self.c.d_model
        H, Hk = c.n_heads, c.n_kv_heads
        hd = d // H
        tgt = torch.from_numpy(b["tgt_in"]).long()
        B, T = tgt.shape
        x = self.embed(tgt) * math.sqrt(d)
        if c.pos == LEARNED:
            x = x + self.dec_pos.weight[:T]
        elif c.pos == SINUSOIDAL:
            x = x + sinusoid(T, d)
        for blk in self.blocks:
            h = blk.norm1(x) if c.norm_first else x
            bq, bk, bv = blk.bias.split([H * hd, Hk * hd, Hk * hd])
            q = F.linear(h, blk.q, bq).view(B, T, H, hd)
            k = F.linear(h, blk.k, bk).view(B, T, Hk, hd)
            v = F.linear(h, blk.v, bv).view(B, T, Hk, hd)
            if c.pos == ROPE:
                q, k = rope(q, c.rope_theta), rope(k, c.rope_theta)
            o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                               v.transpose(1, 2), is_causal=True,
                                               enable_gqa=True)
            x = x + blk.out(o.transpose(1, 2).reshape(B, T, H * hd))
            act = F.gelu if c.act == GELU else F.relu
            if c.norm_first:
                x = x + blk.linear2(act(blk.linear1(blk.norm2(x))))
            else:  # post-norm: x = norm(x + f(x))
                x = blk.norm1(x)
                x = blk.norm2(x + blk.linear2(act(blk.linear1(x))))
        h = self.norm(x)
        return F.linear(h, self.embed.weight if c.tie_embeddings else self.lm_head.weight)


# ---- the checks -------------------------------------------------------------------

def make_batch(c, rng, B=3, S=9, T=7):
    b = {}
    if c.arch == ENCDEC:
        lens = np.array([S, S - 3, 4][:B], np.int64)
        src = rng.integers(4, c.vocab, size=(B, S)).astype(np.int32)
        for i in range(B):
            src[i, lens[i]:] = 0
        b["src"], b["src_lens"] = src, lens
    tgt = rng.integers(3, c.vocab, size=(B, T + 1)).astype(np.int32)
    tgt[1, T - 2:] = 0  # padding: ignored by the loss
    b["tgt_in"], b["tgt_out"] = tgt[:, :-1].copy(), tgt[:, 1:].copy()
    return b


def config(**kw):
    c = Config()
    base = dict(arch=ENCDEC, vocab=23, d_model=32, n_heads=4, n_kv_heads=4, d_ff=48,
                n_enc_layers=2, n_dec_layers=2, max_len=16, norm_first=1, norm=LAYERNORM,
                pos=SINUSOIDAL, act=GELU, norm_eps=1e-5, dropout=0.0, attn_dropout=0.0,
                rope_theta=10000.0, tie_embeddings=0)
    base.update(kw)
    for k, v in base.items():
        setattr(c, k, v)
    return c


CASES = {
    "encdec-prenorm-sinusoidal-gelu": dict(),
    "encdec-postnorm-learned-relu": dict(norm_first=0, pos=LEARNED, act=RELU),
    "lm-rmsnorm-rope-gqa-tied": dict(arch=DECODER, n_enc_layers=0, n_kv_heads=2, norm=RMSNORM,
                                     pos=ROPE, tie_embeddings=1),
    "lm-layernorm-learned": dict(arch=DECODER, n_enc_layers=0, pos=LEARNED, n_dec_layers=3),
}


def torch_model(c):
    return TorchEncDec(c) if c.arch == ENCDEC else TorchLM(c)


def torch_param(tm, name):
    return tm.name_of(name) if isinstance(tm, TorchEncDec) else tm.param(name)


@pytest.mark.parametrize("case", list(CASES))
def test_logits_loss_gradients(case):
    c = config(**CASES[case])
    cm = CModel(c)
    try:
        rng = np.random.default_rng(3)
        b = make_batch(c, rng)
        ls = 0.1
        loss, logits = cm.step(b, ls)
        params = cm.params()
        tm = torch_model(c)
        tm.load(params)
        tl = tm(b)
        tloss = F.cross_entropy(tl.reshape(-1, c.vocab), torch.from_numpy(b["tgt_out"]).long().reshape(-1),
                                ignore_index=0, label_smoothing=ls)
        tloss.backward()
        e_logits = np.abs(logits - tl.detach().numpy()).max()
        print(f"\n{case}: max|logits| diff {e_logits:.2e}, loss {loss:.7f} vs {tloss.item():.7f}")
        assert e_logits <= 1e-4
        assert abs(loss - tloss.item()) <= 1e-5
        worst = 0.0
        for name, (_, grad, _) in params.items():
            tg = torch_param(tm, name).grad
            assert tg is not None, name
            tg = tg.numpy()
            scale = max(np.abs(tg).max(), 1e-6)
            rel = np.abs(grad - tg).max() / scale
            worst = max(worst, rel)
            assert rel <= 1e-4, f"{name}: relative gradient error {rel:.2e}"
        print(f"{case}: {len(params)} gradients, worst relative error {worst:.2e}")
    finally:
        cm.close()


@pytest.mark.parametrize("case", list(CASES))
def test_packed_batch(case):
    """The C step on a packed batch (no padding rows: each target cut at its
    last counted label, sources at their lengths, positions restarting per
    sequence) against the torch model on the padded batch."""
    c = config(**CASES[case])
    cm = CModel(c)
    try:
        b = make_batch(c, np.random.default_rng(4))
        B, T = b["tgt_in"].shape
        tgt_lens = [T, T - 2, 1]  # make_batch pads row 1's last two labels; row 2 keeps one token
        b["tgt_out"][2, 1:] = 0
        ls = 0.1
        loss, logits = cm.step_packed(b, ls, tgt_lens)
        params = cm.params()
        tm = torch_model(c)
        tm.load(params)
        tl = tm(b)
        tloss = F.cross_entropy(tl.reshape(-1, c.vocab), torch.from_numpy(b["tgt_out"]).long().reshape(-1),
                                ignore_index=0, label_smoothing=ls)
        tloss.backward()
        rows = np.concatenate([tl.detach().numpy()[i, :tgt_lens[i]] for i in range(B)])
        e_logits = np.abs(logits - rows).max()
        print(f"\n{case} packed: max|logits| diff {e_logits:.2e}, loss {loss:.7f} vs {tloss.item():.7f}")
        assert e_logits <= 1e-4
        assert abs(loss - tloss.item()) <= 1e-5
        for name, (_, grad, _) in params.items():
            tg = torch_param(tm, name).grad.numpy()
            rel = np.abs(grad - tg).max() / max(np.abs(tg).max(), 1e-6)
            assert rel <= 1e-4, f"{name}: relative gradient error {rel:.2e}"
    finally:
        cm.close()


@pytest.mark.parametrize("case", ["encdec-prenorm-sinusoidal-gelu", "lm-rmsnorm-rope-gqa-tied"])
def test_adamw_loss_curve(case):
    """10 steps of AdamW with clipping on the same batch sequence."""
    c = config(**CASES[case])
    cm = CModel(c)
    try:
        rng = np.random.default_rng(11)
        batches = [make_batch(c, rng) for _ in range(10)]
        tm = torch_model(c)
        tm.load(cm.params())
        names = list(cm.params())
        decay = [torch_param(tm, n) for n in names if cm.params()[n][2]]
        no_decay = [torch_param(tm, n) for n in names if not cm.params()[n][2]]
        lr, wd, clip = 3e-3, 0.01, 0.5
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.999), eps=1e-8)
        cl, tl = [], []
        for b in batches:
            loss, _ = cm.step(b, 0.0)
            cm.update(lr, clip, wd)
            cl.append(loss)
            opt.zero_grad()
            out = tm(b)
            t = F.cross_entropy(out.reshape(-1, c.vocab), torch.from_numpy(b["tgt_out"]).long().reshape(-1),
                                ignore_index=0)
            t.backward()
            torch.nn.utils.clip_grad_norm_(tm.parameters(), clip)
            opt.step()
            tl.append(t.item())
        diffs = np.abs(np.array(cl) - np.array(tl))
        print(f"\n{case}: attn {np.round(cl, 5)}\n{case}: torch {np.round(tl, 5)}; max diff {diffs.max():.2e}")
        assert cl[-1] < cl[0]
        assert diffs.max() <= 1e-4
    finally:
        cm.close()


def test_checkpointing_same_gradients():
    """Recomputing blocks in backward gives bitwise the same gradients."""
    c = config(dropout=0.2, attn_dropout=0.1)
    cm = CModel(c)
    try:
        b = make_batch(c, np.random.default_rng(5))
        cm.step(b, 0.0, checkpointing=0, training=1, seed=9)
        g0 = {k: v[1].copy() for k, v in cm.params().items()}
        cm.step(b, 0.0, checkpointing=1, training=1, seed=9)
        for k, v in cm.params().items():
            assert np.array_equal(v[1], g0[k]), k
    finally:
        cm.close()
