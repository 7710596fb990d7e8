"""attn.sdpa, attn.sdpa_backward and attn.sdpa_weights as an API (their numbers
are test_torch_oracle.py's): views reach C without copies, every argument is
checked with a typed error that names it, enums and their names, contexts per
thread. The C calls are observed through a spy on the package's library."""
import threading

import numpy as np
import pytest

import attn
import attn._sdpa
from attn._lib.core import Tensor


class _Spy:
    """The library of attn._sdpa, recording the tensor views of each call."""

    def __init__(self, lib):
        self._lib, self.calls = lib, []

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def attn_sdpa_forward(self, ctx, *args):
        views = [Tensor.from_address(a) for a in (args[0], args[1], args[2], args[4])]
        self.calls.append([(t.data, list(t.dim), list(t.stride)) for t in views])
        return self._lib.attn_sdpa_forward(ctx, *args)


def _qkv(rng, B=2, Sq=5, Sk=7, Hq=4, Hkv=2, D=8, dtype=np.float32):
    return (rng.standard_normal((B, Sq, Hq, D)).astype(dtype),
            rng.standard_normal((B, Sk, Hkv, D)).astype(dtype),
            rng.standard_normal((B, Sk, Hkv, D)).astype(dtype))


def test_views_reach_c_without_copies(monkeypatch):
    """A BHSD buffer seen as BSHD, packed QKV and a window of a KV cache: the C
    call sees their addresses and their strides in elements."""
    spy = _Spy(attn._sdpa.lib)
    monkeypatch.setattr(attn._sdpa, "lib", spy)
    rng = np.random.default_rng(0)
    B, S, H, D, cache = 2, 6, 3, 4, 20
    bhsd = rng.standard_normal((B, H, S, D)).astype(np.float32)
    qkv = rng.standard_normal((B, S, 3, H, D)).astype(np.float32)
    kv_cache = rng.standard_normal((2, B, cache, H, D)).astype(np.float32)
    q = bhsd.transpose(0, 2, 1, 3)
    k, v = kv_cache[0, :, 3:3 + S], kv_cache[1, :, 3:3 + S]
    o = attn.sdpa(q, k, v)
    attn.sdpa(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
    (tq, tk, tv, to), (pq, pk, pv, _) = spy.calls
    assert tq == (bhsd.ctypes.data, [B, S, H, D], [H * S * D, D, S * D, 1])
    assert tk == (kv_cache.ctypes.data + 3 * H * D * 4, [B, S, H, D],
                  [cache * H * D, H * D, D, 1])
    assert tv[0] == kv_cache[1].ctypes.data + 3 * H * D * 4
    assert to[0] == o.ctypes.data and o.flags.c_contiguous
    assert pq[0] == qkv.ctypes.data and pk[0] == qkv.ctypes.data + H * D * 4
    assert pq[2] == [S * 3 * H * D, 3 * H * D, D, 1]


def test_zero_strides_broadcast_and_size_one_dims():
    rng = np.random.default_rng(1)
    q, k, v = _qkv(rng, B=1)
    k4 = np.broadcast_to(k, (3,) + k.shape[1:])  # stride 0 on B
    v4 = np.broadcast_to(v, (3,) + v.shape[1:])
    q4 = np.ascontiguousarray(np.broadcast_to(q, (3,) + q.shape[1:]))
    o = attn.sdpa(q4, k4, v4)
    assert np.array_equal(o[0], o[2]) and np.array_equal(o[:1], attn.sdpa(q, k, v))


def test_return_values_and_grads():
    rng = np.random.default_rng(2)
    q, k, v = _qkv(rng)
    o = attn.sdpa(q, k, v)
    o2, lse = attn.sdpa(q, k, v, return_lse=True)
    assert np.array_equal(o, o2) and lse.shape == (2, 4, 5) and lse.dtype == np.float32
    bias = rng.standard_normal((4, 1, 7)).astype(np.float32)
    o, lse = attn.sdpa(q, k, v, bias=bias, return_lse=True)
    g = attn.sdpa_backward(q, k, v, o, np.ones_like(o), lse, bias=bias, want_dbias=True)
    assert isinstance(g, attn.Grads) and g.dq.shape == q.shape and g.dk.shape == k.shape
    assert g.dv.shape == v.shape and g.dbias.shape == bias.shape
    assert attn.sdpa_backward(q, k, v, o, np.ones_like(o), lse, bias=bias).dbias is None
    w = attn.sdpa_weights(q, k, lse, bias=bias, heads=[2], rows=np.array([4, 1], np.int32))
    assert w.shape == (2, 1, 2, 7) and np.allclose(w.sum(-1), 1, atol=1e-6)


def test_lists_enum_names_and_members_are_accepted():
    rng = np.random.default_rng(3)
    q, k, v = (x.astype(np.float64) for x in _qkv(rng))
    want = attn.sdpa(q, k, v, causal=True, align="bottom_right", kernel="ref")
    assert np.array_equal(want, attn.sdpa(q.tolist(), k.tolist(), v.tolist(), causal=True,
                                          align=attn.Align.BOTTOM_RIGHT, kernel=attn.Kernel.REF))
    assert np.array_equal(want, attn.sdpa(q, k, v, causal=True, align=1, kernel=1))
    mask = (rng.random((5, 7)) < 0.5).tolist()
    assert np.array_equal(attn.sdpa(q, k, v, mask=mask), attn.sdpa(q, k, v, mask=np.array(mask)))
    assert np.array_equal(attn.sdpa(q, k, v, mask=np.array(mask, np.uint8)),
                          attn.sdpa(q, k, v, mask=np.array(mask)))


@pytest.mark.parametrize("what,error,needle", [
    ("negative-stride", attn.BadStrideError, "argument 'q' has stride -128 bytes in dim 1"),
    ("odd-stride", attn.BadStrideError, "argument 'k' has stride 6 bytes"),
    ("misaligned", attn.BadStrideError, "argument 'v' starts at an address"),
    ("half", attn.BadDtypeError, "k.dtype is F32 (1) with q.dtype F16"),
    ("int-mask", attn.BadDtypeError, "argument 'mask' has dtype int64"),
    ("bias-dtype", attn.BadDtypeError, "argument 'bias' has dtype float64"),
    ("3d", attn.ShapeMismatchError, "argument 'q' has shape (5, 4, 8); it must have 4 dims"),
    ("5d-mask", attn.ShapeMismatchError, "argument 'mask' has shape (1, 1, 1, 5, 7)"),
    ("lens", attn.ShapeMismatchError, "argument 'k_lens' has 3 entries; it needs 2 (B)"),
    ("lens-float", attn.BadDtypeError, "argument 'q_lens' has dtype float64"),
    ("alibi", attn.ShapeMismatchError, "argument 'alibi' has 2 entries; it needs 4 (Hq)"),
    ("align", attn.BadParamError, "argument 'align' is 'middle'"),
    ("kernel", attn.BadParamError, "argument 'kernel' is 'gpu'"),
    ("threads", attn.BadParamError, "argument 'threads' is -1"),
    ("window", attn.BadParamError, "argument 'window' is 3"),
    ("scale", attn.BadParamError, "argument 'scale' is 'big'"),
    ("c-dtype", attn.BadDtypeError, "k.dtype"),
    ("c-heads", attn.BadHeadsError, "Hq"),
    ("c-dropout", attn.BadParamError, "dropout_p"),
])
def test_bad_arguments_raise_typed_errors(what, error, needle):
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng)
    kw = {}
    if what == "negative-stride":
        q = q[:, ::-1]
    elif what == "odd-stride":
        k = np.lib.stride_tricks.as_strided(k.view(np.uint8)[..., :4].view(np.float32),
                                            shape=(2, 7, 2, 3), strides=(448, 64, 32, 6))
    elif what == "misaligned":
        buf = np.zeros(v.size * 4 + 2, np.uint8)[2:]
        v = np.frombuffer(buf, np.float32).reshape(v.shape)
    elif what == "half":
        q = q.astype(np.float16)
    elif what == "int-mask":
        kw["mask"] = np.ones((5, 7), np.int64)
    elif what == "bias-dtype":
        kw["bias"] = np.zeros((5, 7))
    elif what == "3d":
        q = q[0]
    elif what == "5d-mask":
        kw["mask"] = np.ones((1, 1, 1, 5, 7), bool)
    elif what == "lens":
        kw["k_lens"] = [1, 2, 3]
    elif what == "lens-float":
        kw["q_lens"] = [1.0, 2.0]
    elif what == "alibi":
        kw["alibi"] = [0.1, 0.2]
    elif what == "align":
        kw["align"] = "middle"
    elif what == "kernel":
        kw["kernel"] = "gpu"
    elif what == "threads":
        kw["threads"] = -1
    elif what == "window":
        kw["window"] = 3
    elif what == "scale":
        kw["scale"] = "big"
    elif what == "c-dtype":
        k = k.astype(np.float64)
    elif what == "c-heads":
        k, v = _qkv(rng, Hkv=3)[1:]
    elif what == "c-dropout":
        kw["dropout_p"] = 1.5
    with pytest.raises(error) as ei:
        attn.sdpa(q, k, v, **kw)
    assert needle in ei.value.message, ei.value.message
    assert ei.value.name == "ATTN_" + ei.value.status.name


def test_backward_and_weights_check_their_own_arguments():
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng)
    o, lse = attn.sdpa(q, k, v, return_lse=True)
    with pytest.raises(attn.BadParamError, match="want_dbias=True needs a bias"):
        attn.sdpa_backward(q, k, v, o, o, lse, want_dbias=True)
    with pytest.raises(attn.ShapeMismatchError, match="argument 'lse' has shape"):
        attn.sdpa_backward(q, k, v, o, o, lse[..., None])
    with pytest.raises(attn.BadDtypeError, match="argument 'heads' has dtype float64"):
        attn.sdpa_weights(q, k, lse, heads=[0.5])


def test_contexts_per_thread_give_the_same_bits():
    rng = np.random.default_rng(6)
    q, k, v = _qkv(rng, B=3, Sq=40, Sk=50)
    want = attn.sdpa(q, k, v, causal=True, threads=1)
    results = [None] * 4

    def run(i):
        results[i] = attn.sdpa(q, k, v, causal=True, threads=1 + i % 2)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, want) for r in results)


def test_kept_buffers_and_trim_memory(monkeypatch):
    """Buffers of 32 MiB and more are kept by the thread's context between calls
    (docs/design.md; here K and V packed, 32 MiB): repeated calls and a call
    after attn.trim_memory() give the same bits, and trim_memory frees through
    attn_ctx_trim on each of the calling thread's contexts."""
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng, B=1, Sq=8192, Sk=8192, Hq=8, Hkv=8, D=64)
    first = attn.sdpa(q, k, v, window=(127, 0), threads=2)
    again = attn.sdpa(q, k, v, window=(127, 0), threads=2)
    trimmed = []
    real = attn._lib.core.lib

    class _Lib:
        def __getattr__(self, name):
            return getattr(real, name)

        def attn_ctx_trim(self, handle):
            trimmed.append(handle)
            return real.attn_ctx_trim(handle)

    monkeypatch.setattr(attn._lib.core, "lib", _Lib())
    attn.trim_memory()
    monkeypatch.undo()
    assert len(trimmed) >= 1
    after = attn.sdpa(q, k, v, window=(127, 0), threads=2)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, after)
