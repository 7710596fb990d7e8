"""attn.enums: the C enums of attn/attn.h as enum.IntEnum.

The values are the C ones, so a member passes to C as is. Functions that take
one of these also take its lower-case name ("avx2", "bottom_right").
"""
from __future__ import annotations

import enum
from typing import Type, TypeVar, Union

__all__ = ["DType", "Kernel", "Align", "enum_value"]


class DType(enum.IntEnum):
    """attn_dtype (ATTN_DTYPE_TABLE): element types of tensors and files."""
    F32 = 1
    F64 = 2
    BOOL = 3
    F16 = 4
    BF16 = 5
    I64 = 6
    I32 = 7
    U8 = 8


class Kernel(enum.IntEnum):
    """attn_kernel: which kernel a context runs."""
    AUTO = 0    # the fastest exact kernels this CPU, its OS and this build allow
    REF = 1     # double-precision reference (the test oracle)
    TILED = 2   # portable tiled online-softmax float32 kernels
    AVX2 = 3    # AVX2+FMA float32 kernels (x86-64)
    AVX512 = 4  # AVX-512 float32 kernels (fails where the CPU lacks AVX-512)
    AMX = 5     # AVX-512 with bf16 attention and dense layers on AMX tiles (forced only)
    AVX512BF16 = 6  # AVX-512 with bf16 attention's Q K^T and dO V^T on AVX512-BF16 dot products


class Align(enum.IntEnum):
    """attn_align: where causal masks, windows and ALiBi put query row i."""
    TOP_LEFT = 0      # i' = i (PyTorch's is_causal)
    BOTTOM_RIGHT = 1  # i' = i + Lk - Lq (FlashAttention >= 2.1)


E = TypeVar("E", bound=enum.IntEnum)


def enum_value(cls: Type[E], value: Union[E, int, str], what: str) -> E:
    """value as a member of cls: a member, its int value or its lower-case name.
    Anything else raises attn.BadParamError naming `what`."""
    if type(value) is cls:
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        member = cls.__members__.get(value.upper())
        if member is not None and value == value.lower():
            return member
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            pass
    from .errors import BadParamError
    names = ", ".join(repr(m.name.lower()) for m in cls)
    raise BadParamError("%s is %r; it must be one of %s (or attn.%s)" %
                        (what, value, names, cls.__name__))
