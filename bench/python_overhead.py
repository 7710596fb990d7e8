"""What the Python front ends cost, and attn.torch in a training step.

1. Per-call overhead on a 1 x 1 x 16 x 64 problem (B, H, S, D; float32, one
   thread): the C call attn_sdpa_forward with everything prepared beforehand
   (views, output, context; one ctypes call) against attn.sdpa (NumPy) and
   attn.torch.scaled_dot_product_attention doing the whole job. The
   difference is what the wrapper adds (target: at most 20 us).
2. Forward + backward of causal attention at the benchmark's train shape
   (B 4, H 8, S 512, D 64; bench/bench.py's "train" row), through
   attn.torch.scaled_dot_product_attention and through PyTorch's
   scaled_dot_product_attention, on the same threads (target: attn at least
   as fast), with [B, H, S, D] inputs as bench.py makes them and with q, k, v
   sliced from one packed projection as a model makes them.

Each measurement alternates the contenders round by round and reports the
median of the rounds. The per-call costs are the calling thread's CPU time
(time.thread_time: time other processes take is not counted, which makes
them steadier on a shared machine); the training steps are wall time (they
run on several threads). Rerun on an idle machine for figures of record.

    .venv/bin/python bench/python_overhead.py [--threads 2] [--out FILE]
"""
import argparse
import ctypes
import json
import statistics
import time

import numpy as np

from bench_common import cpu_name


def _medians(contenders, rounds, calls, clock):
    """{name: median seconds per call by clock}, the contenders interleaved
    round by round."""
    times = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = clock()
            for _ in range(calls):
                fn()
            times[name].append((clock() - t0) / calls)
    return {name: statistics.median(t) for name, t in times.items()}


def overhead(rounds, calls):
    import torch

    import attn
    import attn.torch as at
    from attn._lib.core import context, lib
    from attn._views import view

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 16, 1, 64)).astype(np.float32) for _ in range(3))
    o = np.empty_like(q)
    refs = [ctypes.byref(view(a, "bench", n)) for a, n in ((q, "q"), (k, "k"), (v, "v"),
                                                             (o, "o"))]
    ctx = context(1)
    fwd = lib.attn_sdpa_forward
    tq, tk, tv = (torch.from_numpy(a).transpose(1, 2) for a in (q, k, v))
    gq, gk, gv = (t.clone().requires_grad_() for t in (tq, tk, tv))
    torch.set_num_threads(1)
    F = torch.nn.functional
    us = _medians({
        "c_call": lambda: fwd(ctx, refs[0], refs[1], refs[2], None, refs[3], None),
        "attn.sdpa": lambda: attn.sdpa(q, k, v, threads=1),
        "attn.sdpa causal": lambda: attn.sdpa(q, k, v, causal=True, threads=1),
        "attn.sdpa return_lse": lambda: attn.sdpa(q, k, v, return_lse=True, threads=1),
        "attn.torch": lambda: at.scaled_dot_product_attention(tq, tk, tv, threads=1),
        "attn.torch requires_grad": lambda: at.scaled_dot_product_attention(gq, gk, gv,
                                                                            threads=1),
        "torch F.sdpa": lambda: F.scaled_dot_product_attention(tq, tk, tv),
        "torch F.sdpa requires_grad": lambda: F.scaled_dot_product_attention(gq, gk, gv),
    }, rounds, calls, time.thread_time)
    us = {name: 1e6 * t for name, t in us.items()}
    return {"shape": "B 1, H 1, S 16, D 64, float32, 1 thread", "clock": "thread CPU time",
            "us_per_call": us,
            "wrapper_us": {n: t - us["c_call"] for n, t in us.items()
                           if n.startswith("attn")}}


def train_step(rounds, threads):
    import torch
    F = torch.nn.functional
    import attn.torch as at

    torch.set_num_threads(threads)
    B, H, S, D = 4, 8, 512, 64
    g = torch.Generator().manual_seed(0)
    layouts = {
        "bhsd": [(torch.rand(B, H, S, D, generator=g) - 0.5).requires_grad_() for _ in range(3)],
    }
    packed = (torch.rand(B, S, 3 * H * D, generator=g) - 0.5).requires_grad_()
    out = {}
    for layout in ("bhsd", "packed"):
        def inputs():
            if layout == "bhsd":
                return layouts["bhsd"]
            return packed.view(B, S, 3, H, D).permute(2, 0, 3, 1, 4)

        def step(sdpa):
            q, k, v = inputs()
            o = sdpa(q, k, v, is_causal=True)
            o.backward(torch.ones_like(o))
            for t in layouts["bhsd"] + [packed]:
                t.grad = None
        ms = _medians({"attn": lambda: step(at.scaled_dot_product_attention),
                       "torch": lambda: step(F.scaled_dot_product_attention)}, rounds, 1,
                      time.perf_counter)
        out[layout] = {"attn_ms": 1e3 * ms["attn"], "torch_ms": 1e3 * ms["torch"],
                       "torch_over_attn": ms["torch"] / ms["attn"]}
    return {"shape": "B 4, H 8, S 512, D 64, causal, float32, forward + backward",
            "clock": "wall", "threads": threads, **out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--train-rounds", type=int, default=11)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    import torch
    res = {"cpu": cpu_name(), "torch": torch.__version__,
           "overhead": overhead(args.rounds, args.calls),
           "train": train_step(args.train_rounds, args.threads),
           "rounds": {"overhead": args.rounds, "calls_per_round": args.calls,
                      "train": args.train_rounds}}
    o = res["overhead"]
    print("per call, %s (CPU time, median of %d rounds of %d calls):" %
          (o["shape"], args.rounds, args.calls))
    for name, t in o["us_per_call"].items():
        extra = "  (+%.1f us over the C call)" % o["wrapper_us"][name] if name in o["wrapper_us"] \
            else ""
        print("  %-28s %8.2f us%s" % (name, t, extra))
    t = res["train"]
    print("%s, %d threads (wall time, median of %d):" % (t["shape"], args.threads,
                                                         args.train_rounds))
    for layout in ("bhsd", "packed"):
        r = t[layout]
        print("  %-7s attn.torch %8.2f ms   torch SDPA %8.2f ms   torch / attn %.2fx" %
              (layout, r["attn_ms"], r["torch_ms"], r["torch_over_attn"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
