"""attn_nn_mha_forward / backward against torch.nn.MultiheadAttention with the
same weights: self- and cross-attention, packed (in_proj_weight) and separate
(kdim, vdim != embed_dim) projections, key-padding and causal masks, and the
need_weights / average_attn_weights outputs; gradients of the inputs and of
every projection weight and bias."""
import ctypes as C

import numpy as np
import pytest
import torch

from attn._lib.core import check, context
from attn._lib.nn import Mha, MhaOpts, MhaSaved
from attn._lib.nn import lib as L

F32P = C.POINTER(C.c_float)


def ptr(a):
    return a.ctypes.data_as(F32P)


CASES = [
    # name, E, H, kdim, B, Sq, Sk, self_attention, causal, padding
    ("self-packed-padding", 32, 4, 32, 2, 7, 7, True, False, True),
    ("self-packed-causal", 32, 4, 32, 2, 9, 9, True, True, False),
    ("cross-packed-padding", 24, 3, 24, 3, 5, 8, False, False, True),
    ("cross-separate-kdim", 32, 4, 20, 2, 6, 11, False, False, True),
]


@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mha_matches_torch(case, average):
    name, E, H, kd, B, Sq, Sk, is_self, causal, padding = case
    torch.manual_seed(len(name) * 7 + int(average))
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True, kdim=kd, vdim=kd)
    with torch.no_grad():  # non-zero biases, so their gradients matter
        for n, p in mha.named_parameters():
            if "bias" in n:
                p.normal_(0, 0.1)
    packed = mha._qkv_same_embed_dim
    assert packed == (kd == E)
    rng = np.random.default_rng(1)
    q = rng.standard_normal((B, Sq, E)).astype(np.float32)
    kv = q if is_self else rng.standard_normal((B, Sk, kd)).astype(np.float32)
    lens = np.array([Sk - i * 2 for i in range(B)], np.int64) if padding else None
    keep = (np.arange(Sk)[None, :] < lens[:, None]).astype(np.uint8) if padding else None

    # torch
    tq = torch.from_numpy(q.copy()).requires_grad_()
    tkv = tq if is_self else torch.from_numpy(kv.copy()).requires_grad_()
    kpm = torch.from_numpy(keep == 0) if padding else None
    mask = torch.nn.Transformer.generate_square_subsequent_mask(Sq) if causal else None
    out, w = mha(tq, tkv, tkv, key_padding_mask=kpm, need_weights=True, attn_mask=mask,
                 average_attn_weights=average)
    g = torch.from_numpy(rng.standard_normal(out.shape).astype(np.float32))
    (out * g).sum().backward()

    # attn
    params = {n: p.detach().numpy().copy() for n, p in mha.named_parameters()}
    grads = {n: np.zeros_like(v) for n, v in params.items()}
    m = Mha(E, H, H, E // H, kd, kd, int(packed))
    for n in params:
        field = n.replace("out_proj.weight", "out_proj_weight").replace("out_proj.bias", "out_proj_bias")
        setattr(m, field, ptr(params[n]))
        setattr(m, "d_" + field, ptr(grads[n]))
    o = MhaOpts()
    o.causal = int(causal)
    if padding:
        o.key_keep = keep.ctypes.data_as(C.POINTER(C.c_uint8))
    ctx = context(2)
    res = np.zeros((B, Sq, E), np.float32)
    wshape = (B, Sq, Sk) if average else (B, H, Sq, Sk)
    wts = np.zeros(wshape, np.float32)
    saved = MhaSaved()
    check(L.attn_nn_mha_forward(ctx, C.byref(m), ptr(q), ptr(kv), B, Sq, Sk, C.byref(o), ptr(res),
                                ptr(wts), int(average), C.byref(saved)))
    dq = np.zeros_like(q)
    dkv = dq if is_self else np.zeros_like(kv)
    gn = g.numpy().copy()
    check(L.attn_nn_mha_backward(ctx, C.byref(m), ptr(q), ptr(kv), C.byref(o), C.byref(saved),
                                 ptr(gn), ptr(dq), ptr(dkv)))
    L.attn_nn_mha_saved_free(C.byref(saved))

    errs = {"out": np.abs(res - out.detach().numpy()).max(),
            "weights": np.abs(wts - w.detach().numpy()).max(),
            "d_query": np.abs(dq - tq.grad.numpy()).max()}
    if not is_self:
        errs["d_kv"] = np.abs(dkv - tkv.grad.numpy()).max()
    for n, p in mha.named_parameters():
        errs["d_" + n] = np.abs(grads[n] - p.grad.numpy()).max() / max(1e-6, np.abs(p.grad.numpy()).max())
    print(f"\n{name} average={average}: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    assert errs["out"] <= 1e-5 and errs["weights"] <= 1e-6
    assert errs["d_query"] <= 1e-5
    assert all(v <= 2e-5 for k, v in errs.items() if k.startswith("d_"))
