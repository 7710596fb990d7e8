"""NumPy arrays as attn_tensor views, without copies.

An attn_tensor is a pointer, a dtype, four dims and four strides counted in
elements, each >= 0. numpy counts strides in bytes and allows any: a stride
that is negative or not a whole number of elements raises BadStrideError
naming the argument (copy the array with np.ascontiguousarray first). A dim
of size 0 or 1 has no meaningful stride; it is passed as 0.

The dtype table maps numpy dtypes to attn_dtype; a new element type (half
precision) is one more entry.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

import numpy as np

from ._lib.core import I64x4, Tensor
from .enums import DType
from .errors import BadDtypeError, BadStrideError, ShapeMismatchError

NUMPY_DTYPES: Dict[np.dtype, DType] = {
    np.dtype(np.float32): DType.F32,
    np.dtype(np.float64): DType.F64,
    np.dtype(np.bool_): DType.BOOL,
    np.dtype(np.uint8): DType.BOOL,  # a mask: nonzero means attend
}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _names(dtypes: Iterable[np.dtype]) -> str:
    return ", ".join(str(d) for d in dtypes)


def array(x: Any, fn: str, name: str, dtypes: Iterable[np.dtype]) -> np.ndarray:
    """x as an ndarray of one of `dtypes` (the first for non-arrays: lists are
    converted); an ndarray of another dtype raises BadDtypeError."""
    dtypes = tuple(dtypes)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if x.dtype not in dtypes and x.dtype.kind in "biuf":
            x = x.astype(dtypes[0])
    if x.dtype not in dtypes:
        raise BadDtypeError("%s: argument '%s' has dtype %s; it must be %s" %
                            (fn, name, x.dtype, _names(dtypes)))
    return x


def view(a: np.ndarray, fn: str, name: str, ndim: int = 4) -> Tensor:
    """The attn_tensor of the ndim-dim array a (ndim < 4: trailing dims of 1)."""
    if a.ndim != ndim:
        raise ShapeMismatchError("%s: argument '%s' has shape %s; it must have %d dims" %
                                 (fn, name, a.shape, ndim))
    dtype = NUMPY_DTYPES.get(a.dtype)
    if dtype is None:
        raise BadDtypeError("%s: argument '%s' has dtype %s; attn takes %s" %
                            (fn, name, a.dtype, _names(NUMPY_DTYPES)))
    size = a.itemsize
    shape = a.shape + (1,) * (4 - ndim)
    strides = []
    for d, (n, s) in enumerate(zip(a.shape, a.strides)):
        if n <= 1:
            s = 0
        elif s < 0 or s % size:
            raise BadStrideError(
                "%s: argument '%s' has stride %d bytes in dim %d, which is %s; attn views "
                "need non-negative strides in whole elements of %d bytes (pass "
                "np.ascontiguousarray(%s))" % (fn, name, s, d, "negative" if s < 0 else
                                               "not a whole number of elements", size, name))
        strides.append(s // size)
    strides += [0] * (4 - ndim)
    if a.ctypes.data % size:
        raise BadStrideError("%s: argument '%s' starts at an address that is not a multiple "
                             "of its item size %d" % (fn, name, size))
    return Tensor(a.ctypes.data, dtype, I64x4(*shape), I64x4(*strides))


def floats(a: Any, fn: str, name: str) -> np.ndarray:
    """a as a float32 or float64 ndarray (lists become float64)."""
    return array(a, fn, name, FLOAT_DTYPES)


def optional_view(a: Optional[np.ndarray], fn: str, name: str) -> Optional[Tensor]:
    return None if a is None else view(a, fn, name)
