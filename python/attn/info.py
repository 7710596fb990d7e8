"""python -m attn.info: what this installation of attn is and runs.

Prints the version, where the package and each of its libraries were loaded
from (or why one is missing), and the CPU and kernel description of the C
library (attn_ctx_describe: the CPU, the features attn looks for and the
kernel a default context runs). describe() returns the same text.
"""
from __future__ import annotations

import ctypes
import importlib
import sys
from typing import List

from . import __version__
from ._lib import PACKAGE_DIR, library_path
from ._lib.core import context, lib

__all__ = ["describe", "main"]

_MODULES = {"attn_text": "text", "attn_nn": "nn", "attn_viz": "viz", "attn_task": "task"}


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
    """attn_ctx_describe of a context with one thread per CPU; libraries from
    before that function name the kernel a context resolves and the CPU's
    flags instead."""
    ctx = context(0)
    describe = getattr(lib, "attn_ctx_describe", None)
    if describe is not None:
        describe.restype = ctypes.c_int
        describe.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                             ctypes.POINTER(ctypes.c_size_t)]
        n = ctypes.c_size_t()
        if describe(ctx, None, 0, ctypes.byref(n)) == 0:
            buf = ctypes.create_string_buffer(n.value + 1)
            if describe(ctx, buf, len(buf), ctypes.byref(n)) == 0:
                return buf.value.decode("utf-8", "replace").rstrip("\n")
    kernel = lib.attn_kernel_name(lib.attn_ctx_resolved_kernel(ctx)).decode()
    return "kernel: %s (threads %d)\ncpu flags: %s" % (kernel, lib.attn_ctx_threads(ctx),
                                                     _cpu_flags())


def _cpu_flags() -> str:
    wanted = ("avx2", "fma", "avx512f", "amx_tile")
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    return " ".join(w if w in flags else "no-" + w for w in wanted)


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

