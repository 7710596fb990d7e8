"""attn benchmark driver (rules: docs/design.md, Benchmarks): probes the
machine with attn_bench, runs the standard shape table, alternating attn
(the C program) with the PyTorch peers on the same shapes and thread count,
and writes bench/results.json and bench/results.png.

    python bench/bench.py [--quick] [--threads N] [--reps R] [--out bench/results.json]

Each row of results.json: name, mode, B, Hq, Hkv, Sq, Sk, D, mask, dtype,
kv_dtype, threads, kernel (the one that ran), cpu (its model), median_ms,
min_ms, gflops, pct_peak (of the peak matching the row's dtype: float32 rows
against the best float32 FMA peak, bf16 rows against the AMX bf16 peak if
present, else the AVX512-BF16 one (vdpbf16ps), else the float32 one, f16
rows against the best f16 product rate;
peak and peak_gflops name it), peer, peer_median_ms, ratio (= peer_median_ms
/ median_ms: above 1 means attn is faster), plus the dense-equivalent
GFLOP/s, the K/V read rate (decode) and memory growth.

Besides the float32 table: bf16 and f16 rows (forward, forward+backward)
against PyTorch SDPA in the same dtype, and decode over a bf16 or f16 KV cache
(float32 Q) against SDPA in the cache's dtype, on the context's choice of
kernels and again on the AMX kernels, forced with ATTN_KERNEL=amx while the
automatic choice leaves them alone (a machine without AMX skips those rows,
saying so). Where the context's choice is not the AVX2 kernels (an AVX-512
machine), part of the float32 table runs again with ATTN_KERNEL=avx2, to
compare the AVX2 path with its figures on AVX2 machines.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "build", "attn_bench")

# (name, mode, B, Hq, Hkv, Sq list, Sk (None = Sq), D, masks)
TABLE = [
    ("prefill-64", "fwd", 1, 16, 16, [1024, 2048, 4096, 8192], None, 64, ["none", "causal"]),
    ("prefill-128", "fwd", 1, 8, 8, [1024, 2048, 4096, 8192], None, 128, ["none", "causal"]),
    ("gqa", "fwd", 1, 32, 8, [2048], None, 128, ["causal"]),
    ("decode", "decode", 1, 32, 8, [1], [4096, 16384, 65536], 128, ["none"]),
    ("window", "fwd", 1, 8, 8, [16384], None, 64, ["window:256"]),
    ("bert", "fwd", 32, 12, 12, [128], None, 64, ["padding"]),
    ("train", "fwdbwd", 4, 8, 8, [512], None, 64, ["causal"]),
    ("train-bwd", "bwd", 4, 8, 8, [512], None, 64, ["causal"]),
    ("prefill-64-bwd", "fwdbwd", 1, 16, 16, [1024, 2048], None, 64, ["none", "causal"]),
    ("gqa-train", "fwdbwd", 1, 8, 2, [2048], None, 128, ["causal"]),
]
QUICK = {"prefill-64": [1024, 2048], "prefill-128": [1024, 2048], "decode": [4096, 65536]}

# Half precision: (name, mode, B, Hq, Hkv, Sq list, Sk (None = Sq), D, masks, [(dtype, kv_dtype)]).
HALF_DTYPES = [("bf16", "bf16"), ("f16", "f16")]
HALF_KV = [("f32", "bf16"), ("f32", "f16")]
HALF_TABLE = [
    ("prefill-64", "fwd", 1, 16, 16, [2048], None, 64, ["none", "causal"], HALF_DTYPES),
    ("prefill-128", "fwd", 1, 8, 8, [4096], None, 128, ["causal"], HALF_DTYPES),
    ("train", "fwdbwd", 4, 8, 8, [512], None, 64, ["causal"], HALF_DTYPES),
    ("prefill-64-bwd", "fwdbwd", 1, 16, 16, [2048], None, 64, ["none"], HALF_DTYPES),
    ("decode", "decode", 1, 32, 8, [1], [4096, 16384, 65536], 128, ["none"], HALF_KV),
]
QUICK_HALF = {"prefill-64": [1024], "decode": [4096]}
# The kernels the half-precision rows run on (None: the context's choice);
# forced ones the machine lacks are skipped.
HALF_KERNELS = [None, "amx"]
# The float32 rows run again with the AVX2 kernels forced, where the
# context chooses others.
AVX2_AGAIN = ("prefill-64", "prefill-128", "decode", "train")
TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def attn_run(mode, B, Hq, Hkv, Sq, Sk, D, mask, threads, reps, kernel=None, dtype="f32", kv_dtype=None,
             env_kernel=None):
    """One attn_bench run; kernel: --kernel (None: the context's choice); env_kernel:
    ATTN_KERNEL for the run. None if attn_bench refused (e.g. the kernel is absent)."""
    cmd = [BIN, "run", "--mode", mode, "--B", B, "--Hq", Hq, "--Hkv", Hkv, "--Sq", Sq, "--Sk", Sk,
           "--D", D, "--mask", mask, "--threads", threads, "--reps", reps, "--dtype", dtype]
    cmd += ["--kernel", kernel] if kernel else []
    cmd += ["--kv-dtype", kv_dtype] if kv_dtype else []
    env = dict(os.environ, **({"ATTN_KERNEL": env_kernel} if env_kernel else {}))
    run = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        print(f"  attn_bench {' '.join(str(c) for c in cmd[1:])}: {run.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(run.stdout)


def peak_of(probe, dtype):
    """(name, GFLOP/s) of the peak the rows computing in dtype are held to: float32
    (and the mixed decode, computed in float32) the best float32 FMA peak, bf16 and
    f16 the probe's bf16 and f16 peaks."""
    if dtype == "bf16":
        return probe["bf16_peak"], probe["bf16_peak_gflops"]
    if dtype == "f16":
        return probe["f16_peak"], probe["f16_peak_gflops"]
    return probe["f32_peak"], probe["fma_gflops"]


def torch_inputs(torch, mode, B, Hq, Hkv, Sq, Sk, D, mask, dtype="f32"):
    g = torch.Generator().manual_seed(0)
    grad = mode in ("bwd", "fwdbwd")
    dt = getattr(torch, TORCH_DTYPES[dtype])
    q = (torch.rand(B, Hq, Sq, D, generator=g) - 0.5).to(dt)
    k = (torch.rand(B, Hkv, Sk, D, generator=g) - 0.5).to(dt)
    v = (torch.rand(B, Hkv, Sk, D, generator=g) - 0.5).to(dt)
    q.requires_grad_(grad), k.requires_grad_(grad), v.requires_grad_(grad)
    am, causal = None, False
    if mask == "causal" and Sq == Sk:
        causal = True
    elif mask.startswith("window:"):
        w = int(mask.split(":")[1])
        i = torch.arange(Sq)[:, None]
        j = torch.arange(Sk)[None, :]
        am = (j <= i) & (j > i - w)
    elif mask == "padding":
        lens, seed = [], 12345
        for _ in range(B):  # the lengths attn_bench uses
            seed = (seed * 1664525 + 1013904223) % 2**32
            lens.append(Sk // 2 + (seed >> 8) % (Sk // 2 + 1))
        am = (torch.arange(Sk)[None, :] < torch.tensor(lens)[:, None])[:, None, None, :]
    return q, k, v, am, causal


def torch_time(torch, peer, mode, B, Hq, Hkv, Sq, Sk, D, mask, reps, dtype="f32"):
    F = torch.nn.functional
    q, k, v, am, causal = torch_inputs(torch, mode, B, Hq, Hkv, Sq, Sk, D, mask, dtype)
    scale = 1.0 / math.sqrt(D)

    def forward():
        if peer == "torch_sdpa":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=am, is_causal=causal,
                                                  enable_gqa=Hq != Hkv)
        kk = k.repeat_interleave(Hq // Hkv, dim=1) if Hq != Hkv else k
        vv = v.repeat_interleave(Hq // Hkv, dim=1) if Hq != Hkv else v
        s = (q @ kk.transpose(-1, -2)) * scale
        if causal:
            s = s.masked_fill(torch.ones(Sq, Sk, dtype=torch.bool).triu(1), float("-inf"))
        elif am is not None:
            s = s.masked_fill(~am, float("-inf"))
        return torch.softmax(s, dim=-1) @ vv

    times = []
    for r in range(reps + 1):
        if mode == "bwd":
            o = forward()
            go = torch.ones_like(o)
            t0 = time.perf_counter()
            o.backward(go)
        else:
            t0 = time.perf_counter()
            with torch.set_grad_enabled(mode == "fwdbwd"):
                o = forward()
                if mode == "fwdbwd":
                    o.backward(torch.ones_like(o))
        t = time.perf_counter() - t0
        for x in (q, k, v):
            x.grad = None
        if r > 0:
            times.append(t)
    return statistics.median(times) * 1e3


def draw(rows, probe, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if not (r["name"].startswith("scaling") or r["name"] == "memory")]

    def key_of(r):
        return (r["name"], r["mode"], r["Sq"], r["Sk"], r["mask"], r.get("dtype", "f32"), r.get("kv_dtype", "f32"),
                r.get("kernel"))

    shapes = []
    for r in rows:
        key = key_of(r)
        if key not in [s[0] for s in shapes]:
            shapes.append((key, r))
    peers = sorted({r["peer"] for r in rows if r["peer"] is not None})
    fig, ax = plt.subplots(figsize=(max(10, len(shapes) * 0.8), 6))
    width = 0.8 / (1 + len(peers))
    xs = range(len(shapes))
    ax.bar([x - 0.4 + width / 2 for x in xs], [s[1]["gflops"] for s in shapes], width, label="attn")
    for n, peer in enumerate(peers):
        vals = []
        for key, r in shapes:
            match = [x for x in rows if key_of(x) == key and x["peer"] == peer]
            vals.append(r["flops"] / match[0]["peer_median_ms"] / 1e6 if match and match[0]["peer_median_ms"] else 0)
        ax.bar([x - 0.4 + width * (n + 1.5) for x in xs], vals, width, label=peer)
    ax.axhline(probe["fma_gflops"], color="red", linestyle="--", label=f"FMA peak {probe['fma_gflops']:.0f}")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{k[0]}\n{k[1]} {k[2]}x{k[3]}\n{k[4]}" + ("" if k[5] == k[6] == "f32" else f" {k[5]}/{k[6]}")
                        + f"\n{k[7]}" for k, _ in shapes], fontsize=7)
    ax.set_ylabel("GFLOP/s (visible FLOPs)")
    ax.set_title(f"attn vs PyTorch {rows[0].get('torch', '')} CPU, {rows[0]['threads']} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def row_of(name, a, probe, peer=None, peer_ms=None, torch_version=None):
    """A results.json row from an attn_bench run a: the kernel that ran, the CPU,
    and the % of the peak matching its dtype."""
    peak_name, peak = peak_of(probe, a["dtype"])
    return {"name": name, "mode": a["mode"], "B": a["B"], "Hq": a["Hq"], "Hkv": a["Hkv"], "Sq": a["Sq"],
            "Sk": a["Sk"], "D": a["D"], "mask": a["mask"], "dtype": a["dtype"], "kv_dtype": a["kv_dtype"],
            "threads": a["threads"], "kernel": a["kernel"], "cpu": a["cpu"], "median_ms": a["median_ms"],
            "min_ms": a["min_ms"], "flops": a["flops"], "gflops": a["gflops"], "gflops_dense": a["gflops_dense"],
            "peak": peak_name, "peak_gflops": peak, "pct_peak": 100.0 * a["gflops"] / peak,
            "kv_gbs": a["kv_gbs"], "pct_bandwidth": 100.0 * a["kv_gbs"] / probe["read_gbs"],
            "rss_growth_mb": a["rss_growth_mb"], "peer": peer, "peer_median_ms": peer_ms,
            "ratio": (peer_ms / a["median_ms"]) if peer_ms else None, "torch": torch_version}


def extras(args, probe):
    """Thread scaling (1 vs all threads on prefill shapes) and resident
    memory growth for growing Sk (it must stay flat: no Sq x Sk buffer)."""
    rows = []
    print("thread scaling (peer = the same shape on 1 thread; ratio = speed-up)")
    for name, Hq, D, S, mask in [("prefill-64", 16, 64, 2048, "none"), ("prefill-128", 8, 128, 2048, "none"),
                                 ("prefill-64", 16, 64, 2048, "causal")]:
        one = attn_run("fwd", 1, Hq, Hq, S, S, D, mask, 1, args.reps)
        many = attn_run("fwd", 1, Hq, Hq, S, S, D, mask, args.threads, args.reps)
        row = row_of("scaling-" + name, many, probe, "attn_1thread", one["median_ms"])
        row["pct_bandwidth"] = None
        rows.append(row)
        print(f"  {name} {mask} S={S}: 1 thread {one['median_ms']:.1f} ms, {args.threads} threads "
              f"{many['median_ms']:.1f} ms, speed-up {row['ratio']:.2f}x", flush=True)
    print("resident memory growth during the call, Sq = 1024, 8 heads, D = 64")
    for Sk in [1024, 4096, 16384, 65536]:
        a = attn_run("fwd", 1, 8, 8, 1024, Sk, 64, "none", args.threads, 3)
        scores_mb = 8 * 1024 * Sk * 4 / 2**20
        row = row_of("memory", a, probe)
        row.update({"pct_bandwidth": None, "scores_matrix_mb": scores_mb})
        rows.append(row)
        print(f"  Sk={Sk:6d}: growth {a['rss_growth_mb']:.2f} MB (the Sq x Sk score matrices of the 8 heads "
              f"would take {scores_mb:.0f} MB)", flush=True)
    return rows


def run_shape(args, torch, probe, name, mode, B, Hq, Hkv, Sq, Sk, D, mask, dtype, kv_dtype, env_kernel):
    """The rows of one shape: attn (dtype, kv_dtype; env_kernel: ATTN_KERNEL) and each
    PyTorch peer, in the dtype attn's K and V have."""
    reps = args.reps if Sq * Sk < 2**25 else max(3, args.reps // 2)
    a = attn_run(mode, B, Hq, Hkv, Sq, Sk, D, mask, args.threads, reps, dtype=dtype, kv_dtype=kv_dtype,
                 env_kernel=env_kernel)
    if a is None:
        print(f"{name:<15}{mode:<7}skipped: ATTN_KERNEL={env_kernel} is not available here", flush=True)
        return []
    peers = [] if args.no_peers else ["torch_sdpa", "torch_naive"]
    if mode == "decode" or dtype != "f32" or kv_dtype is not None:
        peers = peers[:1]
    rows = []
    for peer in peers or [None]:
        pm = None
        if peer is not None:
            try:
                pm = torch_time(torch, peer, mode, B, Hq, Hkv, Sq, Sk, D, mask, reps, kv_dtype or dtype)
            except RuntimeError as e:  # e.g. out of memory for the naive peer
                print(f"  {peer} failed: {e}", file=sys.stderr)
        row = row_of(name, a, probe, peer, pm, torch.__version__)
        rows.append(row)
        pct = f"{row['pct_peak']:5.1f}" if mode != "decode" else f"{row['pct_bandwidth']:4.0f}B"
        dt = dtype if kv_dtype is None else f"{dtype}/{kv_dtype}"
        print(f"{name:<15}{mode:<7}{dt:<11}{a['kernel']:<7}{B:>3}{f'{Hq}/{Hkv}':>7}{Sq:>6}{Sk:>7}{D:>4} {mask:<11}"
              f"{a['median_ms']:9.2f}{a['gflops']:9.1f}{pct:>6}  {str(peer):<11}"
              f"{(pm or float('nan')):9.2f}{(row['ratio'] or float('nan')):7.2f}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a subset of the table")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--extras-only", action="store_true",
                    help="rerun only thread scaling and memory growth, merged into --out")
    ap.add_argument("--chart-only", action="store_true", help="redraw the chart from --out")
    args = ap.parse_args()
    if args.chart_only:
        with open(args.out) as f:
            rows = json.load(f)
        with open(os.path.splitext(args.out)[0] + "_probe.json") as f:
            probe = json.load(f)
        draw(rows, probe, os.path.splitext(args.out)[0] + ".png")
        print(f"wrote {os.path.splitext(args.out)[0]}.png")
        return
    if args.extras_only:
        probe = json.loads(subprocess.run([BIN, "probe", "--threads", str(args.threads)], check=True,
                                          capture_output=True, text=True).stdout)
        with open(args.out) as f:
            rows = [r for r in json.load(f) if not (r["name"].startswith("scaling") or r["name"] == "memory")]
        rows += extras(args, probe)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"merged into {args.out}")
        return
    import torch
    torch.set_num_threads(args.threads)
    probe = json.loads(subprocess.run([BIN, "probe", "--threads", str(args.threads)], check=True,
                                      capture_output=True, text=True).stdout)
    print(f"probe ({probe['cpu']}): float32 FMA peak ({probe['f32_peak']}) {probe['fma_gflops_1t']:.1f} GFLOP/s "
          f"(1 thread), {probe['fma_gflops']:.1f} ({args.threads} threads); read bandwidth "
          f"{probe['read_gbs_1t']:.1f} GB/s (1 thread), {probe['read_gbs']:.1f} GB/s ({args.threads} threads)",
          flush=True)
    print("bf16 rows are held to the %s peak (%.1f GFLOP/s), f16 rows to %s (%.1f); absent: %s" % (
        probe["bf16_peak"], probe["bf16_peak_gflops"], probe["f16_peak"], probe["f16_peak_gflops"],
        "; ".join(f"{k}: {v}" for k, v in probe["absent"].items()) or "none"), flush=True)
    rows = []
    hdr = (f"{'name':<15}{'mode':<7}{'dtype':<11}{'kernel':<7}{'B':>3}{'Hq/Hkv':>7}{'Sq':>6}{'Sk':>7}{'D':>4} {'mask':<11}"
           f"{'ms':>9}{'GFLOP/s':>9}{'%peak':>6}  {'peer':<11}{'peer ms':>9}{'ratio':>7}")
    print(hdr)
    chosen = attn_run("fwd", 1, 1, 1, 64, 64, 64, "none", 1, 1)["kernel"]
    half_kernels = [k for k in HALF_KERNELS
                    if k is None or attn_run("fwd", 1, 1, 1, 64, 64, 64, "none", 1, 1, env_kernel=k) is not None]
    for k in sorted(set(HALF_KERNELS) - set(half_kernels)):
        print(f"the half-precision rows on ATTN_KERNEL={k}: skipped, not available here (above)", flush=True)
    shapes = [(name, mode, B, Hq, Hkv, sqs, sks, D, masks, [("f32", None)], None, False)
              for name, mode, B, Hq, Hkv, sqs, sks, D, masks in TABLE]
    shapes += [(name, mode, B, Hq, Hkv, sqs, sks, D, masks, dts, kern, True)
               for kern in half_kernels for name, mode, B, Hq, Hkv, sqs, sks, D, masks, dts in HALF_TABLE]
    if chosen != "avx2":
        shapes += [(name, mode, B, Hq, Hkv, sqs, sks, D, masks, [("f32", None)], "avx2", False)
                   for name, mode, B, Hq, Hkv, sqs, sks, D, masks in TABLE if name in AVX2_AGAIN]
    else:
        print("the context chooses the AVX2 kernels here: its float32 rows are the AVX2 path's", flush=True)
    for name, mode, B, Hq, Hkv, sqs, sks, D, masks, dtypes, env_kernel, half in shapes:
        quick = QUICK_HALF if half else QUICK
        if args.quick and name in quick:
            sqs = quick[name] if sks is None else sqs
            sks = quick[name] if sks is not None else sks
        elif args.quick and (name in ("window", "prefill-64-bwd") or half and mode != "fwdbwd"):
            continue
        for mask in masks:
            for Sq, Sk in ([(s, s) for s in sqs] if sks is None else [(sqs[0], k) for k in sks]):
                for dtype, kv_dtype in dtypes:
                    rows += run_shape(args, torch, probe, name, mode, B, Hq, Hkv, Sq, Sk, D, mask, dtype,
                                      kv_dtype, env_kernel)
    rows += extras(args, probe)
    result = {"probe": probe, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.splitext(args.out)[0] + "_probe.json", "w") as f:
        json.dump(probe, f, indent=1)
    draw(rows, probe, os.path.splitext(args.out)[0] + ".png")
    print(f"wrote {args.out} and {os.path.splitext(args.out)[0]}.png")
    return result


if __name__ == "__main__":
    main()
