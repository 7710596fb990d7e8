"""attn.torch: attn's attention as a PyTorch operator.

scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
is_causal=False, scale=None, enable_gqa=False) has the signature and the
semantics of torch.nn.functional.scaled_dot_product_attention, plus keyword
options of attn's own (window, align, q_lens, k_lens, softcap, alibi, seed,
threads). It runs the custom operator attn::sdpa (torch.library), whose
autograd formula is attn's backward (attn::sdpa_backward) and whose fake
implementations let torch.compile trace a model through it without graph
breaks.

CPU tensors of float32, float64, float16 or bfloat16 reach C without copies: torch's
[B, H, S, D] tensors are passed as attn views [B, S, H, D] with their own
strides. The output is allocated in [B, S, H, D] memory and returned as the
[B, H, S, D] view (as PyTorch's CPU flash kernel does), so
`out.transpose(1, 2).reshape(B, S, H * D)` costs nothing. Other devices and
dtypes raise attn.UnsupportedError / attn.BadDtypeError naming the argument.

Differences from PyTorch: the dropout mask is attn's (Philox of seed, offset,
b, h, i, j), not torch's; a query row that sees no key gives 0, never NaN; and
is_causal may be combined with attn_mask (both apply), where PyTorch refuses.
"""
import math
from typing import Any, Callable, List, NoReturn, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ._lib.core import CallArgs, call_args, check, context, lib
from ._sdpa import make_params
from .enums import Align, DType, enum_value
from .errors import (BadDtypeError, BadHeadsError, BadParamError, BadStrideError,
                     ShapeMismatchError, UnsupportedError)

__all__ = ["scaled_dot_product_attention"]

_DTYPES = {torch.float32: DType.F32, torch.float64: DType.F64, torch.bool: DType.BOOL,
           torch.uint8: DType.BOOL, torch.float16: DType.F16, torch.bfloat16: DType.BF16}
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_U64 = 0xFFFFFFFFFFFFFFFF


# ---- torch tensors as attn views -----------------------------------------------------------

def _check_cpu(t: Tensor, fn: str, name: str) -> None:
    if not t.is_cpu:
        raise UnsupportedError("%s: argument '%s' is on %s; attn runs on CPU tensors only "
                               "(move it with .cpu())" % (fn, name, t.device))


def _pack(args: CallArgs, t: Tensor, fn: str, name: str, bhsd: bool) -> int:
    """The address of the attn view of a CPU tensor of at most 4 dims (trailing
    dims of 1 added), packed into args; bhsd: t is [B, H, S, D] and the view
    [B, S, H, D]. Torch strides are elements and never negative."""
    dtype = _DTYPES.get(t.dtype)
    if dtype is None or not t.is_cpu or t.layout != torch.strided or t.dim() > 4:
        _refuse(t, fn, name, dtype)
    shape: Tuple[int, ...] = t.shape
    strides: Tuple[int, ...] = t.stride()
    if len(shape) < 4:
        shape = tuple(shape) + (1,) * (4 - len(shape))
        strides = strides + (0,) * (4 - len(strides))
    if bhsd:
        (b, h, s, d), (sb, sh, ss, sd) = shape, strides
        return args.tensor(t.data_ptr(), dtype, (b, s, h, d), (sb, ss, sh, sd))
    return args.tensor(t.data_ptr(), dtype, shape, strides)


def _refuse(t: Tensor, fn: str, name: str, dtype: Optional[DType]) -> NoReturn:
    """Raises the error of a tensor _pack cannot view."""
    _check_cpu(t, fn, name)
    if dtype is None:
        raise BadDtypeError("%s: argument '%s' has dtype %s; attn takes float32, float64, "
                            "float16 and bfloat16 (and bool masks)" % (fn, name, t.dtype))
    if t.layout != torch.strided:
        raise BadStrideError("%s: argument '%s' has layout %s; attn views strided (dense) "
                             "tensors only" % (fn, name, t.layout))
    raise ShapeMismatchError("%s: argument '%s' has shape %s; attn views have at most 4 dims"
                             % (fn, name, tuple(t.shape)))


def _entries(t: Optional[Tensor], n: int, fn: str, name: str, dtype: torch.dtype
             ) -> Optional[int]:
    """The address of the n contiguous entries of a CPU tensor of dtype, or None."""
    if t is None:
        return None
    _check_cpu(t, fn, name)
    if t.dtype != dtype or not t.is_contiguous() or t.numel() != n:
        raise ShapeMismatchError("%s: argument '%s' must hold %d contiguous %s entries, not %s "
                                 "of %s" % (fn, name, n, dtype, tuple(t.shape), t.dtype))
    return t.data_ptr()


def _threads(threads: int) -> int:
    """-1: PyTorch's intra-op thread count (torch.get_num_threads())."""
    return torch.get_num_threads() if threads < 0 else threads


def _params(args: CallArgs, fn: str, q: Tensor, mask: Optional[Tensor], bias: Optional[Tensor],
            q_lens: Optional[Tensor], k_lens: Optional[Tensor], alibi: Optional[Tensor],
            rng: Optional[Tensor], scale: Optional[float], softcap: float, causal: bool,
            align: int, window_left: int, window_right: int, dropout_p: float) -> Optional[int]:
    """The address of the call's attn_sdpa_params in args, or None (all off)."""
    B, Hq = q.shape[0], q.shape[1]
    seed, offset = (0, 0) if rng is None else (v & _U64 for v in rng.tolist())
    window = None if window_left == window_right == -1 else (window_left, window_right)
    return make_params(
        args, fn, scale=scale, softcap=softcap, causal=causal, align=align, window=window,
        q_lens=_entries(q_lens, B, fn, "q_lens", torch.int64),
        k_lens=_entries(k_lens, B, fn, "k_lens", torch.int64),
        bias=None if bias is None else _pack(args, bias, fn, "bias", False),
        mask=None if mask is None else _pack(args, mask, fn, "mask", False),
        alibi=_entries(alibi, Hq, fn, "alibi", torch.float64),
        dropout_p=dropout_p, seed=seed, offset=offset)


def _qkv(args: CallArgs, fn: str, q: Tensor, k: Tensor, v: Tensor) -> List[int]:
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        if t.dim() != 4:
            raise ShapeMismatchError("%s: argument '%s' has shape %s; it must be 4-d "
                                     "[B, H, S, D]" % (fn, name, tuple(t.shape)))
    return [_pack(args, t, fn, n, True) for t, n in ((q, "q"), (k, "k"), (v, "v"))]


def _outputs(q: Tensor, v: Tensor, want_lse: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
    """o [B, H, Sq, Dv] in [B, Sq, H, Dv] memory and lse [B, H, Sq]; the same
    in the real and the fake implementation, so compiled graphs see the strides
    the operator returns."""
    B, H, Sq = q.shape[:3]
    Dv = v.shape[3]
    o = torch.empty_strided((B, H, Sq, Dv), (Sq * H * Dv, Dv, H * Dv, 1), dtype=q.dtype,
                            device=q.device)
    lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32  # float32 for halves
    return o, torch.empty((B, H, Sq), dtype=lse_dtype, device=q.device) if want_lse else None


def _grads(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor],
           want_dbias: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    dbias = torch.empty_like(bias) if want_dbias and bias is not None else q.new_empty(0)
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), dbias


# ---- the implementation, the operators and the autograd formula -----------------------------

def _forward(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], bias: Optional[Tensor],
             q_lens: Optional[Tensor], k_lens: Optional[Tensor], alibi: Optional[Tensor],
             rng: Optional[Tensor], scale: Optional[float], softcap: float, causal: bool,
             align: int, window_left: int, window_right: int, dropout_p: float,
             threads: int) -> Tuple[Tensor, Tensor]:
    """attn_sdpa_forward on q [B, Hq, Sq, Dk], k [B, Hkv, Sk, Dk], v [B, Hkv, Sk, Dv]
    (torch's layout); mask (bool) and bias [B|1, Hq|1, Sq|1, Sk|1]; q_lens,
    k_lens int64 [B]; alibi float64 [Hq]; rng int64 [seed, offset]; threads -1:
    torch.get_num_threads(). Returns (o [B, Hq, Sq, Dv], lse [B, Hq, Sq])."""
    return _run_forward(q, k, v, mask, bias, q_lens, k_lens, alibi, rng, scale, softcap, causal,
                        align, window_left, window_right, dropout_p, threads, want_lse=True)


def _run_forward(q, k, v, mask, bias, q_lens, k_lens, alibi, rng, scale, softcap, causal,
                 align, window_left, window_right, dropout_p, threads, *, want_lse):
    """_forward; without lse (None) when want_lse is False (no gradient to come)."""
    fn = "attn::sdpa"
    args = call_args.start()
    tq, tk, tv = _qkv(args, fn, q, k, v)
    p = _params(args, fn, q, mask, bias, q_lens, k_lens, alibi, rng, scale, softcap, causal,
                align, window_left, window_right, dropout_p)
    o, lse = _outputs(q, v, want_lse)
    to = _pack(args, o, fn, "o", True)
    tl = None if lse is None else _pack(args, lse, fn, "lse", False)
    check(lib.attn_sdpa_forward(context(_threads(threads)), tq, tk, tv, p, to, tl))
    return o, lse


def _backward(q: Tensor, k: Tensor, v: Tensor, o: Tensor, do: Tensor, lse: Tensor,
              mask: Optional[Tensor], bias: Optional[Tensor], q_lens: Optional[Tensor],
              k_lens: Optional[Tensor], alibi: Optional[Tensor], rng: Optional[Tensor],
              scale: Optional[float], softcap: float, causal: bool, align: int,
              window_left: int, window_right: int, dropout_p: float, threads: int,
              want_dbias: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """attn_sdpa_backward: (dq, dk, dv, dbias) for attn::sdpa's inputs and outputs
    and do = dL/do; dbias has the bias's shape if want_dbias, else no elements."""
    fn = "attn::sdpa_backward"
    args = call_args.start()
    views = _qkv(args, fn, q, k, v) + [_pack(args, o, fn, "o", True),
                                       _pack(args, do, fn, "do", True),
                                       _pack(args, lse, fn, "lse", False)]
    p = _params(args, fn, q, mask, bias, q_lens, k_lens, alibi, rng, scale, softcap, causal,
                align, window_left, window_right, dropout_p)
    dq, dk, dv, dbias = _grads(q, k, v, bias, want_dbias)
    outs = [_pack(args, g, fn, n, True) for g, n in ((dq, "dq"), (dk, "dk"), (dv, "dv"))]
    tdb = _pack(args, dbias, fn, "dbias", False) if want_dbias else None
    check(lib.attn_sdpa_backward(context(_threads(threads)), *views, p, *outs, tdb))
    return dq, dk, dv, dbias


sdpa_op = torch.library.custom_op("attn::sdpa", _forward, mutates_args=())
sdpa_backward_op = torch.library.custom_op("attn::sdpa_backward", _backward, mutates_args=())


@sdpa_op.register_fake
def _sdpa_fake(q, k, v, mask, bias, q_lens, k_lens, alibi, rng, scale, softcap, causal, align,
               window_left, window_right, dropout_p, threads):
    return _outputs(q, v)


@sdpa_backward_op.register_fake
def _sdpa_backward_fake(q, k, v, o, do, lse, mask, bias, q_lens, k_lens, alibi, rng, scale,
                        softcap, causal, align, window_left, window_right, dropout_p, threads,
                        want_dbias):
    return _grads(q, k, v, bias, want_dbias)


def _setup_context(ctx, inputs, output):
    q, k, v, mask, bias, q_lens, k_lens, alibi, rng = inputs[:9]
    o, lse = output
    ctx.save_for_backward(q, k, v, o, lse, mask, bias, q_lens, k_lens, alibi, rng)
    ctx.scalars = inputs[9:]
    ctx.mark_non_differentiable(lse)


def _gradients(ctx, do: Tensor, backward: Callable[..., Any]) -> tuple:
    """The gradients of attn::sdpa's 17 inputs, computed by `backward` (the
    operator attn::sdpa_backward, or its implementation in eager mode)."""
    q, k, v, o, lse, mask, bias, q_lens, k_lens, alibi, rng = ctx.saved_tensors
    want_dbias = bias is not None and ctx.needs_input_grad[4]
    dq, dk, dv, dbias = backward(q, k, v, o, do, lse, mask, bias, q_lens, k_lens, alibi, rng,
                                 *ctx.scalars, want_dbias)
    return (dq, dk, dv, None, dbias if want_dbias else None) + (None,) * 12


sdpa_op.register_autograd(lambda ctx, do, dlse: _gradients(ctx, do, sdpa_backward_op),
                          setup_context=_setup_context)


class _EagerSdpa(torch.autograd.Function):
    """attn::sdpa's formula without the operator's dispatch, for eager calls on
    plain tensors (torch.compile and tensor subclasses go through the operator)."""

    @staticmethod
    def forward(*inputs):
        return _forward(*inputs)

    setup_context = staticmethod(_setup_context)

    @staticmethod
    def backward(ctx, do, dlse):
        return _gradients(ctx, do, _backward)


def _call(*inputs: Any) -> Tensor:
    """attn::sdpa's output o: through the operator when compiling or for tensor
    subclasses; eagerly, through the same implementation without the
    dispatcher's per-call cost (with autograd only if a gradient is needed)."""
    tensors = [t for t in inputs[:5] if t is not None]
    if torch.compiler.is_compiling() or any(type(t) is not Tensor for t in tensors):
        return sdpa_op(*inputs)[0]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _EagerSdpa.apply(*inputs)[0]
    return _run_forward(*inputs, want_lse=False)[0]


# ---- the torch.nn.functional front end ----------------------------------------------------------

def _check_inputs(fn: str, query: Tensor, key: Tensor, value: Tensor) -> None:
    for t, name in ((query, "query"), (key, "key"), (value, "value")):
        if not isinstance(t, Tensor):
            raise BadDtypeError("%s: argument '%s' is a %s; it must be a torch.Tensor" %
                                (fn, name, type(t).__name__))
        if not t.is_cpu:
            _check_cpu(t, fn, name)
        if t.layout != torch.strided:
            raise BadStrideError("%s: argument '%s' has layout %s; attn takes strided (dense) "
                                 "tensors" % (fn, name, t.layout))
        if t.dtype not in _FLOATS:
            raise BadDtypeError("%s: argument '%s' has dtype %s; attn takes float32, "
                                "float64, float16 and bfloat16" % (fn, name, t.dtype))
        if t.dim() < 2:
            raise ShapeMismatchError("%s: argument '%s' has shape %s; it needs at least "
                                     "(L, E)" % (fn, name, tuple(t.shape)))
    for t, name in ((key, "key"), (value, "value")):
        if t.dtype != query.dtype:
            raise BadDtypeError("%s: argument '%s' has dtype %s; it must match query's %s" %
                                (fn, name, t.dtype, query.dtype))
    if key.shape[-1] != query.shape[-1]:
        raise ShapeMismatchError("%s: key's last dim is %d; it must equal query's (E = %d)" %
                                 (fn, key.shape[-1], query.shape[-1]))
    if value.shape[-2] != key.shape[-2]:
        raise ShapeMismatchError("%s: value has %d positions; it must have key's %d (S)" %
                                 (fn, value.shape[-2], key.shape[-2]))


def _broadcast(fn: str, *shapes: Sequence[int]) -> Tuple[int, ...]:
    """The broadcast of the batch shapes (numpy's rule: aligned from the right,
    each dim equal or 1)."""
    if shapes[0] == shapes[1] == shapes[2]:
        return tuple(shapes[0])
    n = max(len(s) for s in shapes)
    out = [1] * n
    for s in shapes:
        for i, d in enumerate(s, n - len(s)):
            if d != out[i]:
                if out[i] != 1 and d != 1:
                    raise ShapeMismatchError("%s: the batch dims %s of query, key and value do "
                                             "not broadcast" % (fn, [tuple(x) for x in shapes]))
                out[i] = max(out[i], d)
    return tuple(out)


def _to4(t: Tensor, lead: Tuple[int, ...], heads: int) -> Tensor:
    """[*lead', heads', S, D] -> [B, heads, S, D] with lead' broadcast to lead and
    heads' to heads (a dim of 1 against a larger one becomes a zero stride)."""
    shape = lead + (heads, t.shape[-2], t.shape[-1])
    if tuple(t.shape) != shape:
        t = t.expand(shape)
    if len(lead) == 1:
        return t
    return t.reshape(math.prod(lead), heads, t.shape[-2], t.shape[-1])


def _mask4(fn: str, m: Tensor, out_shape: Tuple[int, ...]) -> Tensor:
    """attn_mask broadcastable to out_shape [*lead, H, L, S] as [B|1, H|1, L|1, S|1],
    keeping its dims of 1 (so the bias gradient has its shape)."""
    given = tuple(m.shape)
    if m.dim() > len(out_shape):
        raise ShapeMismatchError("%s: attn_mask has shape %s; it has more dims than the "
                                 "attention %s" % (fn, given, out_shape))
    m = m.reshape((1,) * (len(out_shape) - m.dim()) + given)
    for n, full in zip(m.shape, out_shape):
        if n != full and n != 1:
            raise ShapeMismatchError("%s: attn_mask has shape %s; it does not broadcast to "
                                     "the attention's %s" % (fn, given, out_shape))
    lead = out_shape[:-3]
    if all(n == 1 for n in m.shape[:-3]):
        return m.reshape(1, *m.shape[-3:])
    return m.expand(*lead, *m.shape[-3:]).reshape(math.prod(lead), *m.shape[-3:])


def _ints(x, n: int, fn: str, name: str, dtype: torch.dtype) -> Tensor:
    t = torch.as_tensor(x, dtype=dtype).reshape(-1)
    if t.shape[0] != n:
        raise ShapeMismatchError("%s: argument '%s' has %d entries; it needs %d" %
                                 (fn, name, t.shape[0], n))
    return t.contiguous()


def scaled_dot_product_attention(
        query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
        dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
        enable_gqa: bool = False, *,
        window: Optional[Tuple[Optional[int], Optional[int]]] = None,
        align: Union[Align, int, str] = Align.TOP_LEFT,
        q_lens: Union[Tensor, Sequence[int], None] = None,
        k_lens: Union[Tensor, Sequence[int], None] = None, softcap: float = 0.0,
        alibi: Union[Tensor, Sequence[float], None] = None, seed: Optional[int] = None,
        threads: Optional[int] = None) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention, computed by attn.

    query (N, ..., Hq, L, E), key (N, ..., H, S, E), value (N, ..., H, S, Ev):
    float32, float64, float16 or bfloat16 CPU tensors (half precision: float32
    arithmetic, each output rounded once); batch dims broadcast; with enable_gqa,
    Hq % H == 0 and query head h reads key/value head h // (Hq // H). attn_mask
    broadcastable to (N, ..., Hq, L, S): bool (True = attend) or a float of
    query's dtype added to the scores (its gradient flows). is_causal: the
    top-left causal mask. dropout_p: dropout on the probabilities (only pass
    it while training, as with PyTorch). scale: default 1 / sqrt(E). Returns
    (N, ..., Hq, L, Ev).

    attn's options (keyword only), as in attn.sdpa:
      window   (left, right) sliding window around the aligned row; None or -1:
               unbounded on that side
      align    "top_left" (PyTorch's is_causal) or "bottom_right" alignment of
               causal, window and ALiBi
      q_lens, k_lens   per-batch lengths (N * ... entries): padded rows give 0,
               padded keys are masked
      softcap  > 0: scores become softcap * tanh(s / softcap)
      alibi    Hq ALiBi slopes
      seed     the dropout seed; None draws one from torch's generator
      threads  attn's threads; None: torch.get_num_threads()
    """
    fn = "attn.torch.scaled_dot_product_attention"
    _check_inputs(fn, query, key, value)
    L, S, Ev = query.shape[-2], key.shape[-2], value.shape[-1]
    qb, kb, vb = query.shape[:-2], key.shape[:-2], value.shape[:-2]
    if enable_gqa and query.dim() >= 3:
        Hq, Hkv = qb[-1], kb[-1]
        if vb[-1] != Hkv:
            raise ShapeMismatchError("%s: value has %d heads; it must have key's %d" %
                                     (fn, vb[-1], Hkv))
        if Hkv == 0 or Hq % Hkv:
            raise BadHeadsError("%s: query has %d heads, key %d; with enable_gqa the first "
                                "must be a multiple of the second" % (fn, Hq, Hkv))
        lead = _broadcast(fn, qb[:-1], kb[:-1], vb[:-1])
    else:
        full = _broadcast(fn, qb, kb, vb)
        lead, Hq = (full[:-1], full[-1]) if full else ((), 1)
        Hkv = Hq
    out_shape = lead + (Hq, L, S)
    lead4 = lead if lead else (1,)
    q4 = _to4(query, lead4, Hq)
    k4 = _to4(key, lead4, Hkv)
    v4 = _to4(value, lead4, Hkv)
    B = q4.shape[0]

    mask = bias = None
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise BadDtypeError("%s: attn_mask is a %s; it must be a torch.Tensor" %
                                (fn, type(attn_mask).__name__))
        _check_cpu(attn_mask, fn, "attn_mask")
        if attn_mask.dtype == torch.bool:
            mask = _mask4(fn, attn_mask, out_shape)
        elif attn_mask.dtype == query.dtype:
            bias = _mask4(fn, attn_mask, out_shape)
        else:
            raise BadDtypeError("%s: attn_mask has dtype %s; it must be bool or query's %s" %
                                (fn, attn_mask.dtype, query.dtype))
    rng = None
    if dropout_p:
        if seed is None:
            rng = torch.randint(-2 ** 63, 2 ** 63 - 1, (2,), dtype=torch.int64)
        else:
            rng = torch.tensor([_signed(seed, fn), 0], dtype=torch.int64)
    left, right = _window(window, fn)
    o = _call(
        q4, k4, v4, mask, bias,
        None if q_lens is None else _ints(q_lens, B, fn, "q_lens", torch.int64),
        None if k_lens is None else _ints(k_lens, B, fn, "k_lens", torch.int64),
        None if alibi is None else _ints(alibi, Hq, fn, "alibi", torch.float64),
        rng, None if scale is None else float(scale), float(softcap), bool(is_causal),
        int(enum_value(Align, align, fn + ": argument 'align'")),
        -1 if left is None else int(left), -1 if right is None else int(right),
        float(dropout_p), -1 if threads is None else int(threads))
    if query.dim() == 4:
        return o
    return o.reshape(*(lead + (Hq,) if query.dim() >= 3 else ()), L, Ev)


def _window(window, fn: str) -> Tuple[Optional[int], Optional[int]]:
    if window is None:
        return -1, -1
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise BadParamError("%s: argument 'window' is %r; it must be (left, right), None or "
                            "-1 for unbounded" % (fn, window))
    return window[0], window[1]


def _signed(seed: int, fn: str) -> int:
    """A uint64 seed as the int64 with the same bits."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BadParamError("%s: argument 'seed' is %r; it must be an integer" % (fn, seed))
    seed &= _U64
    return seed - (1 << 64) if seed >= 1 << 63 else seed
