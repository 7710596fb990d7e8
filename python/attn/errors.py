"""attn.errors: the library's status codes and one exception class per code.

Every failure of a call into attn raises a subclass of AttnError carrying
the status and the library's message, which names the function and the bad
argument (attn_last_error()). The Python front ends raise the same classes
for what they check themselves (a CUDA tensor, a dtype, a stride), with a
message naming the argument.

Each class also derives from the built-in exception that fits it
(BadDimError is a ValueError, BadDtypeError a TypeError, NoMemoryError a
MemoryError, ...), so code that catches the built-ins keeps working. A class
is named after its status in CamelCase with "Error" (ATTN_BAD_DIM ->
BadDimError); where that name would hide a built-in, it takes the prefix
"Attn" (ATTN_OVERFLOW -> AttnOverflowError, ATTN_IO -> AttnIOError).
"""
from __future__ import annotations

import enum
from typing import Dict, Optional, Type

__all__ = [
    "Status", "AttnError", "NullArgError", "BadDimError", "ShapeMismatchError",
    "BadDtypeError", "BadStrideError", "AttnOverflowError", "BadParamError", "BadHeadsError",
    "BadMaskError", "OverlapError", "NoMemoryError", "ThreadError", "UnsupportedError",
    "AttnIOError", "BadFileError", "error_class",
]


class Status(enum.IntEnum):
    """attn_status (include/attn/attn.h, ATTN_STATUS_TABLE)."""
    OK = 0
    NULL_ARG = -1
    BAD_DIM = -2
    SHAPE_MISMATCH = -3
    BAD_DTYPE = -4
    BAD_STRIDE = -5
    OVERFLOW = -6
    BAD_PARAM = -7
    BAD_HEADS = -8
    BAD_MASK = -9
    OVERLAP = -10
    NO_MEMORY = -11
    THREAD = -12
    UNSUPPORTED = -13
    IO = -14
    BAD_FILE = -15


class AttnError(Exception):
    """A call into attn failed.

    status: the Status (for a code the binding does not know, the int);
    name: "ATTN_BAD_DIM"; message: what went wrong, naming the argument.
    """
    status: Optional[Status] = None

    def __init__(self, message: str, status: Optional[int] = None):
        if status is not None:
            try:
                self.status = Status(status)
            except ValueError:
                self.status = status  # type: ignore[assignment]
        code = self.status
        self.name = "ATTN_" + code.name if isinstance(code, Status) else "ATTN_UNKNOWN"
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return "%s: %s" % (self.name, self.message)


class NullArgError(AttnError, ValueError):
    """ATTN_NULL_ARG: a required argument is missing."""
    status = Status.NULL_ARG


class BadDimError(AttnError, ValueError):
    """ATTN_BAD_DIM: a dimension is negative, or zero where it must not be."""
    status = Status.BAD_DIM


class ShapeMismatchError(AttnError, ValueError):
    """ATTN_SHAPE_MISMATCH: tensor shapes disagree (or have the wrong number of dims)."""
    status = Status.SHAPE_MISMATCH


class BadDtypeError(AttnError, TypeError):
    """ATTN_BAD_DTYPE: an unsupported or mismatched dtype."""
    status = Status.BAD_DTYPE


class BadStrideError(AttnError, ValueError):
    """ATTN_BAD_STRIDE: a stride the C view cannot express (negative, not a whole
    number of elements) or that makes output elements alias."""
    status = Status.BAD_STRIDE


class AttnOverflowError(AttnError, OverflowError):
    """ATTN_OVERFLOW: a size computation overflows."""
    status = Status.OVERFLOW


class BadParamError(AttnError, ValueError):
    """ATTN_BAD_PARAM: a scalar parameter is out of range."""
    status = Status.BAD_PARAM


class BadHeadsError(AttnError, ValueError):
    """ATTN_BAD_HEADS: the query heads are not a multiple of the key/value heads."""
    status = Status.BAD_HEADS


class BadMaskError(AttnError, ValueError):
    """ATTN_BAD_MASK: a mask or bias does not broadcast to [B, Hq, Sq, Sk]."""
    status = Status.BAD_MASK


class OverlapError(AttnError, ValueError):
    """ATTN_OVERLAP: an output overlaps an input or another output."""
    status = Status.OVERLAP


class NoMemoryError(AttnError, MemoryError):
    """ATTN_NO_MEMORY: memory allocation failed."""
    status = Status.NO_MEMORY


class ThreadError(AttnError, RuntimeError):
    """ATTN_THREAD: a thread could not be created."""
    status = Status.THREAD


class UnsupportedError(AttnError, RuntimeError):
    """ATTN_UNSUPPORTED: the combination is not supported (a kernel this CPU
    lacks, a CUDA tensor)."""
    status = Status.UNSUPPORTED


class AttnIOError(AttnError, OSError):
    """ATTN_IO: a file could not be opened, read or written."""
    status = Status.IO


class BadFileError(AttnError, ValueError):
    """ATTN_BAD_FILE: a file is corrupt, truncated or not in the expected format."""
    status = Status.BAD_FILE


_CLASSES: Dict[int, Type[AttnError]] = {
    int(c.status): c for c in (
        NullArgError, BadDimError, ShapeMismatchError, BadDtypeError, BadStrideError,
        AttnOverflowError, BadParamError, BadHeadsError, BadMaskError, OverlapError,
        NoMemoryError, ThreadError, UnsupportedError, AttnIOError, BadFileError)
}


def error_class(status: int) -> Type[AttnError]:
    """The exception class of a status code (AttnError for a code without one)."""
    return _CLASSES.get(int(status), AttnError)
