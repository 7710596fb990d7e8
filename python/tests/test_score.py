"""Learned-score attention (attn.score, include/attn/score.h) against PyTorch.

The oracle is the same math written in torch (float64, autograd), materialising
the B x H x Sq x Sk x A tensor of the tanh scores, with Keras semantics:

  AdditiveAttention   score = reduce_sum(scale * tanh(query + key), -1) on the
                      projections query = q Wq^T + b, key = k Wk^T (scale = v_a);
                      LUONG_CONCAT is the same with [Wq | Wk] = W and no bias
  Attention (Luong)   score = q . k' with k' = W k (general), or
                      score = g * (q . k) (dot with the learned scale g)

then the core's masks, a softmax that gives 0 for a row with no visible key,
attn's dropout keep mask, out = (P * f) @ v. Every case checks out, LSE,
weights (with and without dropout) and the gradients of q, k, v and every
parameter on four paths:

  f64        float64, the reference kernel       |err| <= 1e-10 * max(1, max|ref|)
  f32        float32, kernel="auto"              |err| <= 2e-5 (outputs), 1e-4 (gradients)
  f32_ref    float32, kernel="ref"                 relative to max(1, max|ref|)
  f32_tiled  float32, kernel="tiled"

and that f32 is bitwise identical with threads=1 and threads=3.
"""
import numpy as np
import pytest
import torch

import attn
import attn.score as score

torch.set_num_threads(1)

PATHS = {
    "f64": dict(dtype=np.float64, kernel="auto", out=1e-10, grad=1e-10),
    "f32": dict(dtype=np.float32, kernel="auto", out=2e-5, grad=1e-4),
    "f32_ref": dict(dtype=np.float32, kernel="ref", out=2e-5, grad=1e-4),
    "f32_tiled": dict(dtype=np.float32, kernel="tiled", out=2e-5, grad=1e-4),
}
KINDS = ["additive", "general", "concat", "scaled_dot"]


# ---- the torch oracle ------------------------------------------------------------------

def keras_additive(query, key, scale):
    """Keras AdditiveAttention: reduce_sum(scale * tanh(query + key), -1), per head.
    query [B, H, Sq, A], key [B, H, Sk, A], scale [H, A] -> [B, H, Sq, Sk]."""
    t = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))  # [B, H, Sq, Sk, A]
    return (scale[None, :, None, None, :] * t).sum(-1)


def keras_dot(query, key, scale=None):
    """Keras Attention (Luong dot): query . key, times the learned scale if any."""
    s = query @ key.transpose(-1, -2)
    return s if scale is None else scale[None, :, None, None] * s


def torch_scores(kind, q, k, P):
    """q [B, H, Sq, Dq], k [B, H, Sk, Dk]; P: torch parameters with a leading H dim."""
    if kind in ("additive", "concat"):
        Dq = q.shape[-1]
        wq = P["w_q"] if kind == "additive" else P["w"][:, :, :Dq]
        wk = P["w_k"] if kind == "additive" else P["w"][:, :, Dq:]
        qp = torch.einsum("bhid,had->bhia", q, wq)
        if "b" in P:
            qp = qp + P["b"][None, :, None, :]
        kp = torch.einsum("bhjd,had->bhja", k, wk)
        return keras_additive(qp, kp, P["v_a"])
    if kind == "general":
        return keras_dot(q, torch.einsum("bhjd,hfd->bhjf", k, P["w"]))
    return keras_dot(q, k, P["g"])


def visible(B, H, Sq, Sk, opts):
    """[B, H, Sq, Sk] bool: lengths, causal / window with alignment, bool mask."""
    ql = opts.get("q_lens") or [Sq] * B
    kl = opts.get("k_lens") or [Sk] * B
    i = torch.arange(Sq)[:, None]
    j = torch.arange(Sk)[None, :]
    vis = torch.zeros(B, H, Sq, Sk, dtype=torch.bool)
    wl, wr = opts.get("window", (-1, -1))
    for b in range(B):
        ia = i + (kl[b] - ql[b] if opts.get("align") == "bottom_right" else 0)
        v = (i < ql[b]) & (j < kl[b])
        if opts.get("causal"):
            v &= j <= ia
        if wl >= 0:
            v &= j >= ia - wl
        if wr >= 0:
            v &= j <= ia + wr
        vis[b] = v
    if opts.get("mask") is not None:
        vis &= torch.from_numpy(np.broadcast_to(opts["mask"], (B, H, Sq, Sk)).copy())
    return vis


def reference(kind, q, k, v, P, opts):
    """out [B, H, Sq, Dv], lse [B, H, Sq], P, P * f; q, k, v torch [B, H, S, D]."""
    B, H, Sq, Sk = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    s = torch_scores(kind, q, k, P)
    vis = visible(B, H, Sq, Sk, opts)
    any_ = vis.any(-1, keepdim=True)
    s = s.masked_fill(~vis, float("-inf"))
    m = torch.where(any_, s.amax(-1, keepdim=True), torch.zeros_like(s[..., :1])).detach()
    e = torch.where(vis, torch.exp(s - m), torch.zeros_like(s))
    lsum = e.sum(-1, keepdim=True)
    p = torch.where(any_, e / torch.where(any_, lsum, torch.ones_like(lsum)), torch.zeros_like(e))
    lse = torch.where(any_, m + torch.log(torch.where(any_, lsum, torch.ones_like(lsum))),
                      torch.full_like(lsum, float("-inf")))[..., 0]
    pd = opts.get("dropout_p", 0.0)
    f = torch.ones_like(p)
    if pd > 0:
        keep = attn.dropout_mask(opts["seed"], opts["offset"], pd, B, H, Sq, Sk)
        f = torch.from_numpy(keep.astype(np.float64)) / (1.0 - pd)
    return (p * f) @ v, lse, p, p * f


# ---- cases -----------------------------------------------------------------------------

def make_case(kind, H, seed, B=2, Sq=33, Sk=70, Dq=12, Dk=10, Dv=9, A=16, bias=True):
    rng = np.random.default_rng(seed)
    if kind == "scaled_dot":
        Dk = Dq
    q = rng.standard_normal((B, Sq, H, Dq))
    k = rng.standard_normal((B, Sk, H, Dk))
    v = rng.standard_normal((B, Sk, H, Dv))
    dout = rng.standard_normal((B, Sq, H, Dv))
    u = lambda *shape, s=1.0: rng.uniform(-s, s, shape)  # noqa: E731
    if kind == "additive":
        params = {"w_q": u(H, A, Dq, s=1 / np.sqrt(Dq)), "w_k": u(H, A, Dk, s=1 / np.sqrt(Dk)),
                  "v_a": u(H, A, s=2 / np.sqrt(A))}
        if bias:
            params["b"] = u(H, A, s=0.5)
    elif kind == "concat":
        params = {"w": u(H, A, Dq + Dk, s=1 / np.sqrt(Dq + Dk)), "v_a": u(H, A, s=2 / np.sqrt(A))}
    elif kind == "general":
        params = {"w": u(H, Dq, Dk, s=1 / np.sqrt(Dk))}
    else:
        params = {"g": u(H, s=1.5)}
    return q, k, v, dout, params


OPTIONS = {
    "plain": {},
    "causal": dict(causal=True),
    "causal_br_dropout": dict(causal=True, align="bottom_right", dropout_p=0.5, seed=7, offset=3),
    "window_klens": dict(window=(5, 3), k_lens=[70, 41]),
    "mask_qlens_dropout": dict(mask="full", q_lens=[33, 20], dropout_p=0.17, seed=11, offset=1),
}


def c_options(opts, B, H, Sq, Sk, seed):
    o = dict(opts)
    if o.get("mask") == "full":
        o["mask"] = np.random.default_rng(seed + 99).random((B, H, Sq, Sk)) < 0.8
    return o


def to_torch(x):
    """numpy [B, S, H, D] -> torch [B, H, S, D] leaf (the grad is of the leaf)."""
    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    return leaf, leaf.permute(0, 2, 1, 3)


def rel_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    both_inf = np.isinf(ref) & (got == ref)
    with np.errstate(invalid="ignore"):  # -inf - -inf; a NaN elsewhere fails below
        diff = np.where(both_inf, 0.0, np.abs(got - ref))
    finite = ref[np.isfinite(ref)]
    scale = max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    return float(diff.max() if diff.size else 0.0) / scale


def check(oracle_report, cat, path, what, got, ref, tol):
    e = rel_err(got, ref)
    oracle_report.error(cat, path, what, e)
    assert e <= tol, "%s %s %s: relative error %.3g > %.3g" % (cat, path, what, e, tol)


def run_c(kind, q, k, v, dout, params, opts, path, threads=1):
    cfg = PATHS[path]
    dt = cfg["dtype"]
    cast = lambda x: np.asarray(x, dtype=dt)  # noqa: E731
    pc = {s: cast(a) for s, a in params.items()}
    kw = dict(opts, threads=threads, kernel=cfg["kernel"])
    out, lse = score.forward(kind, cast(q), cast(k), cast(v), pc, **kw)
    dq, dk, dv, grads = score.backward(kind, cast(q), cast(k), cast(v), out, cast(dout), lse, pc, **kw)
    w = score.weights(kind, cast(q), cast(k), lse, pc, **kw)
    wd = score.weights(kind, cast(q), cast(k), lse, pc, with_dropout=True, **kw)
    return dict(out=out, lse=lse, dq=dq, dk=dk, dv=dv, w=w, wd=wd, **{"d_" + s: g for s, g in grads.items()})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(OPTIONS))
@pytest.mark.parametrize("H", [1, 2])
def test_against_torch(oracle_report, kind, case, H):
    seed = 1000 + 10 * KINDS.index(kind) + H
    q, k, v, dout, params = make_case(kind, H, seed)
    B, Sq, Sk = q.shape[0], q.shape[1], k.shape[1]
    opts = c_options(OPTIONS[case], B, H, Sq, Sk, seed)
    (ql, qt), (kl, kt), (vl, vt) = to_torch(q), to_torch(k), to_torch(v)
    P = {s: torch.tensor(a, dtype=torch.float64, requires_grad=True) for s, a in params.items()}
    out_t, lse_t, w_t, wd_t = reference(kind, qt, kt, vt, P, opts)
    out_ref = out_t.permute(0, 2, 1, 3)
    (out_ref * torch.from_numpy(dout)).sum().backward()
    ref = dict(out=out_ref.detach().numpy(), lse=lse_t.detach().numpy(), w=w_t.detach().numpy(),
               wd=wd_t.detach().numpy(), dq=ql.grad.numpy(), dk=kl.grad.numpy(), dv=vl.grad.numpy(),
               **{"d_" + s: t.grad.numpy() for s, t in P.items()})
    cat = "score_%s" % kind
    for path, cfg in PATHS.items():
        oracle_report.case(cat)
        got = run_c(kind, q, k, v, dout, params, opts, path)
        for what in ("out", "lse", "w", "wd"):
            check(oracle_report, cat, path, what, got[what], ref[what], cfg["out"])
        for what in ref:
            if what.startswith("d"):
                check(oracle_report, cat, path, what, got[what], ref[what], cfg["grad"])
        if path == "f32":
            other = run_c(kind, q, k, v, dout, params, opts, path, threads=3)
            for what in got:
                assert np.array_equal(got[what], other[what]), "threads 1 vs 3 differ in " + what


def test_keras_additive_literally():
    """With identity projections and no bias, ADDITIVE is Keras'
    reduce_sum(scale * tanh(query + key)) applied to q and k themselves."""
    rng = np.random.default_rng(5)
    B, Sq, Sk, D = 2, 7, 11, 6
    q, k, v = (rng.standard_normal((B, S, 1, D)) for S in (Sq, Sk, Sk))
    scale = rng.standard_normal(D)
    eye = np.eye(D)[None]
    out, _ = score.forward("additive", q, k, v, {"w_q": eye, "w_k": eye, "v_a": scale[None]})
    s = (scale * np.tanh(q[:, :, None, 0, :] + k[:, None, :, 0, :])).sum(-1)  # [B, Sq, Sk]
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bij,bjd->bid", p, v[:, :, 0, :])
    assert np.abs(out[:, :, 0, :] - want).max() < 1e-12


def test_strided_views_bitwise():
    """Permuted (BHSD) and sliced inputs give bitwise the results of contiguous copies."""
    q, k, v, dout, params = make_case("additive", 2, 77)
    q32, k32, v32 = (a.astype(np.float32) for a in (q, k, v))
    qs = np.ascontiguousarray(q32.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    kpad = np.zeros(k32.shape[:3] + (k32.shape[3] + 5,), dtype=np.float32)
    kpad[..., :k32.shape[3]] = k32
    ks = kpad[..., :k32.shape[3]]
    p32 = {s: a.astype(np.float32) for s, a in params.items()}
    a = score.forward("additive", q32, k32, v32, p32, causal=True)
    b = score.forward("additive", qs, ks, v32, p32, causal=True)
    assert not qs.flags.c_contiguous and not ks.flags.c_contiguous
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_errors_raise_attn_error():
    q, k, v, _, params = make_case("additive", 1, 3)
    del params["v_a"]
    with pytest.raises(attn.AttnError) as e:
        score.forward("additive", q, k, v, params)
    assert e.value.name == "ATTN_NULL_ARG" and "params.v_a" in e.value.message
    q, k, v, _, params = make_case("general", 1, 3)
    params["v_a"] = np.ones((1, 4))
    with pytest.raises(attn.AttnError) as e:
        score.forward("general", q, k, v, params)
    assert e.value.name == "ATTN_BAD_PARAM" and "params.v_a" in e.value.message
    with pytest.raises(ValueError):
        score.forward("bahdanau", q, k, v, params)


def test_params_struct_matches_c_default():
    d = score.lib.attn_score_params_default(score.KINDS["concat"])
    assert d.kind == 3 and not d.w and not d.v_a
    assert d.masks.window_left == -1 and d.masks.window_right == -1 and d.masks.dropout_p == 0.0
