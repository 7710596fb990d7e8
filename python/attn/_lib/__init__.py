"""The one ctypes layer of the attn package.

Every call from Python into C goes through the modules of this folder: each
loads one shared library of the package, mirrors its structs and declares
its functions, exactly as the headers in include/attn/ say:

  core     libattn          attn/attn.h, attn/score.h  (loaded with the package)
  formats  libattn_formats  attn/gguf.h                (the GGUF reader)
  text     libattn_text     attn/text.h                (WordPiece, byte-level BPE)
  nn       libattn_nn       attn/nn.h, transformer.h, seq2seq.h, bert.h
  viz      libattn_viz      attn/viz.h
  explain  libattn_explain  attn/explain.h             (the explorer page)
  task     libattn_task     the dates task of the `attn` program (apps/attn/task)

A module is imported when first needed (`from attn._lib import nn`), so a
build without libpng still gives all but the heatmaps. The libraries are the
files libNAME.so installed beside this package by pip (cmake/python.cmake),
found from this file's location and nowhere else; each finds the libraries it
needs in its own directory (RUNPATH $ORIGIN). A library that is missing or
cannot be loaded raises ImportError naming the file and the reason.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Any, Sequence, Tuple

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SUFFIX = ".dylib" if sys.platform == "darwin" else ".so"

# Why a build may lack a library (CMakeLists.txt builds these only where it
# finds what they need).
_OPTIONAL = {
    "attn_viz": "attn_viz is built only where CMake finds libpng (Debian: libpng-dev); "
                "install it and reinstall attn",
}

Function = Tuple[Any, ...]  # (name, restype, *argtypes)


def library_path(name: str) -> str:
    """The file of library `name` ("attn", "attn_nn", ...) in the package directory."""
    return os.path.join(PACKAGE_DIR, "lib" + name + _SUFFIX)


def load(name: str, functions: Sequence[Function]) -> ctypes.CDLL:
    """Loads library `name` from the package directory and declares its
    functions: each entry is (name, restype, *argtypes)."""
    path = library_path(name)
    if not os.path.exists(path):
        why = _OPTIONAL.get(name, "the installation of attn is incomplete; reinstall it "
                                  "(pip install .)")
        raise ImportError("attn: cannot load %s: the file does not exist (%s)" % (path, why),
                          name=name, path=path)
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("attn: cannot load %s: %s" % (path, e), name=name, path=path) from e
    for fn_name, restype, *argtypes in functions:
        try:
            fn = getattr(lib, fn_name)
        except AttributeError:
            raise ImportError("attn: %s has no function %s: it is not the library this "
                              "package was built with; reinstall attn" % (path, fn_name),
                              name=name, path=path) from None
        fn.restype = restype
        fn.argtypes = list(argtypes)
    return lib
