"""attn.nn layers, loss and optimiser against PyTorch (CPU) as the oracle.

Every case draws float32 inputs with a fixed seed, runs attn.nn on them, and
runs the PyTorch module or function (torch.nn.Linear, Embedding, LayerNorm,
RMSNorm, GELU(approximate="none"), ReLU, a rotate-half RoPE written here,
F.cross_entropy, torch.optim.AdamW, clip_grad_norm_, and the usual sinusoidal
table) in float64 on the same values, upcast, with autograd for gradients.
Pass rule: max|attn - torch| <= RTOL * max|torch| + ATOL per output.
The largest error of each layer output is printed at the end of the session.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attn
import attn.nn as nn

torch.set_num_threads(1)

RTOL = 1e-5
ATOL = 1e-7


# ---- the per-layer error report --------------------------------------------------------

class _LayerReport:
    """Largest max|attn - torch| per layer output, printed in the terminal summary."""

    def __init__(self):
        self.worst = {}

    def record(self, what, err, scale):
        old = self.worst.get(what, (0.0, 0.0))
        rel = err / max(scale, 1.0)
        self.worst[what] = (max(old[0], err), max(old[1], rel))

    def pytest_terminal_summary(self, terminalreporter):
        if not self.worst:
            return
        terminalreporter.write_line(
            "attn.nn vs PyTorch float64: largest max|attn - torch| per output "
            "(and that / max(1, max|torch|)):")
        for what in sorted(self.worst):
            err, rel = self.worst[what]
            terminalreporter.write_line("  %-28s %.3g  (%.3g)" % (what, err, rel))


_REPORT = _LayerReport()


@pytest.fixture(scope="session", autouse=True)
def nn_layer_report(request):
    pm = request.config.pluginmanager
    if not pm.is_registered(_REPORT):
        pm.register(_REPORT, "attn_nn_layer_report")
    return _REPORT


def check(what, got, want, rtol=RTOL, atol=ATOL):
    """Compares an attn float32 result with a torch float64 reference."""
    if isinstance(want, torch.Tensor):
        want = want.detach().cpu().numpy()
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, "%s: shape %s vs %s" % (what, got.shape, want.shape)
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    _REPORT.record(what, err, scale)
    assert err <= rtol * scale + atol, "%s: max err %.3g > %.1g * %.3g + %.1g" % (
        what, err, rtol, scale, atol)


def rnd(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- linear and embedding ------------------------------------------------------------------

@pytest.mark.parametrize("n,n_in,n_out,bias", [(1, 1, 1, True), (7, 33, 5, True),
                                                (64, 96, 128, True), (16, 17, 9, False),
                                                (3, 256, 1000, True)])
def test_linear(n, n_in, n_out, bias):
    rng = np.random.default_rng(n * 1000 + n_in + n_out)
    x, dy = rnd(rng, 2, n, n_in), rnd(rng, 2, n, n_out)
    lin = torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64)
    w = rnd(rng, n_out, n_in)
    b = rnd(rng, n_out) if bias else None
    with torch.no_grad():
        lin.weight.copy_(t64(w))
        if bias:
            lin.bias.copy_(t64(b))
    xt = t64(x, grad=True)
    yt = lin(xt)
    yt.backward(t64(dy))

    check("linear.y", nn.linear_forward(x, w, b), yt)
    dx, dw, db = nn.linear_backward(x, w, dy, need_db=bias)
    check("linear.dx", dx, xt.grad)
    check("linear.dw", dw, lin.weight.grad)
    if bias:
        check("linear.db", db, lin.bias.grad)
    # the gradients accumulate
    dx2, dw2, _ = nn.linear_backward(x, w, dy, dx=dx.copy(), dw=dw.copy(), need_db=False)
    check("linear.dx(+=)", dx2, 2 * xt.grad)
    check("linear.dw(+=)", dw2, 2 * lin.weight.grad)


@pytest.mark.parametrize("kernel", ["auto", "avx2", "tiled"])
def test_linear_kernels_and_threads(kernel):
    """Each GEMM path against torch; 1, 2 and 3 threads give the same bits."""
    rng = np.random.default_rng(99)
    n, n_in, n_out = 301, 130, 99
    x, dy, w, b = rnd(rng, n, n_in), rnd(rng, n, n_out), rnd(rng, n_out, n_in), rnd(rng, n_out)
    lin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(t64(w))
        lin.bias.copy_(t64(b))
    xt = t64(x, grad=True)
    yt = lin(xt)
    yt.backward(t64(dy))
    first = None
    for threads in (1, 2, 3):
        y = nn.linear_forward(x, w, b, threads=threads, kernel=kernel)
        dx, dw, db = nn.linear_backward(x, w, dy, threads=threads, kernel=kernel)
        check("linear.y", y, yt)
        check("linear.dx", dx, xt.grad)
        check("linear.dw", dw, lin.weight.grad)
        if first is None:
            first = (y, dx, dw, db)
        for got, want in zip((y, dx, dw, db), first):
            assert np.array_equal(got, want)


def test_embedding():
    rng = np.random.default_rng(5)
    vocab, d = 50, 24
    table = rnd(rng, vocab, d)
    ids = rng.integers(0, vocab, size=(3, 40)).astype(np.int32)
    ids[0, :5] = 7  # repeated ids accumulate
    dy = rnd(rng, 3, 40, d)
    emb = torch.nn.Embedding(vocab, d, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(t64(table))
    yt = emb(torch.tensor(ids, dtype=torch.long))
    yt.backward(t64(dy))
    check("embedding.y", nn.embedding_forward(ids, table), yt)
    check("embedding.dtable", nn.embedding_backward(ids, dy, vocab), emb.weight.grad)
    bad = ids.copy()
    bad[1, 3] = vocab
    with pytest.raises(attn.AttnError) as e:
        nn.embedding_forward(bad, table)
    assert e.value.name == "ATTN_BAD_PARAM" and "ids[43]" in e.value.message


# ---- norms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,bias,shift", [(1, True, 0.0), (32, True, 0.0), (384, True, 3.0),
                                          (77, False, 0.0), (512, True, 100.0)])
def test_layernorm(d, bias, shift):
    rng = np.random.default_rng(d)
    x = rnd(rng, 4, 9, d, lo=-2 + shift, hi=2 + shift)
    g, b, dy = rnd(rng, d, lo=0.5, hi=1.5), rnd(rng, d), rnd(rng, 4, 9, d)
    ln = torch.nn.LayerNorm(d, eps=1e-5, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(t64(g))
        if bias:
            ln.bias.copy_(t64(b))
    xt = t64(x, grad=True)
    yt = ln(xt)
    yt.backward(t64(dy))

    y, mean, rstd = nn.layernorm_forward(x, g, b if bias else None, eps=1e-5)
    check("layernorm.y", y, yt)
    var, mu = torch.var_mean(t64(x), dim=-1, unbiased=False)
    check("layernorm.mean", mean, mu)
    check("layernorm.rstd", rstd, 1 / torch.sqrt(var + 1e-5))
    dx, dg, db = nn.layernorm_backward(x, g, mean, rstd, dy)
    check("layernorm.dx", dx, xt.grad)
    check("layernorm.dgamma", dg, ln.weight.grad)
    if bias:
        check("layernorm.dbeta", db, ln.bias.grad)


@pytest.mark.parametrize("d,eps", [(1, 1e-6), (64, 1e-6), (300, 1e-5), (1024, 1e-8)])
def test_rmsnorm(d, eps):
    rng = np.random.default_rng(d + 7)
    x, g, dy = rnd(rng, 5, 7, d, lo=-3, hi=3), rnd(rng, d, lo=0.5, hi=1.5), rnd(rng, 5, 7, d)
    rms = torch.nn.RMSNorm(d, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        rms.weight.copy_(t64(g))
    xt = t64(x, grad=True)
    yt = rms(xt)
    yt.backward(t64(dy))
    y, rstd = nn.rmsnorm_forward(x, g, eps=eps)
    check("rmsnorm.y", y, yt)
    check("rmsnorm.rstd", rstd, torch.rsqrt(t64(x).pow(2).mean(-1) + eps))
    dx, dg = nn.rmsnorm_backward(x, g, rstd, dy)
    check("rmsnorm.dx", dx, xt.grad)
    check("rmsnorm.dgamma", dg, rms.weight.grad)


# ---- activations and dropout ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gelu", "relu"])
def test_activation(kind):
    rng = np.random.default_rng(3)
    x = rnd(rng, 6, 1001, lo=-6, hi=6)
    x[0, :6] = [-12.0, -8.5, -3e-4, 0.0, 2e-4, 9.0]
    dy = rnd(rng, 6, 1001)
    mod = torch.nn.GELU(approximate="none") if kind == "gelu" else torch.nn.ReLU()
    xt = t64(x, grad=True)
    yt = mod(xt)
    yt.backward(t64(dy))
    y = nn.act_forward(x, kind)
    check(kind + ".y", y, yt)
    if kind == "gelu":
        # the far negative tail is tiny but relatively exact: against x/2 erfc(-x/sqrt2)
        # in float64 (torch's x/2 (1 + erf(x/sqrt2)) cancels to 0 there, even in float64)
        tail = x < -4
        xs = t64(x[tail])
        ref = (0.5 * xs * torch.special.erfc(-xs / math.sqrt(2))).numpy()
        assert np.all(np.abs(y[tail] - ref) <= 1e-5 * np.abs(ref))
    check(kind + ".dx", nn.act_backward(x, dy, kind), xt.grad)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_dropout(p):
    rng = np.random.default_rng(11)
    x, dy = rnd(rng, 30, 70), rnd(rng, 30, 70)
    seed, offset = 0xC0FFEE1234, 12345
    mask = nn.dropout_mask(x.shape, p, seed, offset)
    flat = mask.reshape(-1)
    assert all(flat[e] == nn.dropout_keep(seed, offset, p, e) for e in range(0, flat.size, 97))
    xt = t64(x, grad=True)
    yt = xt * t64(mask) / (1 - p)
    yt.backward(t64(dy))
    check("dropout.y", nn.dropout_forward(x, p, seed, offset), yt)
    check("dropout.dx", nn.dropout_backward(dy, p, seed, offset), xt.grad)
    if p == 0:
        assert mask.all()
    else:  # 6 sigma over 2100 draws
        sd = math.sqrt(flat.size * p * (1 - p))
        assert abs(flat.sum() - flat.size * (1 - p)) <= 6 * sd


# ---- positions ----------------------------------------------------------------------------------

def torch_rope(x, pos, theta):
    """Rotate-half RoPE: pairs (i, i + hd/2) rotated by pos * theta^(-2i/hd)."""
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = pos.to(torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    rot = torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    return x * cos + rot * sin


@pytest.mark.parametrize("heads,hd,theta", [(1, 2, 10000.0), (4, 64, 10000.0),
                                            (3, 18, 500.0), (2, 128, 1e6)])
def test_rope(heads, hd, theta):
    rng = np.random.default_rng(hd)
    n = 40
    x, dy = rnd(rng, n, heads, hd), rnd(rng, n, heads, hd)
    pos = rng.integers(0, 4096, size=n).astype(np.int32)
    pos[0] = 0
    xt = t64(x, grad=True)
    yt = torch_rope(xt, torch.tensor(pos), theta)
    yt.backward(t64(dy))
    check("rope.y", nn.rope_forward(x, pos, theta), yt)
    check("rope.dx", nn.rope_backward(dy, pos, theta), xt.grad)
    with pytest.raises(attn.AttnError) as e:
        nn.rope_forward(rnd(rng, 2, 1, 5), [0, 1])
    assert e.value.name == "ATTN_BAD_DIM" and "'hd'" in e.value.message


def test_sinusoidal():
    n_pos, d = 200, 64  # the PyTorch tutorial's PositionalEncoding, in float64
    position = torch.arange(n_pos, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(n_pos, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    check("sinusoidal", nn.sinusoidal(n_pos, d), pe)


# ---- cross-entropy --------------------------------------------------------------------------------

@pytest.mark.parametrize("ls,ignore,scale", [(0.0, -100, 1.0), (0.1, -100, 1.0),
                                             (0.2, 0, 0.5), (0.0, 3, 4.0)])
def test_cross_entropy(ls, ignore, scale):
    rng = np.random.default_rng(int(ls * 10) + 100)
    n, vocab = 37, 301
    z = rnd(rng, n, vocab, lo=-8, hi=8)
    t = rng.integers(0, vocab, size=n).astype(np.int32)
    t[::5] = ignore
    zt = t64(z, grad=True)
    loss_t = F.cross_entropy(zt, torch.tensor(t, dtype=torch.long), ignore_index=ignore,
                             label_smoothing=ls, reduction="mean")
    loss_t.backward()
    loss, count, dz = nn.cross_entropy(z, t, ignore_index=ignore, label_smoothing=ls,
                                       grad_scale=scale)
    assert count == int(np.sum(t != ignore))
    check("cross_entropy.loss", np.array(loss), loss_t, rtol=1e-12, atol=0.0)
    check("cross_entropy.dlogits", dz, zt.grad * scale)


# ---- optimisation ----------------------------------------------------------------------------------

def test_adamw_two_groups_10_steps():
    rng = np.random.default_rng(21)
    w0, b0 = rnd(rng, 8, 12), rnd(rng, 12)
    grads = [(rnd(rng, 8, 12, lo=-2, hi=2), rnd(rng, 12, lo=-1e-3, hi=1e-3)) for _ in range(10)]
    lr, betas, eps, wd = 3e-2, (0.85, 0.98), 1e-8, 0.1
    wt, bt = t64(w0, grad=True), t64(b0, grad=True)
    opt = torch.optim.AdamW([{"params": [wt], "weight_decay": wd},
                             {"params": [bt], "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    w, b = w0.copy(), b0.copy()
    mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for step, (gw, gb) in enumerate(grads, start=1):
        wt.grad, bt.grad = t64(gw), t64(gb)
        opt.step()
        nn.adamw_step(w, gw, mw, vw, step, lr=lr, betas=betas, eps=eps, weight_decay=wd)
        nn.adamw_step(b, gb, mb, vb, step, lr=lr, betas=betas, eps=eps, weight_decay=wd,
                      decay=False)
        check("adamw.param(decay)", w, wt)
        check("adamw.param(no decay)", b, bt)
    check("adamw.m", mw, opt.state[wt]["exp_avg"])
    check("adamw.v", vw, opt.state[wt]["exp_avg_sq"])
    d = nn.adamw_default()
    ref = torch.optim.AdamW([torch.zeros(1)]).defaults
    assert (d.lr, (d.beta1, d.beta2), d.eps, d.weight_decay) == (
        ref["lr"], ref["betas"], ref["eps"], ref["weight_decay"])


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm(max_norm):
    rng = np.random.default_rng(31)
    grads = [rnd(rng, 10, 7), rnd(rng, 3), rnd(rng, 1, 1, 5)]
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = t64(g)
    norm_t = torch.nn.utils.clip_grad_norm_(params, max_norm)
    mine = [g.copy() for g in grads]
    norm = nn.clip_grad_norm(mine, max_norm)
    check("clip.norm", np.array(norm), norm_t)
    for g, p in zip(mine, params):
        check("clip.grads", g, p.grad)
    if max_norm >= norm:
        assert all(np.array_equal(a, b) for a, b in zip(mine, grads))


def test_lr_schedules_match_torch_schedulers():
    base, lo, warmup, total = 1e-3, 1e-5, 10, 60
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(sgd, start_factor=1 / warmup, end_factor=1.0,
                                             total_iters=warmup - 1)
    for step in range(1, warmup + 1):  # torch epoch e is our step e + 1
        got = nn.lr("cosine", step, warmup, total, base, lo)
        assert abs(got - warm.get_last_lr()[0]) <= 1e-12 * base
        sgd.step()
        warm.step()
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, T_max=total - warmup, eta_min=lo)
    for step in range(warmup, total + 1):  # torch epoch e is our step warmup + e
        got = nn.lr("cosine", step, warmup, total, base, lo)
        assert abs(got - cos.get_last_lr()[0]) <= 1e-9 * base
        sgd.step()
        cos.step()
    assert nn.lr("cosine", total + 5, warmup, total, base, lo) == lo
    assert nn.lr("invsqrt", 4 * warmup, warmup, total, base) == pytest.approx(base / 2)
    with pytest.raises(attn.AttnError):
        nn.lr("constant", 0, warmup, total, base)
