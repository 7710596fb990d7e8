"""NumPy arrays as attn_tensor views, without copies.

An attn_tensor is a pointer, a dtype, four dims and four strides counted in
elements, each >= 0. numpy counts strides in bytes and allows any: a stride
that is negative or not a whole number of elements raises BadStrideError
naming the argument (copy the array with np.ascontiguousarray first). A dim
of size 0 or 1 has no meaningful stride; it is passed as 0.

fields() checks an array and gives the fields of its view; pack() writes them
into a call's argument buffer (the SDPA calls), view() makes a Tensor struct
(the calls that take structs). The dtype table maps numpy dtypes to
attn_dtype; a new element type (half precision) is one more entry.
"""
from __future__ import annotations

from ctypes import addressof, c_char
from typing import Any, Dict, Iterable, Tuple

import numpy as np

from ._lib.core import CallArgs, I64x4, Tensor
from .enums import DType
from .errors import BadDtypeError, BadStrideError, ShapeMismatchError

NUMPY_DTYPES: Dict[np.dtype, DType] = {
    np.dtype(np.float32): DType.F32,
    np.dtype(np.float64): DType.F64,
    np.dtype(np.bool_): DType.BOOL,
    np.dtype(np.uint8): DType.BOOL,  # a mask: nonzero means attend
    np.dtype(np.float16): DType.F16,
    np.dtype(np.uint16): DType.BF16,  # bfloat16 bit patterns (numpy has no bfloat16)
}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
HALF_DTYPES = (np.dtype(np.float16), np.dtype(np.uint16))
# what the attention operators take: float32, float64, float16, bfloat16 bits
SDPA_DTYPES = FLOAT_DTYPES + HALF_DTYPES


def to_bf16(x: Any) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of the values of x, rounded to nearest
    even as the library rounds; NaN stays NaN (quiet)."""
    f = np.ascontiguousarray(x, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = r.astype(np.uint16)
    nan = np.isnan(f)
    out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return out.reshape(f.shape)


def from_bf16(bits: Any) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (uint16), exactly."""
    b = np.ascontiguousarray(bits, dtype=np.uint16)
    return (b.astype(np.uint32) << 16).view(np.float32)
_PAD = ((), (1,), (1, 1), (1, 1, 1), (1, 1, 1, 1))
_ZEROS = ((), (0,), (0, 0), (0, 0, 0), (0, 0, 0, 0))
Fields = Tuple[int, int, Tuple[int, ...], Any]


def _names(dtypes: Iterable[np.dtype]) -> str:
    return ", ".join(str(d) for d in dtypes)


def array(x: Any, fn: str, name: str, dtypes: Tuple[np.dtype, ...]) -> np.ndarray:
    """x as an ndarray of one of `dtypes` (the first for non-arrays: lists are
    converted); an ndarray of another dtype raises BadDtypeError."""
    if type(x) is np.ndarray and x.dtype in dtypes:
        return x
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if x.dtype not in dtypes and x.dtype.kind in "biuf":
            x = x.astype(dtypes[0])
    if x.dtype not in dtypes:
        raise BadDtypeError("%s: argument '%s' has dtype %s; it must be %s" %
                            (fn, name, x.dtype, _names(dtypes)))
    return x


def floats(a: Any, fn: str, name: str) -> np.ndarray:
    """a as a float32 or float64 ndarray (lists become float64)."""
    return array(a, fn, name, FLOAT_DTYPES)


def _address(a: np.ndarray) -> int:
    """The address of a's first element. ndarray.ctypes costs microseconds;
    a writable contiguous array (the common case, and every output) exports
    a buffer that ctypes reads faster."""
    try:
        return addressof(c_char.from_buffer(a))  # type: ignore[arg-type]
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


def fields(a: np.ndarray, fn: str, name: str, ndim: int = 4) -> Fields:
    """(data, dtype, dim[4], stride[4]) of the view of an ndim-dim array
    (ndim < 4: trailing dims of 1), checking each dim and naming what is wrong."""
    dtype = NUMPY_DTYPES.get(a.dtype)
    if dtype is None:
        raise BadDtypeError("%s: argument '%s' has dtype %s; attn takes %s" %
                            (fn, name, a.dtype, _names(NUMPY_DTYPES)))
    shape = a.shape
    if len(shape) != ndim:
        raise ShapeMismatchError("%s: argument '%s' has shape %s; it must have %d dims" %
                                 (fn, name, shape, ndim))
    size = a.itemsize
    strides = []
    for d, (n, s) in enumerate(zip(shape, a.strides)):
        if n <= 1:
            strides.append(0)
        elif s >= 0 and not s % size:
            strides.append(s // size)
        else:
            raise BadStrideError(
                "%s: argument '%s' has stride %d bytes in dim %d, which is %s; attn views "
                "need non-negative strides in whole elements of %d bytes (pass "
                "np.ascontiguousarray(%s))" % (fn, name, s, d, "negative" if s < 0 else
                                               "not a whole number of elements", size, name))
    data = _address(a)
    if data % size:
        raise BadStrideError("%s: argument '%s' starts at an address that is not a multiple "
                             "of its item size %d" % (fn, name, size))
    return data, dtype, shape + _PAD[4 - ndim], strides + list(_ZEROS[4 - ndim])


def pack(args: CallArgs, a: np.ndarray, fn: str, name: str, ndim: int = 4) -> int:
    """The address of a's view packed into a call's argument buffer. The common
    case, a 4-d array whose strides are whole non-negative elements, is decided
    without fields()' per-dim loop."""
    dtype = NUMPY_DTYPES.get(a.dtype)
    shape = a.shape
    if dtype is not None and len(shape) == 4 == ndim:
        s0, s1, s2, s3 = a.strides
        size = a.itemsize
        if s0 >= 0 and s1 >= 0 and s2 >= 0 and s3 >= 0 and not (s0 | s1 | s2 | s3) % size:
            data = _address(a)
            if not data % size:
                return args.tensor(data, dtype, shape,
                                   (s0 // size, s1 // size, s2 // size, s3 // size))
    return args.tensor(*fields(a, fn, name, ndim))


def view(a: np.ndarray, fn: str, name: str, ndim: int = 4) -> Tensor:
    """The Tensor struct of a's view."""
    data, dtype, shape, strides = fields(a, fn, name, ndim)
    return Tensor(data, dtype, I64x4(*shape), I64x4(*strides))
