"""A random grid of the multi-head attention module (attn_nn_mha_forward /
backward) against PyTorch float64 on the same float32 values: self- and
cross-attention; packed (in_proj_weight) and separate projections, kdim !=
embed_dim; grouped-query and multi-query heads; heads 1-16; head dims 1-128
with every residue mod 8; embed dims not equal to heads * head_dim; lengths
1-300; key lengths and key-keep masks (rows that see no key included);
top-left causal; rotary positions; dropout on the weights, with the core's
keep mask (its documented rule, computed here in numpy) fed to the oracle;
need_weights averaged over heads and per head; biases present or not; 1-3
threads. Checked: the output, the weights, and the gradients of the inputs
and of every weight and bias, accumulated (+=) into random starting values.

The oracle is torch.nn.MultiheadAttention where it can express the
configuration (heads == kv heads, embed_dim == heads * head_dim, no RoPE, no
dropout, both biases or none, no empty row), else the module written out in
torch (F.linear, rotate-half RoPE, explicit masked softmax, dropout mask,
grouped heads): where both apply they must agree to 1e-10, and without
dropout the written-out attention must agree with
F.scaled_dot_product_attention(enable_gqa=True).

The module's attention (the core) does not take an alignment: causal is
top-left (torch's is_causal), so bottom-right alignment is the core's grid's.
"""
import ctypes as C
import math

import numpy as np
import torch
import torch.nn.functional as F

import attn
import attn.nn
from attn._lib.core import context
from grid_util import attn_dropout_keep_mask, dim, log_int, normal, run_grid, uniform
from test_nn_mha import Mha, MhaOpts, MhaSaved

torch.set_num_threads(1)

F32P = C.POINTER(C.c_float)
HEADS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16]


# ---- drawing a configuration ----------------------------------------------------------------

def draw(rng, budget, real=False):
    """A configuration whose forward costs at most about `budget` flops; real:
    the shapes of real models (6-16 heads, head dims 64-128, 64-300 tokens)."""
    while True:
        H = int(rng.choice(HEADS)) if rng.random() < 0.8 else int(rng.integers(1, 17))
        if real:
            H = int(rng.choice([6, 8, 9, 12, 16]))
        divs = [d for d in range(2, H) if H % d == 0]
        kv = str(rng.choice(["mha", "gqa", "mqa"])) if H > 1 else "mha"
        Hkv = H if kv == "mha" or (kv == "gqa" and not divs) else \
            1 if kv == "mqa" else int(rng.choice(divs))
        hd = dim(rng, 128, edges=(8, 16, 32, 64, 96, 128))
        if real:
            hd = int(rng.choice([64, 80, 96, 128])) - int(rng.choice([0, 0, 1, 3, 5]))
        cross = bool(rng.random() < 0.5)
        packed = Hkv == H and bool(rng.random() < 0.5)
        if packed:
            E = kdim = H * hd
        else:
            E = H * hd if rng.random() < 0.5 else dim(rng, 256)
            kdim = E if not cross or rng.random() < 0.5 else dim(rng, 256)
        B = log_int(rng, 1, 4)
        Sq = log_int(rng, 64 if real else 1, 300)
        Sk = Sq if not cross else log_int(rng, 64 if real else 1, 300)
        cost = 2 * B * (Sq * E * H * hd + 2 * Sk * kdim * Hkv * hd + Sq * H * hd * E +
                        2 * H * Sq * Sk * hd)
        if cost <= budget:
            break
    c = dict(B=B, Sq=Sq, Sk=Sk, E=E, H=H, Hkv=Hkv, hd=hd, kdim=kdim, cross=cross,
             packed=packed, in_bias=bool(rng.random() < 0.8), out_bias=bool(rng.random() < 0.8))
    if rng.random() < 0.7:
        c["out_bias"] = c["in_bias"]
    c["causal"] = bool(rng.random() < 0.4)
    c["padding"] = str(rng.choice(["none", "k_lens", "key_keep", "both"]))
    c["empty_rows"] = bool(rng.random() < 0.1)
    c["rope"] = hd % 2 == 0 and bool(rng.random() < 0.3)
    c["dropout"] = float(rng.choice([0.1, 0.3, 0.5])) if rng.random() < 0.2 else 0.0
    c["weights"] = str(rng.choice(["none", "average", "per_head"]))
    c["threads"] = int(rng.integers(1, 4))
    return c


def masks(rng, c):
    """k_lens [B] (int64) and key_keep [B, Sk] (uint8, 1 = attend), or None."""
    B, Sk = c["B"], c["Sk"]
    lo = 0 if c["empty_rows"] else 1
    k_lens = keep = None
    if c["padding"] in ("k_lens", "both"):
        k_lens = rng.integers(lo, Sk + 1, size=B).astype(np.int64)
        k_lens[rng.integers(0, B)] = Sk
    if c["padding"] in ("key_keep", "both"):
        keep = (rng.random((B, Sk)) < rng.uniform(0.3, 1.0)).astype(np.uint8)
        if not c["empty_rows"]:
            keep[:, 0] = 1  # every query row (causal ones too) sees key 0
    return k_lens, keep


def visible(c, k_lens, keep):
    """(key_vis [B, Sk], vis [B, 1, Sq, Sk]) bool: the keys each row's padding
    leaves, and what each query may attend to."""
    B, Sq, Sk = c["B"], c["Sq"], c["Sk"]
    j = torch.arange(Sk)
    key_vis = torch.ones(B, Sk, dtype=torch.bool)
    if k_lens is not None:
        key_vis &= j[None, :] < torch.from_numpy(k_lens)[:, None]
    if keep is not None:
        key_vis &= torch.from_numpy(keep != 0)
    vis = key_vis[:, None, None, :].expand(B, 1, Sq, Sk)
    if c["causal"]:  # top-left: key j <= query i
        vis = vis & (j[None, :] <= torch.arange(Sq)[:, None])[None, None]
    return key_vis, vis


def params(rng, c):
    """Float32 weights in torch's state_dict names, initialised like torch."""
    E, H, Hkv, hd, kd = c["E"], c["H"], c["Hkv"], c["hd"], c["kdim"]
    P = {}
    if c["packed"]:
        P["in_proj_weight"] = uniform(rng, (3 * E, E), -math.sqrt(6 / (4 * E)),
                                      math.sqrt(6 / (4 * E)))
    else:
        P["q_proj_weight"] = uniform(rng, (H * hd, E), -E ** -0.5, E ** -0.5)
        P["k_proj_weight"] = uniform(rng, (Hkv * hd, kd), -kd ** -0.5, kd ** -0.5)
        P["v_proj_weight"] = uniform(rng, (Hkv * hd, kd), -kd ** -0.5, kd ** -0.5)
    if c["in_bias"]:
        P["in_proj_bias"] = normal(rng, ((H + 2 * Hkv) * hd,), 0.1)
    P["out_proj.weight"] = uniform(rng, (E, H * hd), -(H * hd) ** -0.5, (H * hd) ** -0.5)
    if c["out_bias"]:
        P["out_proj.bias"] = normal(rng, (E,), 0.1)
    return P


# ---- the C module ------------------------------------------------------------------------------

def fptr(a):
    return None if a is None else a.ctypes.data_as(F32P)


def c_mha(c, P, G, query, kv, k_lens, keep, rope_pos, rope_kpos, d_out, d_query, d_kv):
    """Runs forward and backward; G holds the gradient buffers (accumulated into).
    Returns (out, weights or None)."""
    L = attn.nn.lib
    L.attn_nn_mha_forward.argtypes = [C.c_void_p, C.POINTER(Mha), F32P, F32P, C.c_int64,
                                      C.c_int64, C.c_int64, C.POINTER(MhaOpts), F32P, F32P,
                                      C.c_int, C.POINTER(MhaSaved)]
    L.attn_nn_mha_backward.argtypes = [C.c_void_p, C.POINTER(Mha), F32P, F32P,
                                       C.POINTER(MhaOpts), C.POINTER(MhaSaved), F32P, F32P, F32P]
    L.attn_nn_mha_saved_free.argtypes = [C.POINTER(MhaSaved)]
    B, Sq, Sk, H = c["B"], c["Sq"], c["Sk"], c["H"]
    m = Mha(c["E"], H, c["Hkv"], c["hd"], c["kdim"], c["kdim"], int(c["packed"]))
    for name, a in P.items():
        field = name.replace(".", "_")
        setattr(m, field, fptr(a))
        setattr(m, "d_" + field, fptr(G[name]))
    o = MhaOpts()
    o.causal = int(c["causal"])
    if k_lens is not None:
        o.k_lens = k_lens.ctypes.data_as(C.POINTER(C.c_int64))
    if keep is not None:
        o.key_keep = keep.ctypes.data_as(C.POINTER(C.c_uint8))
    o.dropout_p, o.seed, o.offset = c["dropout"], c.get("seed", 0), c.get("offset", 0)
    if rope_pos is not None:
        o.rope_pos = rope_pos.ctypes.data_as(C.POINTER(C.c_int32))
        o.rope_theta = c["theta"]
        if rope_kpos is not None:
            o.rope_kpos = rope_kpos.ctypes.data_as(C.POINTER(C.c_int32))
    ctx = context(c["threads"])
    out = np.full((B, Sq, c["E"]), np.nan, np.float32)
    wshape = {"none": None, "average": (B, Sq, Sk), "per_head": (B, H, Sq, Sk)}[c["weights"]]
    w = None if wshape is None else np.full(wshape, np.nan, np.float32)
    saved = MhaSaved()
    st = L.attn_nn_mha_forward(ctx, C.byref(m), fptr(query), fptr(kv), B, Sq, Sk, C.byref(o),
                               fptr(out), fptr(w), int(c["weights"] == "average"), C.byref(saved))
    if st != 0:
        raise attn.AttnError(st, L.attn_last_error().decode())
    try:
        st = L.attn_nn_mha_backward(ctx, C.byref(m), fptr(query), fptr(kv), C.byref(o),
                                    C.byref(saved), fptr(d_out), fptr(d_query), fptr(d_kv))
        if st != 0:
            raise attn.AttnError(st, L.attn_last_error().decode())
    finally:
        L.attn_nn_mha_saved_free(C.byref(saved))
    return out, w


# ---- the torch oracles ----------------------------------------------------------------------------

def rope(x, pos, theta):
    """Rotate-half RoPE on x [B, S, heads, hd], pos [B, S]."""
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.as_tensor(pos, dtype=torch.float64)[..., None] * inv
    cos, sin = torch.cat([ang.cos()] * 2, -1)[:, :, None], torch.cat([ang.sin()] * 2, -1)[:, :, None]
    return x * cos + torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1) * sin


def written_out(c, T, query, kv, vis, keep_drop, rope_pos, rope_kpos):
    """The module in torch. Returns a dict: out [B, Sq, E], p [B, H, Sq, Sk] (the
    weights, after dropout), and what magnitudes() and the SDPA check need."""
    B, Sq, Sk, E, H, Hkv, hd = (c[k] for k in ("B", "Sq", "Sk", "E", "H", "Hkv", "hd"))
    if c["packed"]:
        wq, wk, wv = T["in_proj_weight"].split([E, E, E])
    else:
        wq, wk, wv = T["q_proj_weight"], T["k_proj_weight"], T["v_proj_weight"]
    bq = bk = bv = None
    if "in_proj_bias" in T:
        bq, bk, bv = T["in_proj_bias"].split([H * hd, Hkv * hd, Hkv * hd])
    q = F.linear(query, wq, bq).view(B, Sq, H, hd)
    k = F.linear(kv, wk, bk).view(B, Sk, Hkv, hd)
    v = F.linear(kv, wv, bv).view(B, Sk, Hkv, hd)
    if rope_pos is not None:
        q = rope(q, rope_pos.reshape(B, Sq), c["theta"])
        k = rope(k, (rope_kpos if rope_kpos is not None else rope_pos).reshape(B, Sk), c["theta"])
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, S, hd]
    g = H // Hkv
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    any_ = vis.any(-1, keepdim=True)
    s = s.masked_fill(~vis, -math.inf).masked_fill(~any_, 0.0)
    p = torch.softmax(s, -1) * vis  # rows that see no key: 0
    r = dict(sdpa=None)
    if keep_drop is None:
        if bool(any_.all()):
            r["sdpa"] = F.scaled_dot_product_attention(q, k, v, attn_mask=vis)
    else:
        p = p * torch.from_numpy(keep_drop) / (1 - c["dropout"])
    o = p @ v
    r["out"] = F.linear(o.transpose(1, 2).reshape(B, Sq, H * hd), T["out_proj.weight"],
                        T.get("out_proj.bias"))
    r.update(p=p, o=o, q=q, k=k, v=v, w=(wq, wk, wv))
    return r


def magnitudes(c, r, T, query, kv, d_out):
    """The scale of the terms each gradient sums, from the oracle's values in
    absolute value, so that a gradient that cancels to ~0 (one visible key makes
    dS exactly 0) is measured against what float32 rounding of its terms can
    leave: dS_ij = P_ij (dP_ij - D_i) <= P (|dP| + |D|), then the chain rule on |.|."""
    a = lambda t: t.detach().abs()  # noqa: E731
    B, Sq, Sk, E, H, Hkv, hd = (c[k] for k in ("B", "Sq", "Sk", "E", "H", "Hkv", "hd"))
    g = H // Hkv
    ad = torch.from_numpy(np.abs(d_out)).double()
    d_o = (ad @ a(T["out_proj.weight"])).view(B, Sq, H, hd).transpose(1, 2)
    d_s = a(r["p"]) * (d_o @ a(r["v"]).transpose(-1, -2) + (d_o * a(r["o"])).sum(-1, keepdim=True))
    fold = lambda t: t.view(B, Hkv, g, -1, hd).sum(2)  # noqa: E731  grouped heads add up
    d_q = (d_s @ a(r["k"])) / math.sqrt(hd)
    d_k = fold((d_s.transpose(-1, -2) @ a(r["q"])) / math.sqrt(hd))
    d_v = fold(a(r["p"]).transpose(-1, -2) @ d_o)
    rows = lambda t: t.transpose(1, 2).reshape(t.shape[0] * t.shape[2], -1)  # noqa: E731
    xq, xkv = a(query).reshape(B * Sq, -1), a(kv).reshape(B * Sk, -1)
    wq, wk, wv = (a(w) for w in r["w"])
    m = {"out_proj.weight": ad.reshape(B * Sq, E).T @ rows(a(r["o"])),
         "out_proj.bias": ad.reshape(B * Sq, E).sum(0)}
    dw = [rows(d_q).T @ xq, rows(d_k).T @ xkv, rows(d_v).T @ xkv]
    if c["packed"]:
        m["in_proj_weight"] = torch.cat(dw)
    else:
        m["q_proj_weight"], m["k_proj_weight"], m["v_proj_weight"] = dw
    m["in_proj_bias"] = torch.cat([rows(d_q).sum(0), rows(d_k).sum(0), rows(d_v).sum(0)])
    m["query"] = (rows(d_q) @ wq).view(B, Sq, -1)
    m["kv"] = (rows(d_k) @ wk + rows(d_v) @ wv).view(B, Sk, -1)
    return {n: float(t.max()) if t.numel() else 0.0 for n, t in m.items()}


def torch_mha(c, T, query, kv, key_vis):
    """torch.nn.MultiheadAttention with the same weights: (out, weights as C
    returns them: [B, Sq, Sk] averaged by torch, or [B, H, Sq, Sk]), the module."""
    E, H, kd = c["E"], c["H"], c["kdim"]
    mha = torch.nn.MultiheadAttention(E, H, bias=c["in_bias"], batch_first=True, kdim=kd,
                                      vdim=kd, dtype=torch.float64)
    assert mha._qkv_same_embed_dim == c["packed"]
    own = dict(mha.named_parameters())
    with torch.no_grad():
        for name, t in T.items():
            own[name].copy_(t)
    am = None
    if c["causal"]:  # True: may not attend
        am = torch.arange(c["Sk"])[None, :] > torch.arange(c["Sq"])[:, None]
    out, w = mha(query, kv, kv, key_padding_mask=~key_vis, attn_mask=am, need_weights=True,
                 average_attn_weights=c["weights"] == "average")
    return out, w, mha


# ---- one configuration -----------------------------------------------------------------------------

def one_mha(rng, chk, budget):
    c = draw(rng, 30 * budget, real=True) if rng.random() < 0.1 else draw(rng, budget)
    chk.desc = dict(c)
    B, Sq, Sk, E, H, kd = (c[k] for k in ("B", "Sq", "Sk", "E", "H", "kdim"))
    k_lens, keep = masks(rng, c)
    P = params(rng, c)
    query = normal(rng, (B, Sq, E))
    kv = query if not c["cross"] else normal(rng, (B, Sk, kd))
    rope_pos = rope_kpos = None
    if c["rope"]:
        c["theta"] = float(rng.choice([10000.0, 500000.0]))
        rope_pos = rng.integers(0, 4096, size=B * Sq).astype(np.int32)
        if c["cross"] or rng.random() < 0.3:
            rope_kpos = rng.integers(0, 4096, size=B * Sk).astype(np.int32)
    keep_drop = None
    if c["dropout"] > 0:
        c["seed"], c["offset"] = int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40))
        keep_drop = attn_dropout_keep_mask(c["seed"], c["offset"], c["dropout"], B, H, Sq, Sk)
    chk.desc = dict(c)
    d_out = normal(rng, (B, Sq, E))
    # the C side: gradients accumulate into random starting values
    G = {n: normal(rng, a.shape, 1e-2) for n, a in P.items()}
    G0 = {n: g.copy() for n, g in G.items()}
    d_query = normal(rng, query.shape, 1e-2)
    d_kv = d_query if not c["cross"] else normal(rng, kv.shape, 1e-2)
    dq0, dkv0 = d_query.copy(), d_kv.copy()
    out, w = c_mha(c, P, G, query, kv, k_lens, keep, rope_pos, rope_kpos, d_out, d_query, d_kv)

    # the oracle
    T = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in P.items()}
    tq = torch.tensor(query, dtype=torch.float64, requires_grad=True)
    tkv = tq if not c["cross"] else torch.tensor(kv, dtype=torch.float64, requires_grad=True)
    key_vis, vis = visible(c, k_lens, keep)
    r = written_out(c, T, tq, tkv, vis, keep_drop, rope_pos, rope_kpos)
    ref_out, ref_p = r["out"], r["p"]
    mags = magnitudes(c, r, T, tq, tkv, d_out)
    compat = (c["Hkv"] == H and E == H * c["hd"] and not c["rope"] and keep_drop is None and
              c["in_bias"] == c["out_bias"] and c["packed"] == (kd == E) and
              bool(vis.any(-1).all()))
    if r["sdpa"] is not None:
        chk.close("written-out attention vs F.sdpa", r["o"], r["sdpa"], 1e-10)
    if compat:  # check the written-out oracle against torch's module, then use the module
        T2 = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in P.items()}
        q2 = torch.tensor(query, dtype=torch.float64, requires_grad=True)
        kv2 = q2 if not c["cross"] else torch.tensor(kv, dtype=torch.float64, requires_grad=True)
        m_out, m_w, mha = torch_mha(c, T2, q2, kv2, key_vis)
        mine = ref_p.mean(1) if c["weights"] == "average" else ref_p
        chk.close("written-out out vs torch MHA", ref_out, m_out, 1e-10)
        chk.close("written-out weights vs torch MHA", mine, m_w, 1e-10)
        ref_out, T, tq, tkv = m_out, dict(mha.named_parameters()), q2, kv2
        ref_w = m_w
        chk.desc["oracle"] = "torch.nn.MultiheadAttention"
    else:
        chk.desc["oracle"] = "written out"
        ref_w = ref_p.mean(1) if c["weights"] == "average" else ref_p
    (ref_out * torch.from_numpy(d_out).double()).sum().backward()

    # float32 sums of up to ~1e4 terms: rounding ~sqrt(terms) 6e-8 of their magnitude
    chk.close("out", out, ref_out, 2e-5, 1e-3)
    if w is not None:
        chk.close("weights(%s)" % c["weights"], w, ref_w, 2e-6, 1e-3)
    if c["cross"]:
        chk.close("d_query", d_query, dq0 + tq.grad.numpy(), 1e-5, mags["query"])
        chk.close("d_kv", d_kv, dkv0 + tkv.grad.numpy(), 1e-5, mags["kv"])
    else:
        chk.close("d_query(+d_kv)", d_query, dq0 + tq.grad.numpy(), 1e-5,
                  mags["query"] + mags["kv"])
    for n in P:
        chk.close("d_" + n, G[n], G0[n] + T[n].grad.numpy(), 1e-5, mags[n])


def test_grid_mha(request):
    run_grid(request, "mha", 3_000_000, 1.5, lambda rng, chk: one_mha(rng, chk, 3e7))
