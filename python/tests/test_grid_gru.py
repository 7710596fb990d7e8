"""Random grids of the GRU layer (attn_nn_gru_forward / backward) against
torch.nn.GRU(batch_first=True) with pack_padded_sequence, and of the GRU
cell (attn_nn_gru_cell_*) against torch.nn.GRUCell, in float64 on the same
float32 values: forward, final states and every gradient (inputs, initial
state, each weight and bias, accumulated into random starting values).

Layer: one- and bidirectional, input sizes 1-64, hidden 1-128, batch 1-8,
1-100 steps, lengths 0..T per row (a row of length 0 is torch's missing
case: its output is 0 and its final state is h0, worked out here), h0 given
or zeros, d_out or d_h_n left out (NULL), biases or none, 1-3 threads.
Cell: input size 0-64, either bias alone (the cell written out in torch,
checked against torch.nn.GRUCell where both or none are given), dx / dh /
parameter gradients not asked for (NULL).
"""
import ctypes as C

import numpy as np
import torch
import torch.nn as tnn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import attn
import attn.nn
from attn._lib.core import context
from grid_util import dim, log_int, normal, run_grid, uniform
from test_gru import Cell, Gru, Saved

torch.set_num_threads(1)

FP = C.POINTER(C.c_float)
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def fp(a):
    return None if a is None else a.ctypes.data_as(FP)


def _lib():
    L = attn.nn.lib
    P = C.c_void_p  # the attn_ctx
    L.attn_nn_gru_forward.argtypes = [P, C.POINTER(Gru), FP, C.c_int64, C.c_int64,
                                      C.POINTER(C.c_int64), FP, FP, FP, C.POINTER(Saved)]
    L.attn_nn_gru_backward.argtypes = [P, C.POINTER(Gru), FP, C.POINTER(C.c_int64),
                                       C.POINTER(Saved), FP, FP, FP, FP]
    L.attn_nn_gru_saved_free.argtypes = [C.POINTER(Saved)]
    L.attn_nn_gru_cell_forward.argtypes = [P, C.POINTER(Cell), FP, FP, C.c_int64, FP, FP]
    L.attn_nn_gru_cell_backward.argtypes = [P, C.POINTER(Cell), FP, FP, C.c_int64, FP, FP, FP,
                                            FP]
    return L


def ok(L, st):
    if st != 0:
        raise attn.AttnError(st, L.attn_last_error().decode())


def cell_struct(I, H, w, dw):
    """attn_nn_gru_cell over the numpy arrays w[name] (None: absent) and dw."""
    return Cell(I, H, *[fp(w[n]) for n in NAMES], *[fp(dw.get(n)) for n in NAMES])


def gru_weights(rng, I, H, bias):
    k = H ** -0.5  # torch's init range
    w = {"weight_ih": uniform(rng, (3 * H, I), -k, k), "weight_hh": uniform(rng, (3 * H, H), -k, k),
         "bias_ih": uniform(rng, (3 * H,), -k, k) if bias in ("both", "ih") else None,
         "bias_hh": uniform(rng, (3 * H,), -k, k) if bias in ("both", "hh") else None}
    return w


# ---- the layer -------------------------------------------------------------------------------------

def one_layer(rng, chk):
    I, H = dim(rng, 64), dim(rng, 128)
    B, T = log_int(rng, 1, 8), log_int(rng, 1, 100)
    D = 2 if rng.random() < 0.5 else 1
    bias = "both" if rng.random() < 0.8 else "none"
    lens = None
    if rng.random() < 0.7:
        lens = rng.integers(0 if rng.random() < 0.2 else 1, T + 1, size=B).astype(np.int64)
    use_h0, use_dout, use_dhn = (bool(rng.random() < p) for p in (0.7, 0.9, 0.7))
    threads = int(rng.integers(1, 4))
    chk.desc = dict(I=I, H=H, B=B, T=T, D=D, bias=bias, lens=None if lens is None else
                    lens.tolist(), h0=use_h0, d_out=use_dout, d_h_n=use_dhn, threads=threads)
    W = [gru_weights(rng, I, H, bias) for _ in range(D)]
    x = normal(rng, (B, T, I))
    h0 = normal(rng, (D, B, H), 0.5) if use_h0 else None
    d_out = normal(rng, (B, T, D * H)) if use_dout else None
    d_hn = normal(rng, (D, B, H)) if use_dhn else None
    # C, gradients accumulated into random starting values
    G = [{n: normal(rng, a.shape, 1e-2) for n, a in w.items() if a is not None} for w in W]
    G0 = [{n: a.copy() for n, a in g.items()} for g in G]
    dx, dh0 = normal(rng, x.shape, 1e-2), normal(rng, (D, B, H), 1e-2)
    dx0, dh00 = dx.copy(), dh0.copy()
    L = _lib()
    g = Gru()
    g.bidirectional = D - 1
    for d in range(D):
        g.dir[d] = cell_struct(I, H, W[d], G[d])
    out = np.full((B, T, D * H), np.nan, np.float32)
    hn = np.full((D, B, H), np.nan, np.float32)
    sv = Saved()
    lp = None if lens is None else lens.ctypes.data_as(C.POINTER(C.c_int64))
    ctx = context(threads)
    ok(L, L.attn_nn_gru_forward(ctx, C.byref(g), fp(x), B, T, lp, fp(h0), fp(out), fp(hn),
                                C.byref(sv)))
    try:
        ok(L, L.attn_nn_gru_backward(ctx, C.byref(g), fp(x), lp, C.byref(sv), fp(d_out),
                                     fp(d_hn), fp(dx), fp(dh0 if use_h0 else None)))
    finally:
        L.attn_nn_gru_saved_free(C.byref(sv))

    # torch float64; rows of length 0 do not go through torch.nn.GRU
    tg = tnn.GRU(I, H, batch_first=True, bidirectional=D == 2, bias=bias == "both",
                 dtype=torch.float64)
    with torch.no_grad():
        for d in range(D):
            for n in NAMES:
                if W[d][n] is not None:
                    getattr(tg, n + "_l0" + ("_reverse" if d else "")).copy_(torch.from_numpy(W[d][n]))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h0t = torch.tensor(h0 if use_h0 else np.zeros((D, B, H)), dtype=torch.float64,
                       requires_grad=True)
    ln = np.full(B, T) if lens is None else lens
    live = [b for b in range(B) if ln[b] > 0]
    rows_out, rows_hn = [torch.zeros(T, D * H, dtype=torch.float64)] * B, [h0t[:, b] for b in range(B)]
    if live:
        packed = pack_padded_sequence(xt[live], torch.tensor(ln[live]), batch_first=True,
                                      enforce_sorted=False)
        po, hn_live = tg(packed, h0t[:, live].contiguous())
        o_live, _ = pad_packed_sequence(po, batch_first=True, total_length=T)
        for i, b in enumerate(live):
            rows_out[b], rows_hn[b] = o_live[i], hn_live[:, i]
    ot, hnt = torch.stack(rows_out), torch.stack(rows_hn, 1)
    loss = 0
    if use_dout:
        loss = loss + (ot * torch.from_numpy(d_out).double()).sum()
    if use_dhn:
        loss = loss + (hnt * torch.from_numpy(d_hn).double()).sum()
    if torch.is_tensor(loss) and loss.requires_grad:
        loss.backward()
    chk.close("out", out, ot, 1e-5, 1.0)
    chk.close("h_n", hn, hnt, 1e-5, 1.0)
    grad = lambda t: np.zeros(t.shape) if t.grad is None else t.grad.numpy()  # noqa: E731
    chk.close("dx", dx, dx0 + grad(xt), 5e-5, 1e-2)
    if use_h0:
        chk.close("dh0", dh0, dh00 + grad(h0t), 5e-5, 1e-2)
    else:
        chk.equal("dh0 untouched (NULL)", dh0, dh00)
    for d in range(D):
        for n in G[d]:
            p = getattr(tg, n + "_l0" + ("_reverse" if d else ""))
            chk.close("d_%s[dir %d]" % (n, d), G[d][n], G0[d][n] + grad(p), 5e-5, 1e-2)


# ---- the cell ---------------------------------------------------------------------------------------

def torch_cell(x, h, w):
    """The GRU cell written out (torch.nn.GRUCell's equations, gate order r, z, n)."""
    gi = x @ w["weight_ih"].T + (w["bias_ih"] if w["bias_ih"] is not None else 0)
    gh = h @ w["weight_hh"].T + (w["bias_hh"] if w["bias_hh"] is not None else 0)
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def one_cell(rng, chk):
    I, H, B = (0 if rng.random() < 0.05 else dim(rng, 64)), dim(rng, 128), log_int(rng, 1, 16)
    bias = str(rng.choice(["both", "none", "ih", "hh"]))
    want = {k: bool(rng.random() < 0.8) for k in ("dx", "dh", "dw")}
    threads = int(rng.integers(1, 4))
    chk.desc = dict(I=I, H=H, B=B, bias=bias, threads=threads, **want)
    w = gru_weights(rng, I, H, bias)
    x, h, dhn = normal(rng, (B, I)), normal(rng, (B, H), 0.5), normal(rng, (B, H))
    G = {n: normal(rng, a.shape, 1e-2) for n, a in w.items() if a is not None and want["dw"]}
    G0 = {n: a.copy() for n, a in G.items()}
    dx, dh = normal(rng, x.shape, 1e-2), normal(rng, h.shape, 1e-2)
    dx0, dh0 = dx.copy(), dh.copy()
    L = _lib()
    cell = cell_struct(I, H, w, G)
    hn, sv = np.full((B, H), np.nan, np.float32), np.full((B, 4 * H), np.nan, np.float32)
    ctx = context(threads)
    ok(L, L.attn_nn_gru_cell_forward(ctx, C.byref(cell), fp(x), fp(h), B, fp(hn), fp(sv)))
    ok(L, L.attn_nn_gru_cell_backward(ctx, C.byref(cell), fp(x), fp(h), B, fp(sv), fp(dhn),
                                      fp(dx if want["dx"] else None),
                                      fp(dh if want["dh"] else None)))
    T = {n: None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
         for n, a in w.items()}
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ht = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    y = torch_cell(xt, ht, T)
    if bias in ("both", "none"):  # the written-out cell is torch.nn.GRUCell
        tc = tnn.GRUCell(I, H, bias=bias == "both", dtype=torch.float64)
        with torch.no_grad():
            for n, a in w.items():
                if a is not None:
                    getattr(tc, n).copy_(torch.from_numpy(a))
        chk.close("written-out cell vs torch.nn.GRUCell", y, tc(xt.detach(), ht.detach()), 1e-12)
    (y * torch.from_numpy(dhn).double()).sum().backward()
    chk.close("h_new", hn, y, 2e-6, 1.0)
    chk.close("dx", dx, dx0 + xt.grad.numpy() if want["dx"] else dx0, 5e-5, 1e-2)
    chk.close("dh", dh, dh0 + ht.grad.numpy() if want["dh"] else dh0, 5e-5, 1e-2)
    for n in G:
        chk.close("d_" + n, G[n], G0[n] + T[n].grad.numpy(), 5e-5, 1e-2)


def test_grid_gru_layer(request):
    run_grid(request, "gru_layer", 4_000_000, 1.0, one_layer)


def test_grid_gru_cell(request):
    run_grid(request, "gru_cell", 4_100_000, 1.0, one_cell)
