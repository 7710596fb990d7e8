"""A random grid of the learned-score attention (attn.score: additive
(Bahdanau), Luong general and concat, learned-scale dot) against the
PyTorch float64 oracle of test_score.py (the B x H x Sq x Sk x A tanh
tensor materialised, Keras semantics): out, LSE, the weights with and
without dropout, and the gradients of q, k, v and every parameter, on the
float64 reference kernel and the float32 kernel the library picks (and, one
configuration in four, the float32 reference and tiled kernels too), with
the tolerances of test_score.py's PATHS.

Drawn: heads 1-4, batch 1-3, Sq 1-80, Sk 1-120, Dq, Dk, Dv 1-40 (Dq = Dk
for the dot kind), attention dims 1-64, the additive bias or not, causal
with both alignments, windows, query and key lengths (rows that see no key
included), a random boolean mask, dropout 0 / 0.17 / 0.5, 1-3 threads.
"""
import numpy as np
import torch

from grid_util import log_int, run_grid
from test_score import KINDS, PATHS, make_case, reference, run_c, to_torch

torch.set_num_threads(1)


def draw(rng):
    while True:
        kind = str(rng.choice(KINDS))
        H, B = log_int(rng, 1, 4), log_int(rng, 1, 3)
        Sq, Sk = log_int(rng, 1, 80), log_int(rng, 1, 120)
        Dq, Dk, Dv, A = (log_int(rng, 1, 40), log_int(rng, 1, 40), log_int(rng, 1, 40),
                         log_int(rng, 1, 64))
        if B * H * Sq * Sk * A <= 1_500_000:
            return dict(kind=kind, H=H, B=B, Sq=Sq, Sk=Sk, Dq=Dq, Dk=Dk, Dv=Dv, A=A,
                        bias=bool(rng.random() < 0.7))


def options(rng, c):
    B, H, Sq, Sk = c["B"], c["H"], c["Sq"], c["Sk"]
    o = {}
    if rng.random() < 0.4:
        o["causal"] = True
        o["align"] = str(rng.choice(["top_left", "bottom_right"]))
    if rng.random() < 0.2:
        o["window"] = (int(rng.integers(-1, 8)), int(rng.integers(-1, 8)))
    if rng.random() < 0.3:
        o["q_lens"] = [int(x) for x in rng.integers(0, Sq + 1, size=B)]
    if rng.random() < 0.3:
        o["k_lens"] = [int(x) for x in rng.integers(0, Sk + 1, size=B)]
    if rng.random() < 0.2:
        o["mask"] = rng.random((B, H, Sq, Sk)) < 0.8
    if rng.random() < 0.3:
        o.update(dropout_p=float(rng.choice([0.17, 0.5])), seed=int(rng.integers(0, 2 ** 32)),
                 offset=int(rng.integers(0, 2 ** 20)))
    return o


def one_score(rng, chk):
    c = draw(rng)
    o = options(rng, c)
    threads = int(rng.integers(1, 4))
    chk.desc = dict(c, threads=threads, **{k: v for k, v in o.items() if k != "mask"},
                    mask="mask" in o)
    q, k, v, dout, params = make_case(c["kind"], c["H"], int(rng.integers(0, 2 ** 32)), B=c["B"],
                                      Sq=c["Sq"], Sk=c["Sk"], Dq=c["Dq"], Dk=c["Dk"], Dv=c["Dv"],
                                      A=c["A"], bias=c["bias"])
    (ql, qt), (kl, kt), (vl, vt) = to_torch(q), to_torch(k), to_torch(v)
    P = {s: torch.tensor(a, dtype=torch.float64, requires_grad=True) for s, a in params.items()}
    out_t, lse_t, w_t, wd_t = reference(c["kind"], qt, kt, vt, P, o)
    out_ref = out_t.permute(0, 2, 1, 3)
    (out_ref * torch.from_numpy(dout)).sum().backward()
    ref = dict(out=out_ref, lse=lse_t, w=w_t, wd=wd_t, dq=ql.grad, dk=kl.grad, dv=vl.grad,
               **{"d_" + s: t.grad for s, t in P.items()})
    paths = ["f64", "f32"] + (["f32_ref", "f32_tiled"] if rng.random() < 0.25 else [])
    for path in paths:
        got = run_c(c["kind"], q, k, v, dout, params, o, path, threads=threads)
        tol = PATHS[path]
        for what, r in ref.items():
            t = tol["grad"] if what.startswith("d") else tol["out"]
            chk.close("%s %s" % (path, what), got[what], r, t, 1.0)


def test_grid_score(request):
    run_grid(request, "score", 6_000_000, 0.5, one_score)
