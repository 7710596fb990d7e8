"""`pip wheel .`: a wheel with every shared library of the package inside,
whose package, unpacked into a directory of its own, loads its libraries
from there and runs.

The wheel is built without build isolation in the kept build directory
(build/python/<tag>, as scripts/setup.sh --python installs), so only what
changed is recompiled. A fresh machine's `pip install .` (with scikit-build-core
and CMake from PyPI) is what docs/python.md describes; this test checks what
that build produces.
"""
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARIES = ["libattn.so", "libattn_formats.so", "libattn_text.so", "libattn_nn.so",
             "libattn_explain.so", "libattn_task.so", "libattn_viz.so"]


def test_wheel_holds_the_libraries_and_runs_unpacked(tmp_path):
    out = tmp_path / "dist"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(out), ROOT], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    (wheel,) = out.glob("attn-*.whl")
    assert "-py3-none-" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    for lib in LIBRARIES:
        assert "attn/" + lib in names, sorted(names)
    assert "attn/py.typed" in names and "attn/_lib/core.py" in names
    assert not any(n.endswith(".a") or n.endswith(".h") or "/bin/" in n for n in names)
    site = tmp_path / "site"
    code = ("import attn, attn.explain, attn.nn, numpy as np\n"
            "q = np.ones((1, 2, 1, 4))\n"
            "print(attn.library_path('attn'))\n"
            "print(float(attn.sdpa(q, q, q).sum()))\n"
            "print(*sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libattn' in l}))\n")
    p = subprocess.run([sys.executable, "-I", "-c",
                        "import sys; sys.path.insert(0, %r)\n" % str(site) + code],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    path, total, *mapped = p.stdout.split()
    assert path == str(site / "attn" / "libattn.so")
    assert float(total) == 8.0
    # every libattn the process mapped is the wheel's (those imported, and what they link)
    assert all(os.path.dirname(m) == str(site / "attn") for m in mapped), mapped
    assert {"libattn.so", "libattn_explain.so", "libattn_nn.so"} <= \
        {os.path.basename(m) for m in mapped}, mapped
