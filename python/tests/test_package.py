"""The installed package: its version, where it loads its libraries from, the
error classes and enums against the C library's tables, ImportErrors that
name the file and the reason, and `python -m attn.info`."""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import attn
import attn.errors
from attn._lib.core import lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_version_is_the_libraries():
    with open(os.path.join(ROOT, "include", "attn", "attn.h")) as f:
        header = f.read()
    macros = [re.search(r"#define ATTN_VERSION_%s (\d+)" % part, header).group(1)
              for part in ("MAJOR", "MINOR", "PATCH")]
    assert attn.__version__ == lib.attn_version().decode() == ".".join(macros)
    assert importlib.metadata.version("attn") == attn.__version__


def test_installed_package_loads_its_own_libraries():
    """The tests import the installed package (not python/ of the repository),
    and it loads its libraries from its own directory."""
    pkg = os.path.dirname(os.path.abspath(attn.__file__))
    assert not pkg.startswith(os.path.join(ROOT, "python") + os.sep)
    assert os.path.isfile(os.path.join(pkg, "py.typed"))
    assert attn.library_path("attn") == os.path.join(pkg, "libattn.so")
    with open("/proc/self/maps") as f:
        maps = f.read()
    assert os.path.join(pkg, "libattn.so") in maps
    assert os.path.join(ROOT, "build") not in maps


def test_every_status_has_its_class():
    """Every code of the C status table has a Status member and an AttnError
    subclass named by the rule of attn.errors, which also derives from a built-in."""
    builtins = {ValueError, TypeError, OverflowError, MemoryError, RuntimeError, OSError}
    code = 0
    while lib.attn_status_name(code) != b"ATTN_UNKNOWN":
        name = lib.attn_status_name(code).decode()[5:]
        assert attn.Status(code).name == name
        if code:
            cls = attn.errors.error_class(code)
            camel = "".join(w.title() for w in name.split("_")) + "Error"
            if camel[:-5] in ("Overflow", "Io"):
                camel = "Attn" + camel.replace("Io", "IO")
            assert cls.__name__ == camel and cls.status == code
            assert getattr(attn, camel) is cls and issubclass(cls, attn.AttnError)
            assert builtins & set(cls.__mro__)
            e = cls("attn_x: argument 'y' is bad")
            assert e.name == "ATTN_" + name and str(e) == "ATTN_%s: attn_x: argument 'y' is " \
                "bad" % name
        code -= 1
    assert len(attn.Status) == -code  # 0 .. code + 1


def test_enums_match_the_library():
    for d in attn.DType:
        assert lib.attn_dtype_name(d).decode() == d.name
    assert {d: lib.attn_dtype_size(d) for d in attn.DType} == {
        attn.DType.F32: 4, attn.DType.F64: 8, attn.DType.BOOL: 1, attn.DType.F16: 2,
        attn.DType.BF16: 2, attn.DType.I64: 8, attn.DType.I32: 4, attn.DType.U8: 1}
    assert lib.attn_dtype_name(len(attn.DType) + 1) == b"?"
    for k in attn.Kernel:
        assert lib.attn_kernel_name(k).decode() == k.name.lower()
    assert lib.attn_kernel_name(len(attn.Kernel)) == b"unknown"  # no kernel the enum lacks


def _copy_package(tmp_path, drop=()):
    """The installed package copied to tmp_path/attn, without the files in drop."""
    src = os.path.dirname(os.path.abspath(attn.__file__))
    dst = tmp_path / "attn"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", *drop))
    return dst


def _python(tmp_path, code):
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=120)


def test_missing_library_is_an_import_error_naming_the_file(tmp_path):
    dst = _copy_package(tmp_path, drop=("libattn.so",))
    p = _python(tmp_path, "import attn")
    assert p.returncode != 0
    assert "ImportError: attn: cannot load %s: the file does not exist" % (dst / "libattn.so") \
        in p.stderr, p.stderr


def test_optional_library_missing_names_the_reason(tmp_path):
    dst = _copy_package(tmp_path, drop=("libattn_viz.so",))
    p = _python(tmp_path, "import attn, numpy; print(attn.sdpa(numpy.ones((1, 1, 1, 2)), "
                          "numpy.ones((1, 1, 1, 2)), numpy.ones((1, 1, 1, 2))).sum())\n"
                          "import attn.viz")
    assert p.stdout.strip() == "2.0", p.stderr
    assert "cannot load %s: the file does not exist (attn_viz is built only where CMake finds " \
        "libpng" % (dst / "libattn_viz.so") in p.stderr, p.stderr


def test_unloadable_library_gives_the_loaders_reason(tmp_path):
    dst = _copy_package(tmp_path)
    (dst / "libattn.so").write_bytes(b"not an ELF file")
    p = _python(tmp_path, "import attn")
    assert "ImportError: attn: cannot load %s: " % (dst / "libattn.so") in p.stderr
    assert "invalid ELF header" in p.stderr or "too short" in p.stderr, p.stderr


def test_info_names_version_libraries_and_kernel():
    p = subprocess.run([sys.executable, "-m", "attn.info"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("attn %s\n" % attn.__version__)
    assert "package: %s\n" % os.path.dirname(os.path.abspath(attn.__file__)) in out
    for name in ("attn", "attn_formats", "attn_text", "attn_nn", "attn_viz", "attn_explain",
                 "attn_task"):
        assert "  %s: %s\n" % (name, attn.library_path(name)) in out
    ctx = attn._lib.core.context(0)
    kernel = lib.attn_kernel_name(lib.attn_ctx_resolved_kernel(ctx)).decode()
    lines = out.splitlines()
    assert "threads: %d" % lib.attn_ctx_threads(ctx) in lines
    assert any(line.startswith("cpu: ") for line in lines)  # attn_ctx_describe's text
    # the chosen kernel's own table fills the bf16 forward (avx512bf16 and amx fill
    # only some dtypes; float32 may run the kernels of the table below them)
    assert any(line.startswith("slot sdpa.forward.bf16: " + kernel) for line in lines), out
    assert out == attn.info.describe() + "\n"


def test_readme_python_example_runs_as_printed(tmp_path):
    """The PyTorch example of the README's "Python" section prints what the
    README says it prints."""
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    printed = section.split("\nprints\n\n", 1)[1].split("\n\n", 1)[0]
    assert len(code.splitlines()) == 10
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "\n".join(line[4:] for line in printed.splitlines()) + "\n"
