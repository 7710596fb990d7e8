"""python -m attn.info: what this installation of attn is and runs.

Prints the version, where the package and each of its libraries were loaded
from (or why one is missing), and the CPU and kernel description of the C
library (attn_ctx_describe: the CPU, the features attn looks for, the
kernel choice of a default context and what runs each kernel slot).
describe() returns the same text.
"""
from __future__ import annotations

import ctypes
import importlib
import sys
from typing import List

from . import __version__
from ._lib import PACKAGE_DIR, library_path
from ._lib.core import check, context, lib

__all__ = ["describe", "main"]

_MODULES = {"attn_formats": "formats", "attn_text": "text", "attn_nn": "nn",
            "attn_viz": "viz", "attn_explain": "explain", "attn_task": "task"}


def _libraries() -> List[str]:
    lines = ["  attn: " + library_path("attn")]
    for name, module in _MODULES.items():
        try:
            importlib.import_module("attn._lib." + module)
            lines.append("  %s: %s" % (name, library_path(name)))
        except ImportError as e:
            lines.append("  %s: not available (%s)" % (name, e))
    return lines


def _ctx_text() -> str:
    """attn_ctx_describe of a context with one thread per CPU: the CPU, the
    features attn looks for, the kernel choice and what runs each slot."""
    ctx = context(0)
    n = ctypes.c_size_t()
    check(lib.attn_ctx_describe(ctx, None, 0, ctypes.byref(n)))
    buf = ctypes.create_string_buffer(n.value + 1)
    check(lib.attn_ctx_describe(ctx, buf, len(buf), ctypes.byref(n)))
    return "threads: %d\n%s" % (lib.attn_ctx_threads(ctx),
                                buf.value.decode("utf-8", "replace").rstrip("\n"))


def describe() -> str:
    """The text `python -m attn.info` prints."""
    lines = ["attn %s" % __version__, "package: %s" % PACKAGE_DIR, "libraries:"]
    lines += _libraries()
    lines.append(_ctx_text())
    return "\n".join(lines)


def main() -> int:
    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())

