"""attn against PyTorch (CPU, float64) as the oracle.

Every case builds float64 inputs with a fixed seed, computes the reference
output and gradients with torch (scaled_dot_product_attention where SDPA can
express the case, an explicit softmax otherwise; autograd for gradients), and
checks three attn paths against it:

  f64      float64 inputs, reference kernel          |err| <= 1e-10 * max(1, max|ref|)
  f32      float32 inputs, tiled kernel              |err| <= 2e-5 (outputs), 1e-4 (grads)
  f32_ref  float32 inputs, kernel="ref"              same tolerances as f32

Backward always takes attn's own forward O and LSE. The explicit torch
reference is itself checked against SDPA on every case SDPA can express.
The largest errors go to the ATTN_ORACLE_REPORT summary (conftest.py).
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attn

torch.set_num_threads(1)

F64_TOL = 1e-10
F32_OUT_TOL = 2e-5
F32_GRAD_TOL = 1e-4
FLT_MAX = 3.4028234663852886e38

PATHS = {
    "f64": dict(dtype=np.float64, kernel="auto", out=F64_TOL, grad=F64_TOL),
    "f32": dict(dtype=np.float32, kernel="auto", out=F32_OUT_TOL, grad=F32_GRAD_TOL),
    "f32_ref": dict(dtype=np.float32, kernel="ref", out=F32_OUT_TOL, grad=F32_GRAD_TOL),
}


# ---- inputs -----------------------------------------------------------------------

def layout_array(rng, shape, layout):
    """A float64 array of logical shape [B, S, H, D] with the given memory layout:
    bshd (contiguous), bhsd (a contiguous BHSD buffer seen as BSHD, like
    torch.permute), padded (a slice of a buffer with a wider last dim)."""
    B, S, H, D = shape
    if layout == "bshd":
        return rng.standard_normal(shape)
    if layout == "bhsd":
        a = rng.standard_normal((B, H, S, D)).transpose(0, 2, 1, 3)
        assert not a.flags.c_contiguous or S == 1 or H == 1
        return a
    if layout == "padded":
        return rng.standard_normal((B, S, H, D + 5))[..., :D]
    raise ValueError(layout)


def resolve(shape, dims):
    return tuple(dims[d] if isinstance(d, str) else d for d in shape)


def to_torch_bhsd(x, grad=True):
    t = torch.tensor(np.ascontiguousarray(x.transpose(0, 2, 1, 3)), dtype=torch.float64)
    return t.requires_grad_(grad)


def from_torch_bhsd(t):
    return t.detach().numpy().transpose(0, 2, 1, 3)


# ---- the torch reference -------------------------------------------------------------

def aligned_rows(B, Sq, Sk, opts):
    """i' per batch, [B, 1, Sq, 1]: i, or i + Lk - Lq for bottom-right alignment."""
    i = torch.arange(Sq)
    out = []
    for b in range(B):
        lq = opts["q_lens"][b] if opts.get("q_lens") is not None else Sq
        lk = opts["k_lens"][b] if opts.get("k_lens") is not None else Sk
        shift = lk - lq if opts.get("align", "top_left") == "bottom_right" else 0
        out.append(i + shift)
    return torch.stack(out)[:, None, :, None]


def visible_mask(B, Hq, Sq, Sk, opts):
    """[B, Hq, Sq, Sk] bool from the header's definitions of lengths, causal, window,
    boolean mask and -FLT_MAX bias."""
    i = torch.arange(Sq)[None, None, :, None]
    j = torch.arange(Sk)[None, None, None, :]
    ql = torch.tensor(opts["q_lens"] if opts.get("q_lens") is not None else [Sq] * B)
    kl = torch.tensor(opts["k_lens"] if opts.get("k_lens") is not None else [Sk] * B)
    ia = aligned_rows(B, Sq, Sk, opts)
    vis = (i < ql[:, None, None, None]) & (j < kl[:, None, None, None])
    if opts.get("causal"):
        vis = vis & (j <= ia)
    left, right = opts.get("window", (-1, -1))
    if left >= 0:
        vis = vis & (j >= ia - left)
    if right >= 0:
        vis = vis & (j <= ia + right)
    if opts.get("mask") is not None:
        vis = vis & torch.from_numpy(np.asarray(opts["mask"], dtype=bool))
    if opts.get("bias") is not None:
        vis = vis & (torch.from_numpy(np.asarray(opts["bias"])) > -FLT_MAX)
    return vis.expand(B, Hq, Sq, Sk)


def explicit_reference(q, k, v, bias_t, opts, keep=None):
    """Explicit float64 softmax attention on BHSD torch tensors. Returns (o, lse, p, pd)
    with p the softmax and pd the weights applied to V (after dropout)."""
    B, Hq, Sq, Dk = q.shape
    Hkv, Sk = k.shape[1], k.shape[2]
    g = Hq // Hkv
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    scale = opts.get("scale")
    if scale is None:
        scale = 1.0 / math.sqrt(Dk)
    s = scale * (q @ k.transpose(-1, -2))
    cap = opts.get("softcap", 0.0)
    if cap > 0:
        s = cap * torch.tanh(s / cap)
    if bias_t is not None:
        s = s + bias_t
    if opts.get("alibi") is not None:
        slopes = torch.tensor(opts["alibi"], dtype=torch.float64)[None, :, None, None]
        ia = aligned_rows(B, Sq, Sk, opts)
        j = torch.arange(Sk)[None, None, None, :]
        s = s - slopes * (ia - j).abs().to(torch.float64)
    vis = visible_mask(B, Hq, Sq, Sk, opts)
    s = s.masked_fill(~vis, -math.inf)
    lse = torch.logsumexp(s, dim=-1)
    any_visible = vis.any(dim=-1)
    lse_safe = torch.where(any_visible, lse, torch.zeros_like(lse))
    p = torch.exp(s - lse_safe[..., None])  # masked: exp(-inf) = 0; empty row: all 0
    pd = p
    if keep is not None:
        pd = p * torch.from_numpy(keep).to(torch.float64) / (1.0 - opts["dropout_p"])
    return pd @ v, lse, p, pd


def sdpa_reference(q, k, v, bias_t, opts, sdpa_mask):
    """torch's scaled_dot_product_attention for the cases it can express."""
    kw = {}
    if opts.get("scale") is not None:
        kw["scale"] = opts["scale"]
    if q.shape[1] != k.shape[1]:
        kw["enable_gqa"] = True
    if sdpa_mask == "is_causal":
        kw["is_causal"] = True
    elif sdpa_mask == "bias":
        kw["attn_mask"] = bias_t
    elif sdpa_mask is not None:
        kw["attn_mask"] = sdpa_mask
    return F.scaled_dot_product_attention(q, k, v, **kw)


# ---- comparison ------------------------------------------------------------------------

def max_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if got.size == 0:
        return 0.0
    d = np.abs(got - ref)
    return float(np.nan) if np.isnan(d).any() else float(d.max())


def check(report, cat, path, what, got, ref, tol, where):
    """Records and asserts |got - ref| <= tol * max(1, max|ref|)."""
    e = max_err(got, ref)
    report.error(cat, path, what, e)
    bound = tol * max(1.0, float(np.abs(ref).max()) if np.size(ref) else 1.0)
    assert e <= bound, "%s %s %s: max|err| = %.3e > %.3e" % (where, path, what, e, bound)


def check_lse(report, cat, path, got, ref, tol, where):
    ninf_ref = np.isneginf(ref)
    assert np.array_equal(np.isneginf(got), ninf_ref), \
        "%s %s lse: -inf pattern differs from torch" % (where, path)
    assert not np.isnan(got).any(), "%s %s lse has NaN" % (where, path)
    check(report, cat, path, "lse", np.where(ninf_ref, 0.0, got), np.where(ninf_ref, 0.0, ref),
          tol, where)


# ---- the case runner ------------------------------------------------------------------------

def run_case(report, cat, *, seed, B=2, Sq=17, Sk=33, Hq=4, Hkv=4, Dk=16, Dv=16,
             layout="bshd", bias_shape=None, mask_shape=None, mask_density=0.7,
             bias_grad=False, sdpa_mask=None, use_sdpa=True, check_weights=True, **opts):
    """One oracle case. opts are attn.forward keyword options (numpy values);
    bias_shape / mask_shape ask for a random bias / bool mask of that broadcast
    shape (entries 'B', 'H', 'Sq', 'Sk' or 1). sdpa_mask: how SDPA expresses the
    masking: None (no mask), "is_causal", "bias", or a torch bool tensor.
    use_sdpa=False: the explicit torch computation is the reference."""
    rng = np.random.default_rng(seed)
    dims = {"B": B, "H": Hq, "Sq": Sq, "Sk": Sk}
    where = "[%s seed=%d B=%d Sq=%d Sk=%d Hq=%d Hkv=%d Dk=%d Dv=%d %s %s]" % (
        cat, seed, B, Sq, Sk, Hq, Hkv, Dk, Dv, layout,
        {k: v for k, v in opts.items() if k not in ("bias", "mask")})
    q = layout_array(rng, (B, Sq, Hq, Dk), layout)
    k = layout_array(rng, (B, Sk, Hkv, Dk), layout)
    v = layout_array(rng, (B, Sk, Hkv, Dv), layout)
    do = rng.standard_normal((B, Sq, Hq, Dv))
    if bias_shape is not None:
        opts["bias"] = rng.standard_normal(resolve(bias_shape, dims))
    if mask_shape is not None:
        opts["mask"] = rng.random(resolve(mask_shape, dims)) < mask_density
    keep = None
    if opts.get("dropout_p", 0.0) > 0:
        keep = attn.dropout_mask(opts.get("seed", 0), opts.get("offset", 0), opts["dropout_p"],
                                 B, Hq, Sq, Sk)
        # the case must be able to fail: some entries dropped, some kept
        assert keep.any() and not keep.all()

    # torch reference
    qt, kt, vt = to_torch_bhsd(q), to_torch_bhsd(k), to_torch_bhsd(v)
    bt = None
    if opts.get("bias") is not None:
        bt = torch.tensor(opts["bias"], dtype=torch.float64, requires_grad=bias_grad)
    o_exp, lse_ref, p_ref, pd_ref = explicit_reference(qt, kt, vt, bt, opts, keep)
    if use_sdpa:
        assert keep is None and opts.get("softcap", 0.0) == 0 and opts.get("alibi") is None
        o_ref = sdpa_reference(qt, kt, vt, bt, opts, sdpa_mask)
        # the explicit reference (used for LSE and weights) agrees with SDPA
        e = max_err(o_exp.detach().numpy(), o_ref.detach().numpy())
        assert e <= 1e-12, "%s explicit torch reference vs SDPA: %.3e" % (where, e)
    else:
        o_ref = o_exp
    leaves = [qt, kt, vt] + ([bt] if bias_grad else [])
    grads = torch.autograd.grad(o_ref, leaves, grad_outputs=to_torch_bhsd(do, grad=False))
    o_ref_np = from_torch_bhsd(o_ref)
    lse_ref_np = lse_ref.detach().numpy()
    g_ref = [from_torch_bhsd(g) for g in grads[:3]]
    db_ref = grads[3].numpy() if bias_grad else None
    p_ref_np, pd_ref_np = p_ref.detach().numpy(), pd_ref.detach().numpy()
    assert np.isfinite(o_ref_np).all() and all(np.isfinite(g).all() for g in g_ref)
    report.case(cat)

    for path, cfg in PATHS.items():
        dt = cfg["dtype"]
        a = {kk: vv for kk, vv in opts.items()}
        if a.get("bias") is not None:
            a["bias"] = np.asarray(a["bias"]).astype(dt)
        qa, ka, va, doa = (x.astype(dt) for x in (q, k, v, do))  # astype keeps the layout
        o, lse = attn.forward(qa, ka, va, kernel=cfg["kernel"], **a)
        assert o.dtype == dt and lse.dtype == dt
        assert o.shape == (B, Sq, Hq, Dv) and lse.shape == (B, Hq, Sq)
        assert not np.isnan(o).any(), "%s %s: NaN in O" % (where, path)
        check(report, cat, path, "out", o, o_ref_np, cfg["out"], where)
        check_lse(report, cat, path, lse, lse_ref_np, cfg["out"], where)

        dq, dk, dv, db = attn.backward(qa, ka, va, o, doa, lse, kernel=cfg["kernel"],
                                       want_dbias=bias_grad, **a)
        for name, got, ref in zip(("dq", "dk", "dv"), (dq, dk, dv), g_ref):
            assert got.dtype == dt
            check(report, cat, path, "grad", got, ref, cfg["grad"], where + " " + name)
        if bias_grad:
            assert db.shape == opts["bias"].shape
            check(report, cat, path, "grad", db, db_ref, cfg["grad"], where + " dbias")
        else:
            assert db is None

        if check_weights:
            w = attn.weights(qa, ka, lse, kernel=cfg["kernel"], **a)
            check(report, cat, path, "weights", w, p_ref_np, cfg["out"], where + " weights")
            if keep is not None:
                wd = attn.weights(qa, ka, lse, kernel=cfg["kernel"], with_dropout=True, **a)
                check(report, cat, path, "weights", wd, pd_ref_np, cfg["out"],
                      where + " weights(with_dropout)")
                # the weights applied to V reproduce O
                check(report, cat, path, "out",
                      np.einsum("bhij,bjhd->bihd",
                                wd.astype(np.float64),
                                np.repeat(va.astype(np.float64), Hq // Hkv, axis=2)),
                      o_ref_np, cfg["out"], where + " weights(with_dropout) @ V")
    return o_ref_np


# ---- the grid ----------------------------------------------------------------------------------

def tril_br(Sq, Sk):
    """PyTorch's bottom-right causal mask as an explicit bool mask."""
    return torch.ones(Sq, Sk).tril(diagonal=Sk - Sq).bool()


MASK_CASES = [
    dict(seed=1, B=2, Sq=17, Sk=70, mask_shape=("B", "H", "Sq", "Sk")),
    dict(seed=2, B=2, Sq=33, Sk=65, Dk=24, Dv=8, layout="bhsd", mask_shape=(1, 1, "Sq", "Sk")),
    dict(seed=3, B=3, Sq=32, Sk=64, layout="padded", mask_shape=("B", 1, 1, "Sk"),
         mask_density=0.5),
    dict(seed=4, B=1, Sq=1, Sk=9, Hq=2, Hkv=2, Dk=40, Dv=40, mask_shape=(1, "H", 1, "Sk")),
]


@pytest.mark.parametrize("case", MASK_CASES, ids=lambda c: "seed%d" % c["seed"])
def test_bool_mask(oracle_report, case):
    case = dict(case)
    rng_mask = None  # mask generated in run_case; SDPA gets the same array

    def runner():
        pass
    # SDPA needs the mask tensor; generate it here with the case's rng order by
    # letting run_case build it and passing it through sdpa_mask lazily.
    mask_shape = case.pop("mask_shape")
    density = case.pop("mask_density", 0.7)
    dims = {"B": case.get("B", 2), "H": case.get("Hq", 4), "Sq": case["Sq"], "Sk": case["Sk"]}
    mask = np.random.default_rng(1000 + case["seed"]).random(resolve(mask_shape, dims)) < density
    run_case(oracle_report, "bool_mask", mask=mask, sdpa_mask=torch.from_numpy(mask), **case)


BIAS_CASES = [
    dict(seed=11, bias_shape=("B", "H", "Sq", "Sk")),
    dict(seed=12, Sq=33, Sk=65, layout="bhsd", bias_shape=(1, 1, "Sq", "Sk")),
    dict(seed=13, B=3, Sq=20, Sk=70, Dk=8, Dv=24, bias_shape=("B", 1, 1, "Sk")),
    dict(seed=14, Sq=40, Sk=31, layout="padded", bias_shape=(1, "H", "Sq", 1)),
    dict(seed=15, Hq=6, Hkv=2, Sq=9, Sk=66, bias_shape=("B", "H", 1, "Sk")),
]


@pytest.mark.parametrize("case", BIAS_CASES, ids=lambda c: "seed%d" % c["seed"])
def test_float_bias(oracle_report, case):
    run_case(oracle_report, "float_bias", bias_grad=True, sdpa_mask="bias", **case)


@pytest.mark.parametrize("Sq,Sk", [(33, 33), (17, 70), (40, 9), (1, 65), (65, 64)])
def test_causal_top_left(oracle_report, Sq, Sk):
    run_case(oracle_report, "causal_top_left", seed=20 + Sq, Sq=Sq, Sk=Sk, causal=True,
             layout="bhsd" if Sq > Sk else "bshd", sdpa_mask="is_causal")


@pytest.mark.parametrize("Sq,Sk", [(33, 33), (17, 70), (40, 9), (1, 65), (65, 64)])
def test_causal_bottom_right(oracle_report, Sq, Sk):
    # Sq > Sk leaves the first Sq - Sk rows with no visible key: O = 0, LSE = -inf
    run_case(oracle_report, "causal_bottom_right", seed=40 + Sq, Sq=Sq, Sk=Sk, causal=True,
             align="bottom_right", sdpa_mask=tril_br(Sq, Sk), Dk=24, Dv=16)


@pytest.mark.parametrize("Hq,Hkv,causal", [(6, 2, False), (4, 1, True), (8, 4, False)])
def test_gqa(oracle_report, Hq, Hkv, causal):
    run_case(oracle_report, "gqa", seed=60 + Hq + Hkv, Hq=Hq, Hkv=Hkv, Sq=21, Sk=67,
             causal=causal, sdpa_mask="is_causal" if causal else None,
             layout="bhsd" if causal else "bshd", Dk=16, Dv=12)


@pytest.mark.parametrize("B,Sk,k_lens", [(3, 70, [70, 37, 1]), (2, 65, [64, 65]),
                                         (2, 20, [0, 13])])
def test_k_lens(oracle_report, B, Sk, k_lens):
    # key padding as a torch bool mask [B, 1, 1, Sk], True = attend
    m = torch.arange(Sk)[None, :] < torch.tensor(k_lens)[:, None]
    run_case(oracle_report, "k_lens", seed=80 + Sk, B=B, Sq=19, Sk=Sk, k_lens=k_lens,
             sdpa_mask=m[:, None, None, :])


@pytest.mark.parametrize("causal", [False, True])
def test_q_lens(oracle_report, causal):
    B, Sq, Sk = 3, 35, 40
    q_lens, k_lens = [35, 5, 0], [40, 40, 12]
    ql, kl = torch.tensor(q_lens), torch.tensor(k_lens)
    m = ((torch.arange(Sq)[None, :, None] < ql[:, None, None])
         & (torch.arange(Sk)[None, None, :] < kl[:, None, None]))
    if causal:
        m = m & torch.ones(Sq, Sk).tril().bool()
    o = run_case(oracle_report, "q_lens", seed=90 + causal, B=B, Sq=Sq, Sk=Sk, q_lens=q_lens,
                 k_lens=k_lens, causal=causal, sdpa_mask=m[:, None], layout="bhsd")
    assert np.all(o[1, 5:] == 0) and np.all(o[2] == 0)  # the oracle agrees: padding is 0


@pytest.mark.parametrize("window,align", [((8, 0), "top_left"), ((5, 3), "bottom_right"),
                                          ((-1, 2), "top_left")])
def test_sliding_window(oracle_report, window, align):
    Sq, Sk = 30, 50
    i = torch.arange(Sq)[:, None] + (Sk - Sq if align == "bottom_right" else 0)
    j = torch.arange(Sk)[None, :]
    m = torch.ones(Sq, Sk, dtype=torch.bool)
    if window[0] >= 0:
        m &= j >= i - window[0]
    if window[1] >= 0:
        m &= j <= i + window[1]
    run_case(oracle_report, "window", seed=100 + window[0] + window[1], Sq=Sq, Sk=Sk,
             window=window, align=align, sdpa_mask=m)


@pytest.mark.parametrize("softcap,scale,causal", [(2.0, None, False), (0.5, 0.7, True),
                                                  (30.0, -0.4, False)])
def test_softcap(oracle_report, softcap, scale, causal):
    run_case(oracle_report, "softcap", seed=110 + int(softcap), Sq=23, Sk=66, softcap=softcap,
             scale=scale, causal=causal, use_sdpa=False, layout="bhsd")


def alibi_slopes(H):
    return [2.0 ** (-8.0 * (h + 1) / H) for h in range(H)]


@pytest.mark.parametrize("causal,align,Sq,Sk", [(True, "top_left", 33, 33),
                                                (True, "bottom_right", 17, 70),
                                                (False, "top_left", 40, 24),
                                                (False, "bottom_right", 9, 65)])
def test_alibi(oracle_report, causal, align, Sq, Sk):
    run_case(oracle_report, "alibi", seed=120 + Sq, Sq=Sq, Sk=Sk, Hq=4, Hkv=2,
             alibi=alibi_slopes(4), causal=causal, align=align, use_sdpa=False)


@pytest.mark.parametrize("p,seed,offset,causal,Hkv", [(0.17, 7, 0, False, 4),
                                                      (0.5, 123456789, 3, True, 2),
                                                      (0.3, 2 ** 40 + 5, 2 ** 33, False, 1)])
def test_dropout(oracle_report, p, seed, offset, causal, Hkv):
    run_case(oracle_report, "dropout", seed=130 + Hkv, Sq=33, Sk=70, Hq=4, Hkv=Hkv,
             dropout_p=p, **{"seed": seed}, offset=offset, causal=causal, use_sdpa=False,
             layout="padded") if False else None
    # run_case's own `seed` is the data seed; the dropout seed goes in via opts
    _run_dropout(oracle_report, p, seed, offset, causal, Hkv)


def _run_dropout(report, p, dseed, offset, causal, Hkv):
    opts = dict(dropout_p=p, offset=offset, causal=causal)
    opts["seed"] = dseed
    run_case_seeded(report, "dropout", data_seed=130 + Hkv, Sq=33, Sk=70, Hq=4, Hkv=Hkv,
                    use_sdpa=False, layout="padded", **opts)


def run_case_seeded(report, cat, *, data_seed, **kw):
    """run_case with the attn option `seed` (dropout seed) kept apart from the data seed."""
    dropout_seed = kw.pop("seed", 0)
    return run_case(report, cat, seed=data_seed, _dropout_seed=dropout_seed, **kw)
