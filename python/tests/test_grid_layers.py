"""Random grids of the toolkit's layers, loss, optimiser and schedules
(attn.nn) against PyTorch float64 on the same float32 values: forward and
every gradient, with the gradients accumulated into random starting values
(the += contract). grid_util.py has the machinery (sizes, reproducers,
error measure).

Tolerances (err relative to the output's largest magnitude): float32 rows
reduced in double give ~1e-7; a product over K terms in float32 ~sqrt(K) 6e-8
(K <= 600 here: < 2e-6). A wrong index, sign, divisor or dropped element is
off by O(1) in err.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attn
import attn.nn as nn
from grid_util import (attn_dropout_keep_mask, dim, log_int, nn_dropout_keep_mask, normal,
                       philox4x32_10, run_grid, uniform)

torch.set_num_threads(1)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def mag(a):
    """The largest entry of a magnitude array (0 for an empty one)."""
    return float(np.max(a)) if np.size(a) else 0.0


def start(rng, shape):
    """A gradient buffer's starting value: zeros or small random values, so
    that backward must add (+=) into it."""
    if rng.random() < 0.5:
        return np.zeros(shape, np.float32)
    return normal(rng, shape, 1e-2)


# ---- linear and embedding -----------------------------------------------------------------

def one_linear(rng, chk):
    n, n_in, n_out = log_int(rng, 1, 300), dim(rng, 600), dim(rng, 600)
    if rng.random() < 0.03:
        n = 0
    bias = bool(rng.random() < 0.7)
    lead = (n,) if rng.random() < 0.5 else (1, n)
    threads = int(rng.integers(1, 4))
    chk.desc = dict(n=n, n_in=n_in, n_out=n_out, bias=bias, lead=lead, threads=threads)
    x, dy = normal(rng, lead + (n_in,)), normal(rng, lead + (n_out,))
    w = uniform(rng, (n_out, n_in), -1 / math.sqrt(n_in), 1 / math.sqrt(n_in))
    b = uniform(rng, (n_out,)) if bias else None
    dx0, dw0, db0 = start(rng, x.shape), start(rng, w.shape), start(rng, (n_out,))
    xt, wt = t64(x, True), t64(w, True)
    bt = t64(b, True) if bias else None
    yt = F.linear(xt, wt, bt)
    yt.backward(t64(dy))
    # the floors are the sums of |terms| (a float32 sum's error scales with them,
    # not with the result, which may cancel)
    ax, aw, ady = (np.abs(a.reshape(-1, a.shape[-1]).astype(np.float64)) for a in (x, w, dy))
    chk.close("y", nn.linear_forward(x, w, b, threads=threads), yt, 1e-5, mag(ax @ aw.T))
    dx, dw, db = nn.linear_backward(x, w, dy, dx=dx0.copy(), dw=dw0.copy(),
                                    db=db0.copy() if bias else None, need_db=bias,
                                    threads=threads)
    chk.close("dx", dx, dx0 + xt.grad.numpy(), 1e-5, mag(ady @ aw))
    chk.close("dw", dw, dw0 + wt.grad.numpy(), 1e-5, mag(ady.T @ ax))
    if bias:
        chk.close("db", db, db0 + bt.grad.numpy(), 1e-6, mag(ady.sum(0)))


def one_embedding(rng, chk):
    vocab, d, n = log_int(rng, 1, 5000), dim(rng, 300), log_int(rng, 1, 500)
    chk.desc = dict(vocab=vocab, d=d, n=n)
    table = normal(rng, (vocab, d))
    pool = rng.integers(0, vocab, size=max(1, n // 4))  # repeated ids accumulate
    ids = rng.choice(pool, size=n).astype(np.int32)
    ids[rng.random(n) < 0.1] = vocab - 1
    dy, dt0 = normal(rng, (n, d)), start(rng, (vocab, d))
    emb = torch.nn.Embedding(vocab, d, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(t64(table))
    yt = emb(torch.tensor(ids, dtype=torch.long))
    yt.backward(t64(dy))
    chk.close("y", nn.embedding_forward(ids, table), yt, 0.0)
    sums = np.abs(dt0).astype(np.float64)  # |terms| added into each table entry
    np.add.at(sums, ids, np.abs(dy))
    chk.close("dtable", nn.embedding_backward(ids, dy, vocab, dtable=dt0.copy()),
              dt0 + emb.weight.grad.numpy(), 1e-6, mag(sums))


# ---- norms ----------------------------------------------------------------------------------------

def norm_inputs(rng, chk, rms):
    n, d = log_int(rng, 1, 64), dim(rng, 1100, edges=(8, 16, 32, 64, 128, 384, 512, 1024))
    eps = float(rng.choice([1e-5, 1e-6, 1e-12, 1e-3]))
    shift = 0.0 if rms or rng.random() < 0.5 else float(rng.choice([1.0, 30.0, 300.0]))
    scale = float(rng.choice([1e-3, 1.0, 50.0]))
    chk.desc = dict(n=n, d=d, eps=eps, shift=shift, scale=scale)
    x = (normal(rng, (n, d)) * scale + shift).astype(np.float32)
    if rng.random() < 0.1:
        x[0] = shift  # a constant row: variance 0, only eps keeps rstd finite
    return x, uniform(rng, (d,), 0.5, 1.5), uniform(rng, (d,)), normal(rng, (n, d))


def norm_grad_mags(x, g, dy, rstd, xhat):
    """The magnitudes of the terms a norm's gradients sum: dx_i = rstd (g_i dy_i
    - mean(g dy) - xhat_i mean(g dy xhat)) per row, dgamma = sum_r dy xhat,
    dbeta = sum_r dy. With d = 1 or a constant row dx cancels to ~0 exactly."""
    gdy = np.abs(np.asarray(dy, np.float64) * np.asarray(g, np.float64))
    xh = np.abs(xhat.detach().numpy())
    rs = rstd.detach().numpy()[:, None]
    mag_dx = float(np.max(rs * (gdy + gdy.mean(-1, keepdims=True) +
                                xh * (gdy * xh).mean(-1, keepdims=True))))
    # xhat ~ 0 (d = 1, constant rows) leaves dgamma the rounding of x - mean: + 1e-3
    return (mag_dx, float(np.max(np.sum(np.abs(dy) * (xh + 1e-3), 0))),
            float(np.max(np.sum(np.abs(dy), 0))))


def one_layernorm(rng, chk):
    x, g, b, dy = norm_inputs(rng, chk, rms=False)
    n, d = x.shape
    eps = chk.desc["eps"]
    bias = bool(rng.random() < 0.7)
    chk.desc["bias"] = bias
    ln = torch.nn.LayerNorm(d, eps=eps, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(t64(g))
        if bias:
            ln.bias.copy_(t64(b))
    xt = t64(x, True)
    yt = ln(xt)
    yt.backward(t64(dy))
    y, mean, rstd = nn.layernorm_forward(x, g, b if bias else None, eps=eps)
    var, mu = torch.var_mean(t64(x), dim=-1, unbiased=False)
    chk.close("y", y, yt, 2e-6, 1.0)
    chk.close("mean", mean, mu, 1e-7, 1e-30)
    chk.close("rstd", rstd, 1 / torch.sqrt(var + eps), 1e-6)
    dx0, dg0, db0 = start(rng, x.shape), start(rng, (d,)), start(rng, (d,))
    dx, dg, db = nn.layernorm_backward(x, g, mean, rstd, dy, dx=dx0.copy(), dgamma=dg0.copy(),
                                       dbeta=db0.copy())
    # backward gets mean and rstd as float32: when |mean| >> the spread, the
    # rounding of mean moves xhat by |mean| 2^-24 / spread (shift 300, scale 1e-3: 2%)
    tol = 1e-5 + 4 * abs(chk.desc["shift"]) / chk.desc["scale"] * 2 ** -24
    xhat = (t64(x) - mu[:, None]) / torch.sqrt(var + eps)[:, None]
    mag_dx, mag_dg, mag_db = norm_grad_mags(x, g, dy, 1 / torch.sqrt(var + eps), xhat)
    chk.close("dx", dx, dx0 + xt.grad.numpy(), tol, mag_dx)
    chk.close("dgamma", dg, dg0 + ln.weight.grad.numpy(), tol, mag_dg)
    if bias:
        chk.close("dbeta", db, db0 + ln.bias.grad.numpy(), 1e-6, mag_db)


def one_rmsnorm(rng, chk):
    x, g, _, dy = norm_inputs(rng, chk, rms=True)
    n, d = x.shape
    eps = chk.desc["eps"]
    rms = torch.nn.RMSNorm(d, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        rms.weight.copy_(t64(g))
    xt = t64(x, True)
    yt = rms(xt)
    yt.backward(t64(dy))
    y, rstd = nn.rmsnorm_forward(x, g, eps=eps)
    chk.close("y", y, yt, 2e-6, 1.0)
    chk.close("rstd", rstd, torch.rsqrt(t64(x).pow(2).mean(-1) + eps), 1e-6)
    dx0, dg0 = start(rng, x.shape), start(rng, (d,))
    dx, dg = nn.rmsnorm_backward(x, g, rstd, dy, dx=dx0.copy(), dgamma=dg0.copy())
    rs = torch.rsqrt(t64(x).pow(2).mean(-1) + eps)
    mag_dx, mag_dg, _ = norm_grad_mags(x, g, dy, rs, t64(x) * rs[:, None])
    chk.close("dx", dx, dx0 + xt.grad.numpy(), 1e-5, mag_dx)
    chk.close("dgamma", dg, dg0 + rms.weight.grad.numpy(), 1e-5, mag_dg)


# ---- activations and the feed-forward block ---------------------------------------------------------

def one_act(rng, chk):
    kind = str(rng.choice(["gelu", "relu"]))
    count = log_int(rng, 1, 5000)
    span = float(rng.choice([1.0, 6.0, 20.0]))
    chk.desc = dict(kind=kind, count=count, span=span)
    x = uniform(rng, (count,), -span, span)
    x[rng.random(count) < 0.05] = 0.0
    dy, dx0 = normal(rng, (count,)), start(rng, (count,))
    mod = torch.nn.GELU(approximate="none") if kind == "gelu" else torch.nn.ReLU()
    xt = t64(x, True)
    yt = mod(xt)
    yt.backward(t64(dy))
    chk.close("y", nn.act_forward(x, kind), yt, 1e-6, 1.0)
    chk.close("dx", nn.act_backward(x, dy, kind, dx=dx0.copy()), dx0 + xt.grad.numpy(), 1e-6,
              1.0)


def one_ffn(rng, chk):
    """linear -> GELU/ReLU -> linear (the models' feed-forward block), composed
    from attn.nn calls, against torch.nn.Sequential: output and every gradient."""
    n, d, d_ff = log_int(rng, 1, 200), dim(rng, 256), dim(rng, 600)
    kind = str(rng.choice(["gelu", "relu"]))
    chk.desc = dict(n=n, d=d, d_ff=d_ff, act=kind)
    x, dy = normal(rng, (n, d)), normal(rng, (n, d))
    w1, b1 = uniform(rng, (d_ff, d), -d ** -0.5, d ** -0.5), uniform(rng, (d_ff,), -0.1, 0.1)
    w2, b2 = uniform(rng, (d, d_ff), -d_ff ** -0.5, d_ff ** -0.5), uniform(rng, (d,), -0.1, 0.1)
    seq = torch.nn.Sequential(torch.nn.Linear(d, d_ff), torch.nn.GELU() if kind == "gelu"
                              else torch.nn.ReLU(), torch.nn.Linear(d_ff, d)).double()
    with torch.no_grad():
        for p, v in zip(seq.parameters(), (w1, b1, w2, b2)):
            p.copy_(t64(v))
    xt = t64(x, True)
    yt = seq(xt)
    yt.backward(t64(dy))
    u = nn.linear_forward(x, w1, b1)
    a = nn.act_forward(u, kind)
    y = nn.linear_forward(a, w2, b2)
    da, dw2, db2 = nn.linear_backward(a, w2, dy)
    du = nn.act_backward(u, da, kind)
    dx, dw1, db1 = nn.linear_backward(x, w1, du)
    chk.close("y", y, yt, 5e-6, 1e-3)
    for what, got, p in (("dx", dx, xt), ("dw1", dw1, seq[0].weight), ("db1", db1, seq[0].bias),
                         ("dw2", dw2, seq[2].weight), ("db2", db2, seq[2].bias)):
        chk.close(what, got, p.grad, 2e-5, 1e-6)


# ---- positions ---------------------------------------------------------------------------------------

def torch_rope(x, pos, theta):
    """Rotate-half RoPE on x [n, heads, hd]: the pair (i, i + hd/2) turns by
    pos * theta^(-2i/hd)."""
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.as_tensor(pos, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    rot = torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    return x * cos + rot * sin


def one_rope(rng, chk):
    n, heads = log_int(rng, 1, 300), log_int(rng, 1, 16)
    hd = 2 * dim(rng, 128, edges=(4, 8, 16, 32, 64, 128))
    theta = float(rng.choice([10000.0, 500000.0, 1e6, 100.0]))
    pos = rng.integers(0, 8192, size=n) if rng.random() < 0.5 else \
        np.arange(n) + int(rng.integers(0, 4096))
    pos = pos.astype(np.int32)
    chk.desc = dict(n=n, heads=heads, hd=hd, theta=theta, max_pos=int(pos.max()))
    x, dy, dx0 = normal(rng, (n, heads, hd)), normal(rng, (n, heads, hd)), \
        start(rng, (n, heads, hd))
    xt = t64(x, True)
    yt = torch_rope(xt, pos, theta)
    yt.backward(t64(dy))
    # angles up to 8192 rad in double, then cos/sin rounded to float: ~1e-7
    chk.close("y", nn.rope_forward(x, pos, theta), yt, 1e-6, 1.0)
    chk.close("dx", nn.rope_backward(dy, pos, theta, dx=dx0.copy()), dx0 + xt.grad.numpy(),
              1e-6, 1.0)


def one_sinusoidal(rng, chk):
    n_pos, d = log_int(rng, 1, 2048), dim(rng, 1024)
    chk.desc = dict(n_pos=n_pos, d=d)
    p = torch.arange(n_pos, dtype=torch.float64)[:, None]
    c = torch.arange(d)
    freq = torch.pow(10000.0, -(c - c % 2).to(torch.float64) / d)
    ang = p * freq[None, :]
    ref = torch.where(c % 2 == 0, torch.sin(ang), torch.cos(ang))
    chk.close("table", nn.sinusoidal(n_pos, d), ref, 1e-6, 1.0)


# ---- dropout -------------------------------------------------------------------------------------------

def one_dropout(rng, chk):
    count = log_int(rng, 1, 20000)
    p = float(rng.choice([0.0, 1e-3, 0.1, 0.5, 0.9, float(rng.uniform(0, 0.99))]))
    seed = int(rng.integers(0, 2 ** 63)) * 2 + int(rng.integers(0, 2))
    offset = [0, int(rng.integers(0, 2 ** 40)), 2 ** 64 - int(rng.integers(1, 64))][
        int(rng.integers(0, 3))]  # the last wraps around 2^64 within the call
    chk.desc = dict(count=count, p=p, seed=seed, offset=offset)
    keep = nn_dropout_keep_mask(seed, offset, p, count)
    x, dy, dx0 = normal(rng, (count,)), normal(rng, (count,)), start(rng, (count,))
    xt = t64(x, True)
    yt = xt * t64(keep) / (1 - p)
    yt.backward(t64(dy))
    chk.close("y", nn.dropout_forward(x, p, seed, offset), yt, 2.5e-7, 1.0)
    chk.close("dx", nn.dropout_backward(dy, p, seed, offset, dx=dx0.copy()),
              dx0 + xt.grad.numpy(), 2.5e-7, 1.0)
    for e in rng.integers(0, count, size=4):
        chk.equal("dropout_keep(e=%d)" % e, nn.dropout_keep(seed, offset, p, int(e)),
                  bool(keep[e]))
    if count >= 1000 and 0 < p < 1:  # the keep rate, within 6 sigma
        sd = math.sqrt(count * p * (1 - p))
        chk.true("keep count %d vs %.1f +- 6 * %.1f" % (keep.sum(), count * (1 - p), sd),
                 abs(keep.sum() - count * (1 - p)) <= 6 * sd + 1)


def test_philox_and_attention_keep_rule_in_numpy():
    """The numpy Philox and the core's keep rule that the grids use as oracles
    agree with the library (whose Philox has known-answer tests)."""
    rng = np.random.default_rng(0)
    ctr = rng.integers(0, 2 ** 32, size=(4, 50), dtype=np.uint64)
    key = rng.integers(0, 2 ** 32, size=(2, 50), dtype=np.uint64)
    words = np.stack(philox4x32_10(tuple(ctr), tuple(key)), axis=1)
    for c in range(50):
        assert tuple(words[c]) == attn.philox4x32_10(ctr[:, c], key[:, c])
    for seed, offset, p in ((1, 0, 0.5), (2 ** 63 + 5, 2 ** 40 + 3, 0.17), (7, 2 ** 64 - 1, 0.9)):
        assert np.array_equal(attn_dropout_keep_mask(seed, offset, p, 2, 3, 5, 9),
                              attn.dropout_mask(seed, offset, p, 2, 3, 5, 9))


# ---- cross-entropy ---------------------------------------------------------------------------------------

def one_cross_entropy(rng, chk):
    n, vocab = log_int(rng, 1, 200), log_int(rng, 1, 3000)
    ls = float(rng.choice([0.0, 0.1, float(rng.uniform(0, 1)), 1.0]))
    ignore = int(rng.choice([-100, 0, int(rng.integers(0, vocab))]))
    span = float(rng.choice([1e-3, 3.0, 30.0]))
    scale = float(rng.choice([1.0, 0.5, float(rng.uniform(-4, 4))]))
    chk.desc = dict(n=n, vocab=vocab, ls=ls, ignore=ignore, span=span, grad_scale=scale)
    z = uniform(rng, (n, vocab), -span, span)
    t = rng.integers(0, vocab, size=n).astype(np.int32)
    t[rng.random(n) < float(rng.choice([0.0, 0.2, 1.0]))] = ignore
    loss, count, dz = nn.cross_entropy(z, t, ignore_index=ignore, label_smoothing=ls,
                                       grad_scale=scale)
    counted = int(np.sum(t != ignore))
    chk.equal("count", count, counted)
    if counted == 0:  # torch's mean over no rows is NaN; attn gives 0 and no gradient
        chk.equal("loss (no row counted)", loss, 0.0)
        chk.equal("dlogits (no row counted)", dz, np.zeros_like(z))
        return
    zt = t64(z, True)
    lt = F.cross_entropy(zt, torch.tensor(t, dtype=torch.long), ignore_index=ignore,
                         label_smoothing=ls, reduction="mean")
    lt.backward()
    chk.close("loss", np.array(loss), lt, 1e-12, 1.0)
    chk.close("dlogits", dz, zt.grad * scale, 1e-6)


# ---- optimisation ----------------------------------------------------------------------------------------

def one_adamw(rng, chk):
    count, steps = log_int(rng, 1, 5000), log_int(rng, 1, 20)
    lr = float(rng.choice([1e-3, 3e-2, float(10 ** rng.uniform(-5, -1))]))
    betas = (float(rng.choice([0.9, 0.8, float(rng.uniform(0, 0.99))])),
             float(rng.choice([0.999, 0.98, float(rng.uniform(0.5, 0.9999))])))
    eps = float(rng.choice([1e-8, 1e-6, 1e-3]))
    wd = float(rng.choice([0.0, 1e-2, 0.1]))
    decay = bool(rng.random() < 0.7)
    gscale = float(rng.choice([1e-4, 1.0, 100.0]))
    chk.desc = dict(count=count, steps=steps, lr=lr, betas=betas, eps=eps, wd=wd, decay=decay,
                    gscale=gscale)
    p0 = normal(rng, (count,))
    grads = [normal(rng, (count,), gscale) for _ in range(steps)]
    pt = t64(p0, True)
    opt = torch.optim.AdamW([pt], lr=lr, betas=betas, eps=eps, weight_decay=wd if decay else 0.0)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for s, g in enumerate(grads, start=1):
        pt.grad = t64(g)
        opt.step()
        nn.adamw_step(p, g, m, v, s, lr=lr, betas=betas, eps=eps, weight_decay=wd, decay=decay)
    # float32 updates: each step's error ~ lr * 1e-6, relative to max|p| ~ 3
    chk.close("param", p, pt, 2e-6 * steps, 1.0)
    chk.close("m", m, opt.state[pt]["exp_avg"], 1e-6 * steps)
    chk.close("v", v, opt.state[pt]["exp_avg_sq"], 1e-6 * steps)


def one_clip(rng, chk):
    k = log_int(rng, 1, 6)
    grads = [normal(rng, (int(c),), float(rng.choice([1e-3, 1.0, 10.0])))
             for c in rng.integers(0, 2000, size=k)]
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    max_norm = float(rng.choice([max(total, 1e-3) * rng.uniform(0.01, 0.99),
                                 max(total, 1e-3) * rng.uniform(1.01, 10), 1.0]))
    chk.desc = dict(sizes=[g.size for g in grads], max_norm=max_norm, norm=total)
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = t64(g)
    nt = torch.nn.utils.clip_grad_norm_(params, max_norm)
    mine = [g.copy() for g in grads]
    norm = nn.clip_grad_norm(mine, max_norm)
    chk.close("norm", np.array(norm), nt, 1e-12)
    chk.close("grads", np.concatenate(mine + [np.zeros(0, np.float32)]),
              torch.cat([p.grad for p in params] + [torch.zeros(0, dtype=torch.float64)]),
              2e-7)


def one_lr(rng, chk):
    """Every step of a schedule against torch's schedulers (LinearLR warm-up,
    then ConstantLR / CosineAnnealingLR), or the documented inverse square root."""
    kind = str(rng.choice(["constant", "cosine", "invsqrt"]))
    warmup = int(rng.choice([0, 1, 2, int(rng.integers(3, 200))]))
    total = int(rng.choice([warmup, warmup + int(rng.integers(1, 500)), max(1, warmup // 2)]))
    base = float(10 ** rng.uniform(-5, 0))
    lo = float(rng.choice([0.0, base * rng.uniform(0, 0.5)]))
    chk.desc = dict(kind=kind, warmup=warmup, total=total, base=base, min=lo)
    steps = range(1, max(total, warmup) + 40)
    got = np.array([nn.lr(kind, s, warmup, total, base, lo) for s in steps])
    ref = np.zeros(len(got))
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(sgd, start_factor=1 / warmup, end_factor=1.0,
                                             total_iters=warmup - 1) if warmup > 1 else None
    sgd2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    span = total - warmup
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(sgd2, T_max=span, eta_min=lo) \
        if kind == "cosine" and span > 0 else None
    if cos is not None and warmup == 0:  # no warm-up: step s is torch epoch s
        sgd2.step()
        cos.step()
    for x, s in enumerate(steps):
        if s < warmup:  # torch epoch e is our step e + 1
            ref[x] = warm.get_last_lr()[0]
            sgd.step()
            warm.step()
        elif kind == "constant":
            ref[x] = base
        elif kind == "invsqrt":
            ref[x] = base * math.sqrt(max(warmup, 1) / s)
        elif cos is not None and s <= total:  # torch epoch e is our step warmup + e
            ref[x] = cos.get_last_lr()[0]
            sgd2.step()
            cos.step()
        elif s == warmup:  # no cosine span: the warm-up's last step is base_lr, then min_lr
            ref[x] = base
        else:  # past total: min_lr
            ref[x] = lo
    chk.close("lr", got, ref, 1e-9)


# ---- the grid tests --------------------------------------------------------------------------------------

GRIDS = {  # name: (first seed, weight, one)
    "linear": (1_000_000, 1.0, one_linear),
    "embedding": (1_100_000, 1.0, one_embedding),
    "layernorm": (1_200_000, 1.0, one_layernorm),
    "rmsnorm": (1_300_000, 1.0, one_rmsnorm),
    "act": (1_400_000, 1.0, one_act),
    "ffn": (1_500_000, 1.0, one_ffn),
    "rope": (1_600_000, 1.0, one_rope),
    "sinusoidal": (1_700_000, 0.5, one_sinusoidal),
    "dropout": (1_800_000, 1.0, one_dropout),
    "cross_entropy": (1_900_000, 1.0, one_cross_entropy),
    "adamw": (2_000_000, 1.0, one_adamw),
    "clip": (2_100_000, 1.0, one_clip),
    "lr": (2_200_000, 1.0, one_lr),
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_grid(request, name):
    base, weight, one = GRIDS[name]
    run_grid(request, name, base, weight, one)
