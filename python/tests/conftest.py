"""pytest setup for the attn Python tests, which import the installed package
(scripts/setup.sh --python installs it into .venv): records the largest
errors seen against the PyTorch oracle. With ATTN_ORACLE_REPORT=<file> set,
a JSON summary is written there at the end of the session:

  {"categories": {cat: {"cases": n, "f64": {"out": e, "lse": e, "grad": e,
                                            "weights": e}, "f32": {...}, ...}},
   "max_abs": {"f64": e, "f32": e, "f32_ref": e}, ...}

where each e is the largest max|attn - torch| seen (absolute, unnormalised).
"""
import json
import math
import os

import pytest


def pytest_addoption(parser):
    """The toolkit grids' sizes (grid_util.py): --grid-configs N configurations for a
    grid of weight 1 (default $ATTN_GRID_CONFIGS, else grid_util.DEFAULT_CONFIGS), or
    --grid-seed S to rerun one configuration of the grid tests selected."""
    parser.addoption("--grid-configs", type=int, default=None,
                     help="configurations per toolkit grid (times its weight)")
    parser.addoption("--grid-seed", type=int, default=None,
                     help="run only this seed of the selected toolkit grids")


class OracleReport:
    def __init__(self):
        self.categories = {}
        self.max_abs = {}

    def case(self, category):
        c = self.categories.setdefault(category, {"cases": 0})
        c["cases"] += 1

    def error(self, category, path, what, value):
        value = float(value)
        c = self.categories.setdefault(category, {"cases": 0})
        d = c.setdefault(path, {})
        old = d.get(what)
        # NaN is the worst error: keep it once seen.
        if old is None or math.isnan(value) or (not math.isnan(old) and value > old):
            d[what] = value
        old = self.max_abs.get(path)
        if old is None or math.isnan(value) or (not math.isnan(old) and value > old):
            self.max_abs[path] = value


_REPORT = OracleReport()


@pytest.fixture(scope="session")
def oracle_report():
    return _REPORT


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("ATTN_ORACLE_REPORT")
    if not path:
        return
    try:
        import torch
        import numpy
        versions = {"torch": torch.__version__, "numpy": numpy.__version__}
    except ImportError:  # pragma: no cover
        versions = {}
    try:
        import attn
        libpath = attn.library_path("attn")
    except Exception:  # pragma: no cover - the tests report the import failure
        libpath = None
    summary = {
        "oracle": "PyTorch CPU float64 (scaled_dot_product_attention / explicit softmax, autograd)",
        "versions": versions,
        "library": libpath,
        "exitstatus": int(exitstatus),
        "tests_collected": session.testscollected,
        "tests_failed": session.testsfailed,
        "cases": sum(c["cases"] for c in _REPORT.categories.values()),
        "max_abs": _jsonable(_REPORT.max_abs),
        "categories": _jsonable(_REPORT.categories),
    }
    with open(path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")


def pytest_terminal_summary(terminalreporter):
    """Always print the largest errors against PyTorch, per path, and the toolkit
    grids' summary (written as JSON to $ATTN_GRID_REPORT when set)."""
    import grid_util
    if grid_util.REPORT.grids:
        terminalreporter.write_line("toolkit grids vs PyTorch float64 (err = max|attn - torch| "
                                    "/ max|torch|):")
        for line in grid_util.REPORT.lines():
            terminalreporter.write_line(line)
        if os.environ.get("ATTN_GRID_REPORT"):
            grid_util.REPORT.write_json(os.environ["ATTN_GRID_REPORT"])
    if not _REPORT.max_abs:
        return
    cases = sum(c["cases"] for c in _REPORT.categories.values())
    parts = ", ".join(f"{k} {v:.3g}" for k, v in sorted(_REPORT.max_abs.items()))
    terminalreporter.write_line(
        f"attn vs PyTorch float64: {cases} oracle cases; largest max|attn - torch|: {parts}")
