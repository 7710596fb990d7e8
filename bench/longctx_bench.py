"""Long-context benchmark rows (docs/long-context.md): block-sparse patterns,
packed variable-length batches and ring attention, against PyTorch SDPA
given the equivalent dense boolean mask (and FlexAttention where it runs on
CPU).

    python bench/longctx_bench.py [--tiny] [--threads N] [--reps R] [--out bench/results_longctx.json]
                                  [--only GROUPS] [--sizes S,S] [--no-peers]

Rows: the dense forward at 16K (the rate the sparse rows are held to);
a causal sliding window of 512, Longformer (window 512 = 256 each side, 16
global tokens) and BigBird (blocks of 64: 1 window block each side, 2
global, 3 random) at 16K and 64K, each with its GFLOP/s over the dense rate
(rate_vs_dense). The FLOPs counted are attn_bench's: 4 H D per visible
pair, the window's pairs counted exactly (512 keys per query but the
first ones'), Longformer's and BigBird's as every element of the blocks
their masks list. pairs_vs_dense and blocks_vs_dense give every row both
ways: on the exactly visible pairs, and on the 64 x 64 blocks that hold
one (BigBird's blocks are wholly visible: the two agree; Longformer's
partial blocks are 1.29x its visible pairs at 16K). Then 8
documents of mixed lengths up to 4K packed (cu_seqlens) and the same batch
padded (q_lens/k_lens), forward + backward (padded_over_packed), and the
padded batch computed densely (padded_dense_over_packed, beside work_ratio,
its query-key pairs over the packed batch's: the speedup packing can give
at equal rates); causal ring attention over 32K on 1, 2 and 4 ranks of 1
thread (mpirun, `attn ring`: time, bytes sent and peak memory per rank,
speedup_vs_1_rank). --tiny runs every row on small sizes (a check that
the script works, not a measurement).

attn's tensors are [B, H, S, D] in memory, PyTorch's layout, the one the
peers are given (--layout bhsd, the default; --layout bshd runs the
[B, S, H, D] order, where one head's consecutive keys are H * D floats
apart: a new 4 KiB page every few keys, and the random blocks of BigBird
at 64K lose 20-25% of their rate to TLB misses on Zen 3).

--only runs some rows: a comma list of dense, window, longformer, bigbird,
sparse (the four), packed (packed, padded, padded_dense) and ring; the
sparse rows always bring the dense row they are held to. --sizes sets the
sparse rows' sequence lengths (default 16384,65536), --no-peers skips the
PyTorch rows (a merged row keeps the PyTorch timings of the row it
replaces, marked peers_from_earlier_run). With --only the rows run are
merged into --out (rows of the same name and length replaced, the others
kept), so a quick re-run of the sparse rows updates the file in place:

    python bench/longctx_bench.py --only sparse --no-peers --reps 3

A peer that would need more than --peer-max-gb for its dense mask or
scores is recorded as skipped with the reason.

The packed batch: 7 lengths at the quantiles (k + 1/2) / 7 of a
log-normal with median 1024 tokens and sigma 0.75 (a model of
instruction / chat document lengths under a 4K context) and one of 4096,
the longest, to which the batch is padded: 341, 566, 778, 1024, 1348,
1854, 3073, 4096 (13080 tokens). Padded, it holds 8 x 4096^2 = 134M
query-key pairs against sum L^2 = 33.6M packed: a work ratio of 4.0.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.join(ROOT, "build", "attn_bench")
CLI = os.path.join(ROOT, "build", "attn")


LAYOUT = ["bhsd"]  # --layout: the memory order of attn's Q, K, V, O


def attn_row(mode, mask, B, H, S, D, threads, reps):
    cmd = [BENCH, "run", "--mode", mode, "--B", str(B), "--Hq", str(H), "--Hkv", str(H), "--Sq", str(S),
           "--Sk", str(S), "--D", str(D), "--mask", mask, "--threads", str(threads), "--reps", str(reps),
           "--layout", LAYOUT[0]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def longformer_dense(S, w, g):
    import torch
    i = torch.arange(S).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    m = (j >= i - w) & (j <= i + w)
    m[:g, :] = True
    m[:, :g] = True
    return m


def bigbird_dense(S):
    """BigBird's layout as a dense mask for the peer: window and global
    blocks as in the library's pattern; the random blocks drawn by torch
    (the same count per block row, other positions: the same work)."""
    import torch
    nb = S // 64
    qb = torch.arange(nb).unsqueeze(1)
    kb = torch.arange(nb).unsqueeze(0)
    blocks = ((qb - kb).abs() <= 1) | (qb < 2) | (kb < 2)
    g = torch.Generator().manual_seed(1)
    for r in range(nb):
        blocks[r, torch.randperm(nb, generator=g)[:3]] = True
    return blocks.repeat_interleave(64, 0).repeat_interleave(64, 1)


def packed_lengths():
    """The packed batch of the docstring: 7 log-normal quantiles (median
    1024, sigma 0.75) and 4096."""
    from statistics import NormalDist
    return [round(1024 * math.exp(0.75 * NormalDist().inv_cdf((k + 0.5) / 7))) for k in range(7)] + [4096]


def window_blocks(S, W, bs=64):
    """Elements of the bs x bs blocks that hold a visible pair of a causal
    window of W keys per query (S x S)."""
    n = 0
    for qb in range(0, S, bs):
        nq = min(bs, S - qb)
        lo, hi = max(0, qb - (W - 1)), qb + nq  # keys the block's rows see: [lo, hi)
        for kb in range(lo // bs * bs, hi, bs):
            n += nq * min(bs, S - kb)
    return n


def longformer_pairs(S, w, g):
    """Visible (query, key) pairs of Longformer over S x S: keys within w
    of the query, the g global keys, and every key for the g global
    queries."""
    n = g * S
    for i in range(g, S):
        lo, hi = max(0, i - w), min(S - 1, i + w)
        n += hi - lo + 1 + max(0, min(g, lo))  # the window, and the global keys before it
    return n


def time_it(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def sdpa_peer(mask, B, H, S, D, mode, reps, max_gb):
    import torch
    need = S * S * (1 + 4 * B * H * (2 if mode == "fwdbwd" else 1)) / 1e9
    if need > max_gb:
        return {"peer": "sdpa", "skipped": "dense mask and scores need %.1f GB > %.1f" % (need, max_gb)}
    q = torch.randn(B, H, S, D, requires_grad=mode == "fwdbwd")
    k = torch.randn(B, H, S, D, requires_grad=mode == "fwdbwd")
    v = torch.randn(B, H, S, D, requires_grad=mode == "fwdbwd")
    m = mask()

    def run():
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
        if mode == "fwdbwd":
            o.sum().backward()

    return {"peer": "sdpa", "peer_median_ms": time_it(run, reps)}


def flex_peer(kind, B, H, S, D, reps, w, g):
    try:
        import torch
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def mod(b, h, qi, kv):
            return ((kv >= qi - w) & (kv <= qi + w)) | (qi < g) | (kv < g)

        bm = create_block_mask(mod, None, None, S, S, device="cpu")
        q, k, v = (torch.randn(B, H, S, D) for _ in range(3))
        # compiled: uncompiled flex_attention materializes the B H S S scores
        flex = torch.compile(flex_attention, dynamic=False)
        return {"flex": "flex_attention (torch.compile)",
                "flex_median_ms": time_it(lambda: flex(q, k, v, block_mask=bm), reps)}
    except Exception as e:  # FlexAttention may not run on CPU in this build
        return {"flex": "flex_attention", "flex_skipped": "%s: %s" % (type(e).__name__, str(e)[:200])}


def ring_row(P, S, H, D, threads):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "--oversubscribe", "-np", str(P), CLI, "ring", "--seq", str(S), "--heads", str(H),
           "--dim", str(D), "--causal", "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    t = float(re.search(r": ([0-9.]+) s", out).group(1))
    ranks = [{"rank": int(a), "bytes_sent": float(b), "peak_mb": float(c)}
             for a, b, c in re.findall(r"rank (\d+): ([0-9.]+) bytes sent, peak memory ([0-9.]+) MB", out)]
    return {"name": "ring", "ranks": P, "S": S, "H": H, "D": D, "causal": True, "seconds": t, "per_rank": ranks}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peer-max-gb", type=float, default=8.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results_longctx.json"))
    ap.add_argument("--only", default=None, help="comma list: dense, window, longformer, bigbird, sparse, packed, ring")
    ap.add_argument("--sizes", default=None, help="the sparse rows' sequence lengths, comma separated")
    ap.add_argument("--no-peers", action="store_true", help="skip the PyTorch SDPA and FlexAttention rows")
    ap.add_argument("--layout", choices=("bhsd", "bshd"), default="bhsd",
                    help="memory order of attn's tensors: bhsd (PyTorch's, what the peers get) or bshd")
    a = ap.parse_args()
    LAYOUT[0] = a.layout
    groups = {"dense", "window", "longformer", "bigbird", "packed", "ring"}
    want = groups if a.only is None else set()
    for g in (a.only or "").split(","):
        if g:
            want |= {"dense", "window", "longformer", "bigbird"} if g == "sparse" else {g}
    if not want <= groups:
        ap.error("--only: unknown rows %s" % ", ".join(sorted(want - groups)))
    sparse = [n for n in ("window", "longformer", "bigbird") if n in want]
    H, D = (2, 32) if a.tiny else (8, 64)
    sizes = [1024, 2048] if a.tiny else [16384, 65536]
    if a.sizes:
        sizes = [int(x) for x in a.sizes.split(",")]
    reps = 1 if a.tiny else a.reps
    rows = []
    if sparse or "dense" in want:
        # the dense rate the sparse rows are held to: the same kernel with no mask, at 16K
        dense = attn_row("fwd", "none", 1, H, 1024 if a.tiny else 16384, D, a.threads, reps)
        dense["name"] = "dense"
        rows.append(dense)
        print(json.dumps(dense), flush=True)
    for S in sizes:
        for name, mask, peer in (("window", "window:512", None),
                                 ("longformer", "longformer:256:16", lambda S=S: longformer_dense(S, 256, 16)),
                                 ("bigbird", "bigbird:1:2:3", lambda S=S: bigbird_dense(S))):
            if name not in sparse:
                continue
            r = attn_row("fwd", mask, 1, H, S, D, a.threads, reps)
            r["name"] = name
            r["rate_vs_dense"] = r["gflops"] / dense["gflops"]  # target >= 0.8
            # the same time counted both ways: on the exactly visible pairs, and on the
            # 64 x 64 blocks that hold one (the rate's count is the first for the window,
            # the second for Longformer; BigBird's blocks are all wholly visible)
            pairs = {"window": r["flops"], "longformer": 4.0 * H * D * longformer_pairs(S, 256, 16),
                     "bigbird": r["flops"]}[name]
            blocks = {"window": 4.0 * H * D * window_blocks(S, 512), "longformer": r["flops"],
                      "bigbird": r["flops"]}[name]
            rate = lambda f: f / (r["median_ms"] * 1e-3) / 1e9 / dense["gflops"]
            r["pairs_vs_dense"], r["blocks_vs_dense"] = rate(pairs), rate(blocks)
            if peer is not None and not a.no_peers:
                r.update(sdpa_peer(peer, 1, H, S, D, "fwd", reps, a.peer_max_gb))
            if name == "longformer" and not a.no_peers:
                r.update(flex_peer(name, 1, H, S, D, reps, 256, 16))
            if "peer_median_ms" in r:
                r["ratio"] = r["peer_median_ms"] / r["median_ms"]
            rows.append(r)
            print(json.dumps(r), flush=True)
    if "packed" in want:
        lens = [300, 77, 129, 512, 64, 250, 33, 400] if a.tiny else packed_lengths()
        spec = ",".join(str(x) for x in lens)
        work_ratio = len(lens) * max(lens) ** 2 / sum(x * x for x in lens)  # padded pairs / packed pairs
        pair = {}
        for name, mask in (("packed", "packed:" + spec), ("padded", "padded:" + spec)):
            r = attn_row("fwdbwd", mask, 1, H, 1, D, a.threads, reps)
            r["name"] = name
            r["lengths"] = lens
            pair[name] = r
            if name == "padded":  # attn's padded call skips the padding's tiles by q_lens / k_lens
                r["padded_over_packed"] = r["median_ms"] / pair["packed"]["median_ms"]
            rows.append(r)
            print(json.dumps(r), flush=True)
        # the padded dense batch (what a call without lengths, or a padding mask, computes): target >= 3x
        r = attn_row("fwdbwd", "none", len(lens), H, max(lens), D, a.threads, reps)
        r["name"] = "padded_dense"
        r["lengths"] = lens
        r["padded_dense_over_packed"] = r["median_ms"] / pair["packed"]["median_ms"]
        r["work_ratio"] = work_ratio
        rows.append(r)
        print(json.dumps(r), flush=True)
        print("packed vs padded dense: %.2fx faster, work ratio %.2fx" % (r["padded_dense_over_packed"], work_ratio),
              flush=True)
    if "ring" in want:
        S = 1024 if a.tiny else 32768
        one = None
        for P in (1, 2, 4):
            r = ring_row(P, S, H, D, 1)
            one = one or r
            r["speedup_vs_1_rank"] = one["seconds"] / r["seconds"]  # target >= 1.8 at P = 2 (2 cores)
            rows.append(r)
            print(json.dumps(r), flush=True)
    if a.only is not None and os.path.exists(a.out):  # merge: replace rows of the same name and length
        with open(a.out) as f:
            old = json.load(f)
        key = lambda r: (r.get("name"), r.get("Sq"), r.get("ranks"))
        mine = {key(r) for r in rows}
        before = {key(r): r for r in old.get("rows", [])}
        for r in rows:  # without --no-peers' rows, keep the PyTorch timings the file had
            prev = before.get(key(r), {})
            kept = [k for k in ("peer", "peer_median_ms", "skipped", "flex", "flex_median_ms", "flex_skipped")
                    if k in prev and k not in r]
            if a.no_peers and kept:
                r.update({k: prev[k] for k in kept})
                r["peers_from_earlier_run"] = True
                if "peer_median_ms" in r:
                    r["ratio"] = r["peer_median_ms"] / r["median_ms"]
        rows = [r for r in old.get("rows", []) if key(r) not in mine] + rows
        if old.get("tiny") != a.tiny:
            print("note: merging %s rows into a %s file" % ("tiny" if a.tiny else "full", "tiny" if old.get("tiny") else "full"))
    with open(a.out, "w") as f:
        json.dump({"tiny": a.tiny, "threads": a.threads, "rows": rows}, f, indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    sys.exit(main())
