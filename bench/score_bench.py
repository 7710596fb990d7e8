"""Additive (Bahdanau) attention, forward + backward: attn's chunked float32
kernel (attn.score, never more than O((Sq + Sk) A) memory per head) against the
same math in PyTorch, which materialises the B x Sq x Sk x A tanh tensor.

    .venv/bin/python bench/score_bench.py [--threads 2] [--sizes 128 512 2048]
                                          [--reps 3] [--out bench/results_score.json]

B = 8, Sq = Sk = S, Dq = Dk = Dv = A = 128, float32, no masks, the same
thread count for both. Every (implementation, S) runs in a fresh process:
  peak   the process's peak resident memory during one forward + backward
         (VmHWM after resetting it, minus the resident size before the call;
         inputs and parameters are allocated before, outputs and gradients count)
  time   median wall time of --reps forward + backward calls after that one
PyTorch is not run when its materialised tensors cannot fit in memory; the
table then shows the size of one B x Sq x Sk x A float32 tensor instead.
Writes the results as JSON and prints a markdown table.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from bench_common import cpu_name

B, D, A = 8, 128, 128
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


def inputs(S):
    rng = np.random.default_rng(S)
    f = lambda *s, sc=1.0: (rng.uniform(-sc, sc, s)).astype(np.float32)  # noqa: E731
    return dict(q=f(B, S, 1, D), k=f(B, S, 1, D), v=f(B, S, 1, D), dout=f(B, S, 1, D),
                w_q=f(1, A, D, sc=D ** -0.5), w_k=f(1, A, D, sc=D ** -0.5), b=f(1, A, sc=0.5),
                v_a=f(1, A, sc=2 * A ** -0.5))


def attn_step(x, threads):
    """One forward + backward through attn.score; returns a value to keep."""
    import attn.score as score
    p = {s: x[s] for s in ("w_q", "w_k", "b", "v_a")}
    out, lse = score.forward("additive", x["q"], x["k"], x["v"], p, threads=threads)
    dq, dk, dv, g = score.backward("additive", x["q"], x["k"], x["v"], out, x["dout"], lse, p,
                                   threads=threads)
    return float(out[0, 0, 0, 0] + dq[0, 0, 0, 0] + g["w_q"][0, 0, 0])


def torch_setup(x):
    import torch
    t = {s: torch.from_numpy(a).requires_grad_(s != "dout") for s, a in x.items()}
    return t


def torch_step(t):
    """The same math in PyTorch, materialising [B, Sq, Sk, A] (Keras AdditiveAttention)."""
    import torch
    for a in t.values():
        a.grad = None
    q, k, v = t["q"][:, :, 0], t["k"][:, :, 0], t["v"][:, :, 0]
    qp = q @ t["w_q"][0].T + t["b"][0]
    kp = k @ t["w_k"][0].T
    s = (t["v_a"][0] * torch.tanh(qp[:, :, None, :] + kp[:, None, :, :])).sum(-1)
    out = torch.softmax(s, -1) @ v
    (out * t["dout"][:, :, 0]).sum().backward()
    return float(out[0, 0, 0] + t["q"].grad[0, 0, 0, 0] + t["w_q"].grad[0, 0, 0])


def child(impl, S, threads, reps):
    """Runs in its own process; prints one JSON line."""
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
    x = inputs(S)
    state = torch_setup(x) if impl == "torch" else x
    step = (lambda: torch_step(state)) if impl == "torch" else (lambda: attn_step(state, threads))
    if impl == "attn":
        import attn.score  # noqa: F401  (load the library before the baseline)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status_kb("VmRSS")
    step()
    peak = status_kb("VmHWM") - base
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(dict(impl=impl, S=S, peak_mb=peak / 1024.0, times_s=times,
                          median_s=float(np.median(times)))))


def free_mb():
    return status_meminfo("MemAvailable") / 1024.0


def status_meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


def run_child(impl, S, threads, reps):
    env = dict(os.environ)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl, str(S),
           "--threads", str(threads), "--reps", str(reps)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s S=%d failed:\n%s" % (impl, S, r.stderr[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])



def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("IMPL", "S"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results_score.json"))
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.threads, a.reps)
        return
    import torch
    rows = []
    for S in a.sizes:
        tensor_mb = B * S * S * A * 4 / 2 ** 20  # one materialised float32 [B, Sq, Sk, A]
        row = dict(S=S, materialised_tensor_mb=tensor_mb, attn=run_child("attn", S, a.threads, a.reps))
        # torch keeps about four such tensors alive at its peak; leave a margin
        row["torch"] = (run_child("torch", S, a.threads, a.reps) if 5 * tensor_mb < 0.8 * free_mb()
                        else None)
        rows.append(row)
        print("S=%d done" % S, file=sys.stderr)
    res = dict(config=dict(B=B, Dq=D, Dk=D, Dv=D, A=A, dtype="float32", threads=a.threads, reps=a.reps,
                           masks="none"),
               machine=dict(cpu=cpu_name(), cores=os.cpu_count()),
               versions=dict(torch=torch.__version__, numpy=np.__version__, python=platform.python_version()),
               commit=git_commit(), command="python bench/score_bench.py " + " ".join(sys.argv[1:]),
               rows=rows)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print("| Sq = Sk | attn time (s) | attn peak (MB) | torch time (s) | torch peak (MB) | one [B,Sq,Sk,A] tensor (MB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        t = r["torch"]
        print("| %d | %.3f | %.0f | %s | %s | %.0f |" % (
            r["S"], r["attn"]["median_s"], r["attn"]["peak_mb"],
            "%.3f" % t["median_s"] if t else "not run", "%.0f" % t["peak_mb"] if t else "-",
            r["materialised_tensor_mb"]))


if __name__ == "__main__":
    main()
