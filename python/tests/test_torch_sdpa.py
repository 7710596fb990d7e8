"""attn.torch against PyTorch 2.13's torch.nn.functional.scaled_dot_product_attention.

  * outputs and gradients (q, k, v, float attn_mask) against F.sdpa on the same
    arguments: masks of every broadcast shape, causal with L < S, L = S, L > S,
    scale, GQA, batch and head broadcasting, 2-d to 5-d inputs, views of a
    packed QKV projection; float64 to 1e-12, float32 to 2e-5 (outputs) and 1e-4
    (gradients);
  * torch.autograd.gradcheck in float64, with attn's options too (window,
    alignment, lengths, soft-capping, ALiBi, dropout with a fixed seed);
  * attn's options give the bits of attn.sdpa (the NumPy front end);
  * no copies: the C call sees the caller's memory and strides;
  * the operator passes torch.library.opcheck (schema, fake, autograd);
  * torch.compile traces a model with no graph break, and a small model trains
    50 steps with attn and with PyTorch's SDPA to the same losses (1e-5),
    eagerly and compiled;
  * bad input raises typed errors naming the argument.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import attn
import attn.torch as at
from attn._lib.core import Tensor

torch.set_num_threads(1)

TOL = {torch.float64: (1e-12, 1e-10), torch.float32: (2e-5, 1e-4)}  # (out, grad)


def rand(*shape, dtype=torch.float64, grad=True, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else sum(shape))
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)


def keep_a_key(mask):
    """A bool mask with key 0 visible to every query (PyTorch gives NaN for a
    row that sees no key; attn gives 0)."""
    mask = mask.clone()
    mask[..., 0] = True
    return mask


def compare(q, k, v, dtype, **kw):
    """attn.torch vs F.sdpa: outputs and the gradients of every input that asks."""
    got = at.scaled_dot_product_attention(q, k, v, **kw)
    want = F.scaled_dot_product_attention(q, k, v, **kw)
    assert got.shape == want.shape and got.dtype == want.dtype
    out_tol, grad_tol = TOL[dtype]
    assert (got - want).abs().max().item() <= out_tol
    leaves = [t for t in (q, k, v, kw.get("attn_mask")) if t is not None and t.requires_grad]
    do = torch.randn_like(want)
    g1 = torch.autograd.grad(got, leaves, do)
    g2 = torch.autograd.grad(want, leaves, do)
    for a, b in zip(g1, g2):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= grad_tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [
    "plain", "causal-square", "causal-wide", "causal-tall", "scale", "dv", "bool-LS",
    "bool-B1LS", "bool-1H1S", "float-LS", "float-BHLS", "float-1H1S", "gqa", "mqa-broadcast",
    "batch-broadcast", "3d", "2d", "5d", "packed-qkv"])
def test_matches_torch_sdpa(case, dtype):
    B, H, L, S, E = 2, 4, 9, 13, 16

    def r(*shape, grad=True):
        return rand(*shape, dtype=dtype, grad=grad)
    q, k, v = r(B, H, L, E), r(B, H, S, E), r(B, H, S, E)
    kw = {}
    if case == "causal-square":
        q, k, v, kw = r(B, H, L, E), r(B, H, L, E), r(B, H, L, E), dict(is_causal=True)
    elif case == "causal-wide":
        kw = dict(is_causal=True)
    elif case == "causal-tall":
        q, k, v, kw = r(B, H, S, E), r(B, H, L, E), r(B, H, L, E), dict(is_causal=True)
    elif case == "scale":
        kw = dict(scale=0.37)
    elif case == "dv":
        v = r(B, H, S, 7)
    elif case.startswith("bool"):
        shape = {"bool-LS": (L, S), "bool-B1LS": (B, 1, L, S), "bool-1H1S": (1, H, 1, S)}[case]
        kw = dict(attn_mask=keep_a_key(torch.rand(*shape) < 0.6))
    elif case.startswith("float"):
        shape = {"float-LS": (L, S), "float-BHLS": (B, H, L, S), "float-1H1S": (1, H, 1, S)}[case]
        kw = dict(attn_mask=r(*shape))
    elif case == "gqa":
        q, k, v, kw = r(B, 8, L, E), r(B, 2, S, E), r(B, 2, S, E), dict(enable_gqa=True)
    elif case == "mqa-broadcast":
        k, v = r(B, 1, S, E), r(B, 1, S, E)
    elif case == "batch-broadcast":
        k, v = r(1, H, S, E), r(1, H, S, E)
    elif case == "3d":
        q, k, v = r(H, L, E), r(H, S, E), r(H, S, E)
    elif case == "2d":
        q, k, v = r(L, E), r(S, E), r(S, E)
    elif case == "5d":
        q, k, v = r(2, 3, H, L, E), r(2, 3, H, S, E), r(1, 3, H, S, E)
    elif case == "packed-qkv":
        x = r(B, L, 3 * H * E)
        q, k, v = x.view(B, L, 3, H, E).permute(2, 0, 3, 1, 4)
        assert not q.is_contiguous()
    compare(q, k, v, dtype, **kw)


HALF_UNIT = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", ["plain", "causal", "bool", "float", "gqa"])
def test_half_precision_tensors(case, dtype):
    """bfloat16/float16 tensors: attn's output and gradients are within 2x
    (outputs) / 3x (gradients) of PyTorch's own error in that dtype (SDPA's
    math backend), measured against float64 on the same rounded inputs, plus
    a quarter unit of the dtype at the reference's scale."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    B, H, L, S, E = 2, 4, 19, 37, 32
    Hk = 2 if case == "gqa" else H
    x = [rand(B, n, s, E, grad=False, seed=i).to(dtype)
         for i, (n, s) in enumerate(((H, L), (Hk, S), (Hk, S)))]
    kw = dict(enable_gqa=True) if case == "gqa" else {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool":
        kw["attn_mask"] = keep_a_key(torch.rand(L, S, generator=torch.Generator().manual_seed(3)) < 0.6)
    elif case == "float":
        kw["attn_mask"] = rand(1, H, L, S, grad=False, seed=4).to(dtype)
    do = rand(B, H, L, E, grad=False, seed=5).to(dtype)

    def run(f, dt):
        leaves = [t.to(dt).requires_grad_(True) for t in x]
        args = dict(kw)
        if "attn_mask" in args and args["attn_mask"].is_floating_point():
            args["attn_mask"] = args["attn_mask"].to(dt)
        with sdpa_kernel(SDPBackend.MATH):
            o = f(*leaves, **args)
        return [o] + list(torch.autograd.grad(o, leaves, do.to(dt)))

    ref = run(F.scaled_dot_product_attention, torch.float64)
    base = run(F.scaled_dot_product_attention, dtype)
    got = run(at.scaled_dot_product_attention, dtype)
    assert got[0].dtype == dtype and got[1].dtype == dtype
    for i, (g, b, r) in enumerate(zip(got, base, ref)):
        err = (g.double() - r).abs().max().item()
        base_err = (b.double() - r).abs().max().item()
        floor = 0.25 * HALF_UNIT[dtype] * max(1.0, r.abs().max().item())
        assert err <= (2 if i == 0 else 3) * base_err + floor, (case, dtype, i, err, base_err)


@pytest.mark.parametrize("opts", [
    dict(is_causal=True),
    dict(attn_mask="float"),
    dict(enable_gqa=True),
    dict(window=(3, 1), align="bottom_right", softcap=2.0, alibi=[0.5, 0.25, 0.125, 0.0625]),
    dict(q_lens=[7, 0], k_lens=[9, 4], is_causal=True),
    dict(dropout_p=0.3, seed=5),
], ids=["causal", "float-mask", "gqa", "window-softcap-alibi", "lengths", "dropout"])
def test_gradcheck_float64(opts):
    B, H, L, S, E = 2, 4, 7, 9, 5
    q, k, v = rand(B, H, L, E), rand(B, H, S, E), rand(B, H, S, E)
    if opts.get("enable_gqa"):
        k, v = rand(B, 2, S, E), rand(B, 2, S, E)
    inputs = [q, k, v]
    if opts.get("attn_mask") == "float":
        inputs.append(rand(1, H, L, S))
        opts = dict(opts)
        del opts["attn_mask"]

    def f(q, k, v, *mask):
        return at.scaled_dot_product_attention(q, k, v, *mask, **opts)
    assert torch.autograd.gradcheck(f, inputs)


def test_options_give_the_bits_of_the_numpy_front_end():
    B, H, L, S, E = 2, 4, 6, 11, 8
    q, k, v = (rand(B, H, n, E, grad=False) for n in (L, S, S))
    opts = dict(window=(4, 2), align="bottom_right", q_lens=[6, 3], k_lens=[11, 8],
                softcap=3.0, alibi=[0.3, 0.2, 0.1, 0.05])
    got = at.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.2, seed=99,
                                          **opts)
    bshd = [t.transpose(1, 2).numpy() for t in (q, k, v)]
    want = attn.sdpa(*bshd, causal=True, dropout_p=0.2, seed=99, **opts)
    assert np.array_equal(got.transpose(1, 2).numpy(), want)


class _Spy:
    """attn.torch's library, recording the q, k, v views of each forward call."""

    def __init__(self, lib):
        self._lib, self.calls = lib, []

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def attn_sdpa_forward(self, ctx, q, k, v, params, o, lse):
        views = [Tensor.from_address(t) for t in (q, k, v, o)]  # the structs' addresses
        self.calls.append([(t.data, list(t.dim), list(t.stride)) for t in views])
        return self._lib.attn_sdpa_forward(ctx, q, k, v, params, o, lse)


def test_no_copies(monkeypatch):
    """q, k, v sliced from one packed projection reach C as they are: the same
    addresses, their strides in [B, S, H, D] order; the output is written in
    [B, S, H, D] memory and returned as the [B, H, S, D] view."""
    spy = _Spy(at.lib)
    monkeypatch.setattr(at, "lib", spy)
    B, S, H, D = 2, 5, 3, 4
    x = torch.randn(B, S, 3 * H * D)
    q, k, v = x.view(B, S, 3, H, D).permute(2, 0, 3, 1, 4)
    out = at.scaled_dot_product_attention(q, k, v)
    (tq, tk, tv, to), = spy.calls
    row = 3 * H * D
    assert tq == (x.data_ptr(), [B, S, H, D], [S * row, row, D, 1])
    assert tk[0] == x.data_ptr() + H * D * 4 and tv[0] == x.data_ptr() + 2 * H * D * 4
    assert to[0] == out.data_ptr() and to[2] == [S * H * D, H * D, D, 1]
    assert out.shape == (B, H, S, D) and out.transpose(1, 2).is_contiguous()


def test_dropout_seeds():
    q, k, v = (rand(1, 2, 8, 4, grad=False) for _ in range(3))
    with_seed = [at.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=3)
                 for _ in range(2)]
    assert torch.equal(*with_seed)
    torch.manual_seed(0)
    a = at.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    b = at.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(0)
    c = at.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_opcheck():
    """The schema, the fake implementation and the autograd registration agree
    with the real operator (torch.library.opcheck)."""
    q, k, v = rand(2, 4, 5, 8), rand(2, 2, 7, 8), rand(2, 2, 7, 8)
    bias = rand(1, 4, 5, 7)
    lens = torch.tensor([5, 3])
    for args in [(q, k, v, None, None, None, None, None, None, None, 0.0, True, 0, -1, -1,
                  0.0, 1),
                 (q, k, v, None, bias, lens, lens + 2, None, None, 0.5, 0.0, False, 1, 2, 1,
                  0.0, 2)]:
        torch.library.opcheck(torch.ops.attn.sdpa.default, args)


class _Block(nn.Module):
    """Embedding, a pre-norm causal self-attention block, and a vocabulary head."""

    def __init__(self, sdpa, vocab=50, d=32, heads=4):
        super().__init__()
        self.sdpa, self.heads = sdpa, heads
        self.emb = nn.Embedding(vocab, d)
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.out = nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.emb(ids)
        B, S, D = x.shape
        q, k, v = self.qkv(self.norm(x)).view(B, S, 3, self.heads, D // self.heads) \
            .permute(2, 0, 3, 1, 4)
        y = self.sdpa(q, k, v, is_causal=True)
        return self.out(x + self.proj(y.transpose(1, 2).reshape(B, S, D)))


def test_compile_has_no_graph_break():
    model = _Block(at.scaled_dot_product_attention)
    ids = torch.randint(0, 50, (2, 12))
    explain = torch._dynamo.explain(model)(ids)
    assert explain.graph_count == 1 and explain.graph_break_count == 0
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    got = compiled(ids)
    got.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    want = model(ids)
    want.sum().backward()
    assert torch.equal(got, want)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters()))


def _train(model, steps=50):
    torch.manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        ids = torch.randint(0, 50, (4, 24))
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 50), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _model(sdpa):
    torch.manual_seed(0)
    return _Block(sdpa)


def test_training_matches_torch_sdpa(capsys):
    """50 AdamW steps of the same model and data: attn's SDPA and PyTorch's give
    the same losses to 1e-5, eagerly and under torch.compile (inductor)."""
    want = _train(_model(F.scaled_dot_product_attention))
    eager = _train(_model(at.scaled_dot_product_attention))
    compiled = _train(torch.compile(_model(at.scaled_dot_product_attention), fullgraph=True))
    d_eager = max(abs(a - b) for a, b in zip(eager, want))
    d_compiled = max(abs(a - b) for a, b in zip(compiled, want))
    with capsys.disabled():
        print("\n50 training steps, loss %.4f -> %.4f; largest |attn - torch| loss "
              "difference: eager %.2e, compiled %.2e" % (want[0], want[-1], d_eager, d_compiled))
    assert want[-1] < want[0] - 0.1  # it learns
    assert d_eager <= 1e-5 and d_compiled <= 1e-5


# ---- bad input -------------------------------------------------------------------------------

def _qkv(dtype=torch.float32, **shapes):
    dims = dict(q=(2, 4, 5, 8), k=(2, 4, 7, 8), v=(2, 4, 7, 8))
    dims.update(shapes)
    return [torch.zeros(*dims[n], dtype=dtype) for n in ("q", "k", "v")]


@pytest.mark.parametrize("what,error,needle", [
    ("meta-device", attn.UnsupportedError, "'query' is on meta"),
    ("half-key", attn.BadDtypeError, "'key' has dtype torch.float16"),
    ("bf16-query", attn.BadDtypeError, "must match query's torch.bfloat16"),
    ("int-query", attn.BadDtypeError, "'query' has dtype torch.int64"),
    ("mixed", attn.BadDtypeError, "'value' has dtype torch.float64"),
    ("not-a-tensor", attn.BadDtypeError, "'key' is a list"),
    ("sparse", attn.BadStrideError, "'query' has layout torch.sparse_coo"),
    ("head-dim", attn.ShapeMismatchError, "key's last dim is 6"),
    ("positions", attn.ShapeMismatchError, "value has 6 positions"),
    ("batch", attn.ShapeMismatchError, "do not broadcast"),
    ("gqa-heads", attn.BadHeadsError, "query has 4 heads, key 3"),
    ("mask-shape", attn.ShapeMismatchError, "attn_mask has shape (5, 6)"),
    ("mask-dtype", attn.BadDtypeError, "attn_mask has dtype torch.int32"),
    ("mask-float64", attn.BadDtypeError, "attn_mask has dtype torch.float64"),
    ("mask-device", attn.UnsupportedError, "'attn_mask' is on meta"),
    ("lens", attn.ShapeMismatchError, "'k_lens' has 3 entries; it needs 2"),
    ("scale-nan", attn.BadParamError, "scale"),
    ("dropout-1", attn.BadParamError, "dropout"),
    ("window", attn.BadParamError, "window"),
])
def test_bad_input_raises_typed_errors(what, error, needle):
    q, k, v = _qkv()
    kw = {}
    if what == "meta-device":
        q = q.to("meta")
    elif what == "half-key":
        k = k.half()
    elif what == "bf16-query":
        q = q.bfloat16()
    elif what == "int-query":
        q = q.long()
    elif what == "mixed":
        v = v.double()
    elif what == "not-a-tensor":
        k = k.tolist()
    elif what == "sparse":
        q = q.to_sparse()
    elif what == "head-dim":
        k = torch.zeros(2, 4, 7, 6)
    elif what == "positions":
        v = torch.zeros(2, 4, 6, 8)
    elif what == "batch":
        k, v = torch.zeros(3, 4, 7, 8), torch.zeros(3, 4, 7, 8)
    elif what == "gqa-heads":
        k, v = torch.zeros(2, 3, 7, 8), torch.zeros(2, 3, 7, 8)
        kw = dict(enable_gqa=True)
    elif what == "mask-shape":
        kw = dict(attn_mask=torch.ones(5, 6, dtype=torch.bool))
    elif what == "mask-dtype":
        kw = dict(attn_mask=torch.ones(5, 7, dtype=torch.int32))
    elif what == "mask-float64":
        kw = dict(attn_mask=torch.zeros(5, 7, dtype=torch.float64))
    elif what == "mask-device":
        kw = dict(attn_mask=torch.ones(5, 7, dtype=torch.bool, device="meta"))
    elif what == "lens":
        kw = dict(k_lens=[1, 2, 3])
    elif what == "scale-nan":
        kw = dict(scale=float("nan"))
    elif what == "dropout-1":
        kw = dict(dropout_p=1.0, seed=1)
    elif what == "window":
        kw = dict(window=(1, 2, 3))
    with pytest.raises(error) as ei:
        at.scaled_dot_product_attention(q, k, v, **kw)
    assert needle in str(ei.value)


@pytest.mark.parametrize("what,error,needle", [
    ("5d", attn.ShapeMismatchError, "'q' has shape (1, 2, 4, 5, 8)"),
    ("lens", attn.ShapeMismatchError, "'q_lens' must hold 2 contiguous"),
    ("alibi", attn.ShapeMismatchError, "'alibi' must hold 4 contiguous"),
    ("heads", attn.BadHeadsError, "Hq"),
    ("mask-5d", attn.ShapeMismatchError, "'mask' has shape (1, 1, 1, 5, 7)"),
    ("bias-half", attn.BadDtypeError, "params.bias.dtype is F16"),
])
def test_operator_checks_its_arguments(what, error, needle):
    """torch.ops.attn.sdpa called directly: typed errors, never a crash."""
    q, k, v = _qkv()
    extra = [None] * 6
    if what == "5d":
        q = q[None]
    elif what == "lens":
        extra[2] = torch.tensor([1, 2, 3])
    elif what == "alibi":
        extra[4] = torch.ones(3, dtype=torch.float64)
    elif what == "heads":
        k, v = torch.zeros(2, 3, 7, 8), torch.zeros(2, 3, 7, 8)
    elif what == "mask-5d":
        extra[0] = torch.ones(1, 1, 1, 5, 7, dtype=torch.bool)
    elif what == "bias-half":
        extra[1] = torch.zeros(5, 7, dtype=torch.float16)
    with pytest.raises(error) as ei:
        torch.ops.attn.sdpa(q, k, v, *extra, None, 0.0, False, 0, -1, -1, 0.0, 1)
    assert needle in str(ei.value)


def test_operator_on_meta_tensors_gives_shapes():
    """Meta tensors run the fake implementation: shapes and strides, no data."""
    q, k, v = (t.to("meta") for t in _qkv(v=(2, 4, 7, 3)))
    o, lse = torch.ops.attn.sdpa(q, k, v, *[None] * 6, None, 0.0, False, 0, -1, -1, 0.0, 1)
    assert o.device.type == "meta" and o.shape == (2, 4, 5, 3) and o.stride() == (60, 3, 12, 1)
    assert lse.shape == (2, 4, 5)

