"""The machinery of the toolkit's random grids against PyTorch (test_grid_*.py).

Each grid test draws configurations from consecutive seeds (one numpy
Generator per seed, so a configuration depends on its seed only), runs attn
and a PyTorch float64 oracle on the same float32 values, and compares every
output and gradient. A failing configuration does not stop the grid: its
one-line reproducer and the checks that failed are collected and reported
together, e.g.

    .venv/bin/python -m pytest 'python/tests/test_grid_mha.py::test_grid_mha' --grid-seed 3000017

Sizes: --grid-configs N (or ATTN_GRID_CONFIGS=N) is the count of a grid of
weight 1; each grid runs max(1, round(N * weight)) configurations (the weight
says how costly one is). make test uses the default (DEFAULT_CONFIGS), make
test-long a much larger N.

Errors: err = max|got - ref| / max(max|ref|, floor), the largest error
relative to the output's largest magnitude; the floor keeps outputs whose
exact value is (nearly) zero from dividing float32 rounding noise by zero.
The largest err of every output is printed at the end of the session
(and written as JSON to $ATTN_GRID_REPORT when set).
"""
import json
import math
import os
import shlex

import numpy as np

DEFAULT_CONFIGS = 200
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- the session's report ---------------------------------------------------------------

class GridReport:
    """Per grid: configurations run and failed, and per output the largest err
    and the largest err / tol."""

    def __init__(self):
        self.grids = {}

    def grid(self, name):
        return self.grids.setdefault(name, {"configs": 0, "failed": 0, "worst": {}})

    def record(self, name, what, err, tol):
        w = self.grid(name)["worst"]
        old = w.get(what, (0.0, 0.0))
        ratio = err / tol if tol > 0 else (0.0 if err == 0 else math.inf)
        if math.isnan(err):
            err = ratio = math.inf
        w[what] = (max(old[0], err), max(old[1], ratio))

    def lines(self):
        out = []
        for name in sorted(self.grids):
            g = self.grids[name]
            worst = sorted(g["worst"].items(), key=lambda kv: -kv[1][1])
            top = ", ".join("%s %.2g" % (k, v[0]) for k, v in worst[:6])
            ratio = worst[0][1][1] if worst else 0.0
            out.append("  %-22s %5d configs, %d failed; worst err/tol %.3f; largest errors: %s"
                       % (name, g["configs"], g["failed"], ratio, top))
        return out

    def write_json(self, path):
        data = {name: {"configs": g["configs"], "failed": g["failed"],
                       "worst": {k: {"err": v[0], "err_over_tol": v[1]}
                                 for k, v in sorted(g["worst"].items())}}
                for name, g in sorted(self.grids.items())}
        with open(path, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")


REPORT = GridReport()


# ---- one configuration's checks ----------------------------------------------------------

def _np64(a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


class Checks:
    """The comparisons of one configuration; failures are collected, not raised."""

    def __init__(self, grid):
        self.grid = grid
        self.failures = []
        self.desc = {}

    def close(self, what, got, ref, tol, floor=0.0):
        """err = max|got - ref| / max(max|ref|, floor) <= tol (shapes must agree;
        NaN or Inf in got fails unless ref has the same value there). floor is
        the magnitude of the terms the output sums (where the result may cancel)."""
        got, ref = _np64(got), _np64(ref)
        if got.shape != ref.shape:
            self.failures.append("%s: shape %s, want %s" % (what, got.shape, ref.shape))
            return
        if got.size == 0:
            return
        same = (got == ref) | (np.isnan(got) & np.isnan(ref))
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(got - ref))
        finite = np.abs(ref[np.isfinite(ref)])
        scale = max(float(finite.max()) if finite.size else 0.0, floor, 1e-300)
        err = float(diff.max()) / scale
        if math.isnan(err):
            err = math.inf
        REPORT.record(self.grid, what, err, tol)
        if not err <= tol:
            at = np.unravel_index(int(np.argmax(np.where(np.isnan(diff), np.inf, diff))),
                                  diff.shape)
            self.failures.append("%s: err %.3g > tol %.3g (at %s: got %.9g, want %.9g; "
                                 "max|ref| %.3g)" % (what, err, tol, tuple(int(i) for i in at),
                                                     got[at], ref[at], scale))

    def equal(self, what, got, want):
        """Exact equality (counts, statuses, integer results)."""
        if not np.array_equal(np.asarray(got), np.asarray(want)):
            self.failures.append("%s: got %s, want %s" % (what, got, want))

    def true(self, what, cond):
        if not cond:
            self.failures.append(what)


# ---- running a grid ---------------------------------------------------------------------------

def n_configs(config, weight):
    n = config.getoption("--grid-configs")
    if n is None:
        n = int(os.environ.get("ATTN_GRID_CONFIGS", DEFAULT_CONFIGS))
    return max(1, int(round(n * weight)))


def _reproducer(request, seed):
    node = os.path.relpath(str(request.node.path), _REPO) + "::" + request.node.name
    return ".venv/bin/python -m pytest %s --grid-seed %d" % (shlex.quote(node), seed)


def run_grid(request, name, base_seed, weight, one):
    """Runs one(rng, checks) on configurations base_seed, base_seed + 1, ...
    (or only on --grid-seed S) and fails listing every failed configuration
    with its reproducer. one() fills checks.desc with what it drew."""
    config = request.config
    only = config.getoption("--grid-seed")
    seeds = [only] if only is not None else \
        [base_seed + i for i in range(n_configs(config, weight))]
    stats = REPORT.grid(name)
    failed = []
    for seed in seeds:
        checks = Checks(name)
        try:
            one(np.random.default_rng(seed), checks)
        except Exception as e:  # an error of attn or of the test: this config fails
            checks.failures.append("raised %s: %s" % (type(e).__name__, e))
        stats["configs"] += 1
        if checks.failures:
            stats["failed"] += 1
            desc = " ".join("%s=%s" % kv for kv in checks.desc.items())
            failed.append("seed %d (%s)\n      %s\n      reproduce: %s"
                          % (seed, desc, "\n      ".join(checks.failures[:8]),
                             _reproducer(request, seed)))
    assert not failed, "%s: %d of %d configurations failed:\n  %s" % (
        name, len(failed), len(seeds), "\n  ".join(failed[:10]))


# ---- drawing sizes ------------------------------------------------------------------------------

def log_int(rng, lo, hi):
    """An integer in [lo, hi], log-uniform (small sizes as likely as large ones)."""
    return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))


def dim(rng, hi, edges=(8, 16, 32, 64, 128), lo=1):
    """A dim in [lo, hi]: half the time log-uniform, half the time next to a
    power of two (e +- 0..3), so every residue mod 8 and 16 turns up."""
    if rng.random() < 0.5:
        return log_int(rng, lo, hi)
    e = int(rng.choice([x for x in edges if x <= hi] or [hi]))
    return int(min(hi, max(lo, e + int(rng.integers(-3, 4)))))


def uniform(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def normal(rng, shape, scale=1.0):
    return (rng.standard_normal(size=shape) * scale).astype(np.float32)


# ---- Philox4x32-10 and the documented dropout keep rules, in numpy ------------------------------

_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
_U32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, key):
    """Philox4x32-10 (Salmon et al. 2011) on arrays: ctr a 4-tuple of uint32
    arrays, key a 2-tuple; returns the 4 output words as uint64 arrays."""
    c = [np.asarray(x, dtype=np.uint64) & _U32 for x in ctr]
    k0, k1 = (np.asarray(x, dtype=np.uint64) & _U32 for x in key)
    for r in range(10):
        p0 = np.uint64(_M0) * c[0]
        p1 = np.uint64(_M1) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & _U32, p1 & _U32,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & _U32, p0 & _U32]
        if r < 9:
            k0 = (k0 + np.uint64(_W0)) & _U32
            k1 = (k1 + np.uint64(_W1)) & _U32
    return c


def _threshold(p):
    t = p * 4294967296.0
    return 4294967295 if t >= 4294967295.0 else int(t)


def _word(words, sel):
    out = words[0].copy()
    for w in range(1, 4):
        out = np.where(sel == w, words[w], out)
    return out


def attn_dropout_keep_mask(seed, offset, p, B, H, Sq, Sk):
    """The core's keep mask [B, H, Sq, Sk] (docs/operator.md, 'Dropout keep function'):
    ctr = {j / 4, i, b * H + h, offset mod 2^32}, key = {seed mod 2^32,
    (seed >> 32) xor (offset >> 32)}, keep <=> word j mod 4 >= floor(p 2^32)."""
    if p <= 0:
        return np.ones((B, H, Sq, Sk), dtype=bool)
    b, h, i, j = np.meshgrid(np.arange(B), np.arange(H), np.arange(Sq), np.arange(Sk),
                             indexing="ij")
    seed, offset = int(seed) % 2 ** 64, int(offset) % 2 ** 64
    words = philox4x32_10((j // 4, i, b * H + h, np.full(j.shape, offset & 0xFFFFFFFF)),
                          (seed & 0xFFFFFFFF, (seed >> 32) ^ (offset >> 32)))
    return _word(words, j % 4) >= np.uint64(_threshold(p))


def nn_dropout_keep_mask(seed, offset, p, count):
    """attn_nn_dropout's keep mask [count] (the rule of src/nn/layers.c and
    docs/nn.md): u = offset + e mod 2^64, ctr = {(u >> 2) mod 2^32, u >> 34,
    0x6E6E6470, 0}, key = {seed mod 2^32, seed >> 32}, word u mod 4."""
    if p <= 0:
        return np.ones(count, dtype=bool)
    seed, offset = int(seed) % 2 ** 64, int(offset) % 2 ** 64
    u = (np.uint64(offset) + np.arange(count, dtype=np.uint64))  # wraps mod 2^64
    q = u >> np.uint64(2)
    words = philox4x32_10((q & _U32, q >> np.uint64(32), np.full(count, 0x6E6E6470),
                           np.zeros(count)), (seed & 0xFFFFFFFF, seed >> 32))
    return _word(words, u & np.uint64(3)) >= np.uint64(_threshold(p))
